// rdma_ports.cc - see rdma_ports.h.
#include "src/base/rdma_ports.h"
#include <dirent.h>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>
#include "src/base/debug.h"

namespace fccl {

namespace {

constexpr const char* kRdmaClass = "/sys/class/infiniband";

// The names in a directory, without . and .. (empty when it cannot be read).
std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
    closedir(d);
  }
  return names;
}

}  // namespace

int activeRdmaPortsUnder(const char* root, std::string* why) {
  const std::vector<std::string> devs = entries(root);
  if (devs.empty()) {
    *why = std::string("no RDMA device (") + root + " is empty or missing)";
    return 0;
  }
  int active = 0;
  for (const std::string& dev : devs) {
    const std::string ports = std::string(root) + "/" + dev + "/ports";
    for (const std::string& port : entries(ports)) {
      // "4: ACTIVE" (IB_PORT_ACTIVE)
      char state[32] = {};
      if (FILE* f = fopen((ports + "/" + port + "/state").c_str(), "r")) {
        if (fgets(state, sizeof(state), f) == nullptr) state[0] = '\0';
        fclose(f);
      }
      active += strstr(state, "ACTIVE") != nullptr;
    }
  }
  if (active == 0) *why = std::to_string(devs.size()) + " RDMA device(s), no active port";
  return active;
}

int activeRdmaPorts(std::string* why) {
  static std::once_flag once;
  static int ports = 0;
  static std::string reason;
  std::call_once(once, [] {
    ports = activeRdmaPortsUnder(kRdmaClass, &reason);
    if (ports > 0)
      FCCL_INFO(kLogNet | kLogInit, "%d active RDMA port(s): FCCL_NET=auto takes UCX to hosts with one",
                ports);
    else
      FCCL_INFO(kLogNet | kLogInit, "%s: FCCL_NET=auto takes sockets between hosts", reason.c_str());
  });
  if (why != nullptr) *why = reason;
  return ports;
}

}  // namespace fccl
