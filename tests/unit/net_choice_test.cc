// net_choice_test.cc - FCCL_NET's choice between two hosts (transports/net_choice.h) and the
// RDMA port count it rests on (src/base/rdma_ports.h), over a fake sysfs tree.
#include "transports/net_choice.h"
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include "src/base/peer_info.h"
#include "src/base/rdma_ports.h"

namespace fccl {
namespace {

void writeFile(const std::string& path, const char* text) {
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr) << path;
  fputs(text, f);
  fclose(f);
}

// DEV/ports/N/state for each (device, port, state).
std::string fakeClass(std::initializer_list<std::tuple<const char*, int, const char*>> ports) {
  char tmpl[] = "/tmp/fccl_rdma_XXXXXX";
  std::string root = mkdtemp(tmpl);
  for (auto& [dev, port, state] : ports) {
    const std::string d = root + "/" + dev, p = d + "/ports", n = p + "/" + std::to_string(port);
    mkdir(d.c_str(), 0755);
    mkdir(p.c_str(), 0755);
    mkdir(n.c_str(), 0755);
    writeFile(n + "/state", state);
  }
  return root;
}

TEST(RdmaPorts, CountsTheActivePortsOfEveryDevice) {
  const std::string root = fakeClass({{"mlx5_0", 1, "4: ACTIVE\n"},
                                      {"mlx5_0", 2, "1: DOWN\n"},
                                      {"mlx5_1", 1, "4: ACTIVE\n"},
                                      {"rxe0", 1, "2: INIT\n"}});
  std::string why;
  EXPECT_EQ(activeRdmaPortsUnder(root.c_str(), &why), 2);
  EXPECT_EQ(system(("rm -rf " + root).c_str()), 0);
}

TEST(RdmaPorts, NoneSaysWhy) {
  std::string why;
  EXPECT_EQ(activeRdmaPortsUnder("/nonexistent/fccl/infiniband", &why), 0);
  EXPECT_NE(why.find("no RDMA device"), std::string::npos) << why;
  const std::string root = fakeClass({{"mlx5_0", 1, "1: DOWN\n"}});
  EXPECT_EQ(activeRdmaPortsUnder(root.c_str(), &why), 0);
  EXPECT_NE(why.find("1 RDMA device(s), no active port"), std::string::npos) << why;
  EXPECT_EQ(system(("rm -rf " + root).c_str()), 0);
}

TEST(NetChoice, AutoTakesUcxOnlyBetweenHostsThatBothHaveRdma) {
  PeerInfo a{}, b{}, c{};
  a.hostHash = 1;
  b.hostHash = 2;
  c.hostHash = 1;  // a's host
  a.rdmaPorts = b.rdmaPorts = c.rdmaPorts = 1;
  EXPECT_TRUE(ucxBetween("auto", a, b));
  EXPECT_FALSE(ucxBetween("auto", a, c)) << "one host: shared memory";
  EXPECT_FALSE(ucxBetween("ucx", a, c)) << "one host: shared memory";
  EXPECT_FALSE(ucxBetween("socket", a, b));
  b.rdmaPorts = 0;
  EXPECT_FALSE(ucxBetween("auto", a, b)) << "b has no RDMA port";
  EXPECT_FALSE(ucxBetween("auto", b, a)) << "the choice is symmetric";
  EXPECT_TRUE(ucxBetween("ucx", a, b)) << "FCCL_NET=ucx asks for UCX whatever the ports";
}

}  // namespace
}  // namespace fccl
