// rings_test.cc - buildRings: the flat ring groups each host's ranks (as few host crossings as
// a ring can have), whatever order a launcher dealt the ranks in; the local and cross rings of
// the two-level AllReduce; hosts with different rank counts are not uniform (no cross ring).
#include "src/rings.h"
#include <gtest/gtest.h>
#include <vector>

namespace fccl {
namespace {

TEST(Rings, RankOrderAlreadyGroupedByHost) {
  const std::vector<uint64_t> host = {7, 7, 9, 9};
  Rings r = buildRings(host, 2);
  EXPECT_TRUE(r.flatIsRankOrder);
  EXPECT_EQ(r.crossings, 2);
  EXPECT_EQ(r.nhosts, 2);
  EXPECT_TRUE(r.uniform);
  EXPECT_EQ(r.local, (std::vector<int>{2, 3}));
  EXPECT_EQ(r.localPos, 0);
  EXPECT_EQ(r.cross, (std::vector<int>{0, 2}));
  EXPECT_EQ(r.crossPos, 1);
}

TEST(Rings, RoundRobinRanksAreGroupedByHost) {
  // Ranks dealt round-robin over 3 hosts: rank order crosses hosts at every step.
  const std::vector<uint64_t> host = {1, 2, 3, 1, 2, 3};
  for (int rank = 0; rank < 6; ++rank) {
    Rings r = buildRings(host, rank);
    EXPECT_EQ(r.crossings, 6);
    EXPECT_FALSE(r.flatIsRankOrder);
    EXPECT_EQ(r.flat, (std::vector<int>{0, 3, 1, 4, 2, 5}));
    EXPECT_EQ(r.flat[size_t(r.flatPos)], rank);
    int flatCrossings = 0;
    for (size_t i = 0; i < 6; ++i)
      flatCrossings += host[size_t(r.flat[i])] != host[size_t(r.flat[(i + 1) % 6])];
    EXPECT_EQ(flatCrossings, 3);  // once per host
    EXPECT_EQ(r.local.size(), 2u);
    EXPECT_EQ(r.local[size_t(r.localPos)], rank);
    EXPECT_EQ(r.cross.size(), 3u);
    EXPECT_EQ(r.cross[size_t(r.crossPos)], rank);
    for (int m : r.cross) EXPECT_EQ(m / 3, rank / 3);  // the same local position on every host
  }
}

TEST(Rings, UnevenHostsHaveNoCrossRing) {
  const std::vector<uint64_t> host = {1, 1, 1, 2};
  Rings r = buildRings(host, 3);
  EXPECT_FALSE(r.uniform);
  EXPECT_TRUE(r.cross.empty());
  EXPECT_EQ(r.local, (std::vector<int>{3}));
}

TEST(Rings, OneHost) {
  Rings r = buildRings({5, 5, 5}, 1);
  EXPECT_EQ(r.nhosts, 1);
  EXPECT_EQ(r.crossings, 0);
  EXPECT_TRUE(r.flatIsRankOrder);
  EXPECT_EQ(r.local, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(r.cross, (std::vector<int>{1}));
}

}  // namespace
}  // namespace fccl
