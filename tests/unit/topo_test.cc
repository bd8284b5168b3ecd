// topo_test.cc - topology detection (counts, summary, caching) and thread binding round-trips.
// Binding tests run on a fresh std::thread so the test process's own affinity never changes.
#include "src/topo.h"
#include <gtest/gtest.h>
#include <algorithm>
#include <thread>

namespace fccl {
namespace {

TEST(Topo, CountsArePositiveAndConsistent) {
  Topology t;
  ASSERT_EQ(topoDetect(&t), fcclSuccess);
  EXPECT_GE(t.npackages, 1);
  EXPECT_GE(t.nnuma, 1);
  EXPECT_GE(t.ncores, 1);
  EXPECT_GE(t.npus, t.ncores);
  EXPECT_EQ(t.nnuma, static_cast<int>(t.numaCpus.size()));
  EXPECT_FALSE(t.processCpus.empty());
  EXPECT_TRUE(std::is_sorted(t.processCpus.begin(), t.processCpus.end()));
  size_t inNuma = 0;
  for (const auto& node : t.numaCpus) {
    EXPECT_TRUE(std::is_sorted(node.begin(), node.end()));
    inNuma += node.size();
  }
  EXPECT_LE(inNuma, static_cast<size_t>(t.npus));
}

TEST(Topo, SummaryNamesTheCounts) {
  Topology t;
  ASSERT_EQ(topoDetect(&t), fcclSuccess);
  ASSERT_FALSE(t.summary.empty());
  EXPECT_EQ(t.summary.rfind("topology: ", 0), 0u) << t.summary;
  EXPECT_NE(t.summary.find(std::to_string(t.npus) + " PU"), std::string::npos) << t.summary;
  EXPECT_NE(t.summary.find("bound to PU"), std::string::npos) << t.summary;
}

TEST(Topo, DetectIsCachedAndImmutable) {
  Topology a, b;
  ASSERT_EQ(topoDetect(&a), fcclSuccess);
  a.npus = -1;  // a copy: changing it must not change the cached topology
  ASSERT_EQ(topoDetect(&b), fcclSuccess);
  EXPECT_GT(b.npus, 0);
  Topology c;
  ASSERT_EQ(topoDetect(&c), fcclSuccess);
  EXPECT_EQ(b.summary, c.summary);
  EXPECT_EQ(topoDetect(nullptr), fcclInvalidArgument);
}

TEST(Topo, BindRoundTrips) {
  std::thread([] {
    std::vector<int> before;
    ASSERT_EQ(topoGetThreadCpus(&before), fcclSuccess);
    ASSERT_FALSE(before.empty());
    for (int cpu : {before.front(), before.back()}) {
      ASSERT_EQ(topoBindThread({cpu}), fcclSuccess);
      std::vector<int> now;
      ASSERT_EQ(topoGetThreadCpus(&now), fcclSuccess);
      EXPECT_EQ(now, std::vector<int>{cpu});
      EXPECT_EQ(sched_getcpu(), cpu);
    }
    ASSERT_EQ(topoBindThread(before), fcclSuccess);
    std::vector<int> after;
    ASSERT_EQ(topoGetThreadCpus(&after), fcclSuccess);
    EXPECT_EQ(after, before);
  }).join();
}

TEST(Topo, BindRejectsBadSets) {
  std::thread([] {
    EXPECT_EQ(topoBindThread({}), fcclInvalidArgument);
    EXPECT_EQ(topoBindThread({-1}), fcclInvalidArgument);
    EXPECT_EQ(topoBindThread({1 << 20}), fcclInvalidArgument);
  }).join();
}

TEST(Topo, CpuListFormatAndParse) {
  EXPECT_EQ(topoFormatCpuList({}), "");
  EXPECT_EQ(topoFormatCpuList({0, 1}), "0-1");
  EXPECT_EQ(topoFormatCpuList({9, 0, 1, 2, 3, 6, 8, 3}), "0-3,6,8-9");
  std::vector<int> cpus;
  ASSERT_TRUE(topoParseCpuList("0-3,6,8-9", &cpus));
  EXPECT_EQ(cpus, (std::vector<int>{0, 1, 2, 3, 6, 8, 9}));
  ASSERT_TRUE(topoParseCpuList("5", &cpus));
  EXPECT_EQ(cpus, std::vector<int>{5});
  for (const char* bad : {"", "a", "1-", "3-1", "1,,2", "1,", "-1", "1 2"})
    EXPECT_FALSE(topoParseCpuList(bad, &cpus)) << '"' << bad << '"';
}

}  // namespace
}  // namespace fccl
