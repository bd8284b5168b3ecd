// cpu_share_test.cc - the CPU-sharing decision (src/cpu_share.h): ranks bound one per core do
// not share, ranks on one core do, and a union large enough is not enough when two ranks can
// only run on the same CPU. Then the exchange through a real bootstrap, with rank threads bound
// to one CPU each or both to the same one.
#include "src/cpu_share.h"
#include <gtest/gtest.h>
#include <memory>
#include <thread>
#include <vector>
#include "src/bootstrap.h"
#include "src/topo.h"

namespace fccl {
namespace {

CpuShare decide(const std::vector<std::vector<int>>& ranks) {
  std::vector<CpuMask> masks;
  for (const std::vector<int>& r : ranks) masks.push_back(cpuMaskOf(r));
  return cpuShareDecide(masks);
}

TEST(CpuShare, Decide) {
  struct Case {
    std::vector<std::vector<int>> masks;
    int cpus;
    bool shared;
  } cases[] = {
      {{{0}, {1}}, 2, false},                // mpirun --bind-to core
      {{{0}, {0}}, 1, true},                 // both on one core
      {{{0, 1}, {0, 1}}, 2, false},          // unbound processes on 2 cores
      {{{0, 1}, {0, 1}, {0, 1}}, 2, true},   // 3 ranks, 2 cores
      {{{0}, {0}, {1, 2}}, 3, true},         // union 3, but ranks 0 and 1 need CPU 0
      {{{0, 1}, {0}}, 2, false},             // rank 0 moves to CPU 1 (augmenting path)
      {{{0, 1}, {1, 2}, {0, 2}}, 3, false},  // a cycle: each gets one
      {{{5}}, 1, false},                     // one rank
      {{{63, 64}, {64}, {63}}, 2, true},     // across a word boundary
      {{{4095}, {4094}}, 2, false},          // the mask's last bits
  };
  for (const Case& c : cases) {
    CpuShare s = decide(c.masks);
    EXPECT_EQ(s.localRanks, int(c.masks.size()));
    EXPECT_EQ(s.cpus, c.cpus) << "case with " << c.masks.size() << " ranks";
    EXPECT_EQ(s.shared, c.shared) << "case with " << c.masks.size() << " ranks, first mask size "
                                  << c.masks[0].size();
  }
}

TEST(CpuShare, CpusPastTheMask) {
  CpuMask m = cpuMaskOf({1, kCpuMaskBits, kCpuMaskBits + 7});
  EXPECT_EQ(m.beyond, 2u);
  CpuShare s = cpuShareDecide({m, cpuMaskOf({1})});
  EXPECT_EQ(s.cpus, 3);
  EXPECT_FALSE(s.shared);
}

// Two ranks as threads through a real bootstrap, each thread bound as given before the exchange.
CpuShare exchange(int cpu0, int cpu1) {
  fcclUniqueId id;
  EXPECT_EQ(bootstrapGetUniqueId(&id), fcclSuccess);
  CpuShare out[2];
  fcclResult_t res[2] = {fcclInternalError, fcclInternalError};
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      if (topoBindThread({r == 0 ? cpu0 : cpu1}) != fcclSuccess) return;
      std::unique_ptr<Bootstrap> b;
      if (Bootstrap::create(id, r, 2, 20000, nullptr, &b) != fcclSuccess) return;
      std::vector<PeerInfo> peers{b->peer(0), b->peer(1)};
      res[r] = cpuShareExchange(b.get(), peers, r, &out[r]);
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(res[0], fcclSuccess);
  EXPECT_EQ(res[1], fcclSuccess);
  EXPECT_EQ(out[0].shared, out[1].shared) << "the ranks disagree";
  return out[0];
}

TEST(CpuShare, ExchangeThroughTheBootstrap) {
  std::vector<int> cpus;
  ASSERT_EQ(topoGetThreadCpus(&cpus), fcclSuccess);
  if (cpus.size() < 2) GTEST_SKIP() << "needs 2 CPUs to bind the ranks apart";
  CpuShare apart = exchange(cpus[0], cpus[1]);
  EXPECT_EQ(apart.localRanks, 2);
  EXPECT_EQ(apart.cpus, 2);
  EXPECT_FALSE(apart.shared);
  CpuShare together = exchange(cpus[0], cpus[0]);
  EXPECT_EQ(together.cpus, 1);
  EXPECT_TRUE(together.shared);
}

}  // namespace
}  // namespace fccl
