// launch.cc - launchers: the rank, size and bootstrap root of a process that torchrun or
// fcclrun, mpirun or srun started (launchDetect, pure), and the API over it:
// fcclLaunchInfoFromEnv (before init: pick a device by local rank) and fcclCommInitFromEnv
// (every process calls it the same way; rank 0 hosts the root at the address all derive).
#include "src/launch.h"
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include "src/base/checks.h"
#include "src/base/debug.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "src/bootstrap.h"

namespace fccl {
namespace {

// Ports derived from a job id land in [20000, 60000): above the well-known and registered
// ranges most services bind, and a different one per job so two jobs on a host rarely meet.
constexpr int kDerivedPortBase = 20000, kDerivedPortSpan = 40000;

bool parseCount(const std::string& text, int64_t lo, int64_t hi, int* out) {
  int64_t v = 0;
  if (!parseInt64(text.c_str(), &v) || v < lo || v > hi) return false;
  *out = int(v);
  return true;
}

int derivedPort(const std::string& jobId, const std::string& stepId) {
  // FNV-1a over the ids' text: Open MPI's job ids are 32-bit numbers, Slurm's small ones.
  uint64_t h = 1469598103934665603ull;
  for (char c : jobId + "." + stepId) h = (h ^ uint8_t(c)) * 1099511628211ull;
  return kDerivedPortBase + int(h % kDerivedPortSpan);
}

std::string hostPort(const std::string& host, int port) {
  const bool v6 = host.find(':') != std::string::npos && host[0] != '[';
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// Rank and size from one launcher's pair of variables, checked.
fcclResult_t rankAndSize(const char* launcher, const char* rankName, const std::string& rank,
                         const char* sizeName, const std::string& size, LaunchInfo* out) {
  if (size.empty() || rank.empty())
    return setError(fcclInvalidUsage, "launcher %s: %s is set but %s is not", launcher,
                    size.empty() ? rankName : sizeName, size.empty() ? sizeName : rankName);
  if (!parseCount(size, 1, 1 << 24, &out->nranks))
    return setError(fcclInvalidUsage, "launcher %s: %s=\"%s\" is not a process count", launcher, sizeName,
                    size.c_str());
  if (!parseCount(rank, 0, out->nranks - 1, &out->rank))
    return setError(fcclInvalidUsage, "launcher %s: %s=\"%s\" is not a rank below %s=%d", launcher, rankName,
                    rank.c_str(), sizeName, out->nranks);
  out->launcher = launcher;
  return fcclSuccess;
}

// The local pair, when given and sane; otherwise -1, -1 (it only helps pick a device).
void localPair(const std::string& rank, const std::string& size, LaunchInfo* out) {
  int r = -1, s = -1;
  if (parseCount(size, 1, 1 << 24, &s) && parseCount(rank, 0, s - 1, &r)) {
    out->localRank = r;
    out->localRanks = s;
  } else if (parseCount(rank, 0, 1 << 24, &r)) {
    out->localRank = r;
  }
}

fcclResult_t masterPort(const LauncherEnv& le, int* port) {
  if (!parseCount(le.masterPort, 1, 65535, port))
    return setError(fcclInvalidUsage, "launcher: MASTER_PORT=\"%s\" is not a port (1..65535)",
                    le.masterPort.c_str());
  return fcclSuccess;
}

}  // namespace

std::string slurmFirstHost(const std::string& nodelist) {
  // The first entry ends at a comma outside brackets; "prefix[01-04,07]suffix" takes the
  // first number of the range, keeping its zero padding.
  size_t i = 0;
  std::string host;
  while (i < nodelist.size() && nodelist[i] != ',') {
    if (nodelist[i] != '[') {
      host += nodelist[i++];
      continue;
    }
    const size_t close = nodelist.find(']', i);
    if (close == std::string::npos) return "";
    size_t j = i + 1;
    while (j < close && isdigit(static_cast<unsigned char>(nodelist[j]))) host += nodelist[j++];
    if (j == i + 1) return "";
    i = close + 1;
  }
  return host;
}

int slurmTasksOnNode(const std::string& tasksPerNode, int node) {
  // Entries "count" or "count(xrepeat)", comma separated, cover the nodes in order.
  int at = 0;
  size_t i = 0;
  while (i < tasksPerNode.size()) {
    size_t end = tasksPerNode.find(',', i);
    if (end == std::string::npos) end = tasksPerNode.size();
    const std::string item = tasksPerNode.substr(i, end - i);
    const size_t paren = item.find("(x");
    int count = 0, repeat = 1;
    if (!parseCount(item.substr(0, paren), 0, 1 << 24, &count)) return -1;
    if (paren != std::string::npos) {
      if (item.back() != ')' ||
          !parseCount(item.substr(paren + 2, item.size() - paren - 3), 1, 1 << 24, &repeat))
        return -1;
    }
    if (node < at + repeat) return node >= at ? count : -1;
    at += repeat;
    i = end + 1;
  }
  return -1;
}

fcclResult_t launchDetect(const LauncherEnv& le, const std::string& commId, LaunchInfo* out) {
  *out = LaunchInfo();
  int port = 0;
  if (!le.rank.empty() || !le.worldSize.empty()) {
    FCCL_CHECK(rankAndSize("env", "RANK", le.rank, "WORLD_SIZE", le.worldSize, out));
    localPair(le.localRank, le.localWorldSize, out);
    if (!commId.empty()) {
      out->root = commId;
    } else {
      if (le.masterAddr.empty() || le.masterPort.empty())
        return setError(fcclInvalidUsage,
                        "launcher env: RANK and WORLD_SIZE are set but MASTER_ADDR or MASTER_PORT is "
                        "missing (or set FCCL_COMM_ID=host:port)");
      FCCL_CHECK(masterPort(le, &port));
      // torchrun's agent hosts its TCPStore on MASTER_PORT itself: the next port is ours.
      const bool agentStore = le.agentStore == "True" || le.agentStore == "true" || le.agentStore == "1";
      if (agentStore && port == 65535)
        return setError(fcclInvalidUsage,
                        "launcher env: MASTER_PORT=65535 leaves no port for fccl's root "
                        "next to torchrun's store (set FCCL_COMM_ID)");
      out->root = hostPort(le.masterAddr, agentStore ? port + 1 : port);
    }
    return fcclSuccess;
  }
  if (!le.ompiRank.empty() || !le.ompiSize.empty()) {
    FCCL_CHECK(
        rankAndSize("mpirun", "OMPI_COMM_WORLD_RANK", le.ompiRank, "OMPI_COMM_WORLD_SIZE", le.ompiSize, out));
    localPair(le.ompiLocalRank, le.ompiLocalSize, out);
    if (!commId.empty()) {
      out->root = commId;
    } else if (!le.masterAddr.empty()) {
      if (le.masterPort.empty())
        port = derivedPort(le.ompiJobId, "");
      else
        FCCL_CHECK(masterPort(le, &port));
      out->root = hostPort(le.masterAddr, port);
    } else if (out->localRanks == out->nranks) {
      // Every process on this host: loopback, a port per job.
      if (le.masterPort.empty())
        port = derivedPort(le.ompiJobId, "");
      else
        FCCL_CHECK(masterPort(le, &port));
      out->root = hostPort("127.0.0.1", port);
    } else {
      return setError(fcclInvalidUsage,
                      "launcher mpirun: %d processes on more than one host and no root address: pass "
                      "MASTER_ADDR (rank 0's host) and MASTER_PORT, e.g. mpirun -x MASTER_ADDR=host0 "
                      "-x MASTER_PORT=29500, or FCCL_COMM_ID=host0:29500",
                      out->nranks);
    }
    return fcclSuccess;
  }
  if (!le.slurmProcId.empty() || !le.slurmNtasks.empty()) {
    FCCL_CHECK(rankAndSize("slurm", "SLURM_PROCID", le.slurmProcId, "SLURM_NTASKS", le.slurmNtasks, out));
    int node = -1;
    const int onNode =
        parseCount(le.slurmNodeId, 0, 1 << 24, &node) ? slurmTasksOnNode(le.slurmTasksPerNode, node) : -1;
    localPair(le.slurmLocalId, onNode > 0 ? std::to_string(onNode) : "", out);
    if (!commId.empty()) {
      out->root = commId;
      return fcclSuccess;
    }
    // srun's default (block) distribution puts task 0 on the step's first node.
    std::string host = le.masterAddr.empty() ? slurmFirstHost(le.slurmNodeList) : le.masterAddr;
    if (host.empty())
      return setError(fcclInvalidUsage,
                      "launcher slurm: cannot name rank 0's node from SLURM_STEP_NODELIST=\"%s\" (set "
                      "MASTER_ADDR or FCCL_COMM_ID)",
                      le.slurmNodeList.c_str());
    if (le.masterPort.empty())
      port = derivedPort(le.slurmJobId, le.slurmStepId);
    else
      FCCL_CHECK(masterPort(le, &port));
    out->root = hostPort(host, port);
    return fcclSuccess;
  }
  return setError(fcclInvalidUsage,
                  "no launcher found: set RANK and WORLD_SIZE (with MASTER_ADDR and MASTER_PORT), or "
                  "start the program with fcclrun, mpirun or srun");
}

}  // namespace fccl

using namespace fccl;

namespace {

fcclResult_t toPublic(const LaunchInfo& l, fcclLaunchInfo_t* info) {
  memset(info, 0, sizeof(*info));
  info->rank = l.rank;
  info->nranks = l.nranks;
  info->localRank = l.localRank;
  info->localRanks = l.localRanks;
  snprintf(info->launcher, sizeof(info->launcher), "%s", l.launcher.c_str());
  if (l.root.size() >= sizeof(info->root))
    return setError(fcclInvalidUsage, "launcher %s: the root address \"%s\" is too long", l.launcher.c_str(),
                    l.root.c_str());
  snprintf(info->root, sizeof(info->root), "%s", l.root.c_str());
  return fcclSuccess;
}

}  // namespace

extern "C" {

FCCL_API fcclResult_t fcclLaunchInfoFromEnv(fcclLaunchInfo_t* info) {
  return apiGuard("fcclLaunchInfoFromEnv", [&]() -> fcclResult_t {
    if (info == nullptr) return setError(fcclInvalidArgument, "fcclLaunchInfoFromEnv: info is NULL");
    logSetVariablesOnce();
    LaunchInfo l;
    FCCL_CHECK(launchDetect(launcherEnv(), env().commId, &l));
    return toPublic(l, info);
  });
}

FCCL_API fcclResult_t fcclCommInitFromEnv(fcclComm_t* comm, fcclConfig_t* config) {
  return apiGuard("fcclCommInitFromEnv", [&]() -> fcclResult_t {
    if (comm == nullptr) return setError(fcclInvalidArgument, "fcclCommInitFromEnv: comm is NULL");
    *comm = nullptr;
    logSetVariablesOnce();
    LaunchInfo l;
    FCCL_CHECK(launchDetect(launcherEnv(), env().commId, &l));
    fcclUniqueId id;
    FCCL_CHECK(bootstrapIdFromAddress(l.root, &id));
    FCCL_INFO(kLogInit, "launcher %s: rank %d of %d (local %d of %d), bootstrap root %s", l.launcher.c_str(),
              l.rank, l.nranks, l.localRank, l.localRanks, l.root.c_str());
    return fcclCommInitRankConfig(comm, l.nranks, id, l.rank, config);
  });
}

}  // extern "C"
