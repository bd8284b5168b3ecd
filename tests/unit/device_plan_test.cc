// device_plan_test.cc - the CUDA backend's decisions that need no GPU (src/cuda/device_plan.h):
// the channel count the ranks agree on, the chunk of a collective, and the rounds of a group of
// sends and receives (matching order, sends to ourselves, limits).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/base/error.h"
#include "src/cuda/device_plan.h"

namespace fccl::cuda {
namespace {

TEST(DevicePlan, ChannelsShareTheGpuAmongItsRanksAndAgreeOnTheSmallest) {
  // H200: 132 SMs. Two ranks on it: 33 each, capped at 32.
  EXPECT_EQ(agreedChannels({7, 7}, {132, 132}, 0), 32);
  EXPECT_EQ(agreedChannels({7, 7, 7, 7}, {132, 132, 132, 132}, 0), 16);
  EXPECT_EQ(agreedChannels(std::vector<uint64_t>(8, 7), std::vector<int>(8, 132), 0), 8);
  // Three ranks on one GPU and one alone on another: the crowded GPU decides (132 / 6 = 22).
  EXPECT_EQ(agreedChannels({1, 1, 1, 2}, {132, 132, 132, 132}, 0), 22);
  // Never fewer than 2; FCCL_MAX_NCHANNELS wins, capped at 32.
  EXPECT_EQ(agreedChannels(std::vector<uint64_t>(16, 3), std::vector<int>(16, 20), 0), 2);
  EXPECT_EQ(agreedChannels({7, 7}, {132, 132}, 4), 4);
  EXPECT_EQ(agreedChannels({7, 7}, {132, 132}, 100), 32);
}

CollTask task(CollKind kind, size_t count, fcclDataType_t type, int root = 0) {
  CollTask t{};
  t.kind = kind;
  t.count = count;
  t.type = type;
  t.op = fcclSum;
  t.root = root;
  return t;
}

TEST(DevicePlan, ChunksAreWholeSlotsOrSixteenByteSharesOfEveryChannel) {
  const size_t slot = size_t(512) << 10;
  // Large: one slot (float: 128Ki elements).
  EXPECT_EQ(deviceChunkElems(task(CollKind::AllReduce, size_t(1) << 30, fcclFloat32), 2, 32, slot), slot / 4);
  // Small: the AllReduce loops over a slice (ceil(1000/2) = 500), split over 8 channels (63),
  // rounded up to 16 bytes (64 floats).
  EXPECT_EQ(deviceChunkElems(task(CollKind::AllReduce, 1000, fcclFloat32), 2, 8, slot), 64u);
  // Broadcast loops over the whole message: ceil(1000/8) = 125 -> 128.
  EXPECT_EQ(deviceChunkElems(task(CollKind::Broadcast, 1000, fcclFloat32), 2, 8, slot), 128u);
  // One element: one 16-byte pack (8 halves), never 0.
  EXPECT_EQ(deviceChunkElems(task(CollKind::AllReduce, 1, fcclFloat16), 4, 32, slot), 8u);
  EXPECT_EQ(deviceChunkElems(task(CollKind::AllGather, 1, fcclInt8), 4, 32, slot), 16u);
}

CollTask send(int peer, size_t count, const void* buf) {
  CollTask t = task(CollKind::Send, count, fcclFloat32, peer);
  t.send = buf;
  return t;
}
CollTask recv(int peer, size_t count, void* buf) {
  CollTask t = task(CollKind::Recv, count, fcclFloat32, peer);
  t.recv = buf;
  return t;
}

// LL up to 64 KiB unless FCCL_PROTO says otherwise; an LL slot carries half its bytes as data,
// so its chunks are at most 8 KiB.
TEST(DevicePlan, SmallMessagesTakeTheLowLatencyProtocolUnlessForced) {
  EXPECT_EQ(deviceProto(task(CollKind::AllReduce, 16 * 1024, fcclFloat32), ""), dev::DevProto::LL);
  EXPECT_EQ(deviceProto(task(CollKind::AllReduce, 16 * 1024 + 1, fcclFloat32), ""), dev::DevProto::Simple);
  EXPECT_EQ(deviceProto(task(CollKind::AllGather, 1, fcclInt8), ""), dev::DevProto::LL);
  EXPECT_EQ(deviceProto(task(CollKind::AllReduce, 1, fcclFloat32), "Simple"), dev::DevProto::Simple);
  EXPECT_EQ(deviceProto(task(CollKind::AllReduce, size_t(1) << 28, fcclFloat32), "LL"), dev::DevProto::LL);
  EXPECT_EQ(protoSlotBytes(dev::DevProto::LL, size_t(512) << 10), size_t(8192));
  EXPECT_EQ(protoSlotBytes(dev::DevProto::Simple, size_t(512) << 10), size_t(512) << 10);
  // A large message over LL: chunks of one LL slot's data (2048 floats), whatever the channels.
  const size_t ll = protoSlotBytes(dev::DevProto::LL, size_t(512) << 10);
  EXPECT_EQ(deviceChunkElems(task(CollKind::AllReduce, size_t(1) << 24, fcclFloat32), 2, 32, ll), 2048u);
  EXPECT_EQ(deviceChunkElems(task(CollKind::AllReduce, size_t(1) << 24, fcclFloat64), 2, 32, ll), 1024u);
}

TEST(DevicePlan, RoundKHoldsTheKthMessageOfEachPeerAndDirection) {
  float a[4], b[4], c[4], d[4];
  // Rank 1 of 3: two sends to 2, one receive from 0, one from 2; a zero-byte send moves nothing.
  const std::vector<CollTask> tasks = {send(2, 4, a), recv(0, 4, b), send(2, 2, c), recv(2, 4, d),
                                       send(0, 0, a)};
  P2pPlan plan;
  ASSERT_EQ(planP2p(tasks.data(), tasks.size(), 1, 3, "test", &plan), fcclSuccess);
  ASSERT_EQ(plan.rounds.size(), 2u);
  ASSERT_EQ(plan.rounds[0].size(), 3u);  // recv from 0, send to 2, recv from 2 (by peer)
  EXPECT_EQ(plan.rounds[0][0].peer, 0);
  EXPECT_EQ(plan.rounds[0][0].isSend, 0);
  EXPECT_EQ(plan.rounds[0][1].peer, 2);
  EXPECT_EQ(plan.rounds[0][1].isSend, 1);
  EXPECT_EQ(plan.rounds[0][1].buf, reinterpret_cast<char*>(a));
  EXPECT_EQ(plan.rounds[0][1].bytes, 16u);
  EXPECT_EQ(plan.rounds[0][2].peer, 2);
  EXPECT_EQ(plan.rounds[0][2].isSend, 0);
  ASSERT_EQ(plan.rounds[1].size(), 1u);  // the second send to 2, in call order
  EXPECT_EQ(plan.rounds[1][0].buf, reinterpret_cast<char*>(c));
  EXPECT_EQ(plan.rounds[1][0].bytes, 8u);
  EXPECT_TRUE(plan.selfCopies.empty());
}

TEST(DevicePlan, SendsToOurselvesPairWithReceivesInCallOrder) {
  float a[4], b[4], c[2], d[2];
  const std::vector<CollTask> ok = {send(0, 4, a), send(0, 2, c), recv(0, 4, b), recv(0, 2, d)};
  P2pPlan plan;
  ASSERT_EQ(planP2p(ok.data(), ok.size(), 0, 2, "test", &plan), fcclSuccess);
  ASSERT_EQ(plan.selfCopies.size(), 2u);
  EXPECT_EQ(plan.selfCopies[0].first->send, a);
  EXPECT_EQ(plan.selfCopies[0].second->recv, b);
  EXPECT_EQ(plan.selfCopies[1].first->send, c);
  EXPECT_TRUE(plan.rounds.empty());

  const std::vector<CollTask> unpaired = {send(0, 4, a)};
  EXPECT_EQ(planP2p(unpaired.data(), unpaired.size(), 0, 2, "fcclSend", &plan), fcclInvalidUsage);
  EXPECT_NE(std::string(lastError()).find("fcclSend: rank 0: 1 sends to itself but 0 receives"),
            std::string::npos)
      << lastError();
  const std::vector<CollTask> sizes = {send(0, 4, a), recv(0, 2, d)};
  EXPECT_EQ(planP2p(sizes.data(), sizes.size(), 0, 2, "group", &plan), fcclInvalidUsage);
  EXPECT_NE(std::string(lastError()).find("a send of 16 bytes to itself meets a receive of 8 bytes"),
            std::string::npos)
      << lastError();
}

TEST(DevicePlan, AlltoAllIsOneRoundOfEveryPeerAndACopyToOurselves) {
  float in[12], out[12];
  CollTask t = task(CollKind::AlltoAll, 3, fcclFloat32);
  t.send = in;
  t.recv = out;
  const std::vector<CollTask> p2p = alltoAllAsP2p(t, 4);
  P2pPlan plan;
  ASSERT_EQ(planP2p(p2p.data(), p2p.size(), 2, 4, "AlltoAll", &plan), fcclSuccess);
  ASSERT_EQ(plan.rounds.size(), 1u);
  EXPECT_EQ(plan.rounds[0].size(), 6u);  // 3 peers x 2 directions
  for (const dev::DevP2pTask& x : plan.rounds[0]) {
    EXPECT_NE(x.peer, 2);
    EXPECT_EQ(x.bytes, 12u);
    EXPECT_EQ(x.buf, reinterpret_cast<char*>(x.isSend ? in : out) + x.peer * 12);
  }
  ASSERT_EQ(plan.selfCopies.size(), 1u);
  EXPECT_EQ(plan.selfCopies[0].first->send, in + 6);
  EXPECT_EQ(plan.selfCopies[0].second->recv, out + 6);
}

TEST(DevicePlan, TooManyPeersInOneRoundIsRefused) {
  std::vector<float> buf(1);
  std::vector<CollTask> tasks;
  for (int p = 1; p <= 40; ++p) {
    tasks.push_back(send(p, 1, buf.data()));
    tasks.push_back(recv(p, 1, buf.data()));
  }
  P2pPlan plan;
  EXPECT_EQ(planP2p(tasks.data(), tasks.size(), 0, 41, "group", &plan), fcclInvalidUsage);
  EXPECT_NE(std::string(lastError()).find("more than 64 peers and directions"), std::string::npos)
      << lastError();
}

}  // namespace
}  // namespace fccl::cuda
