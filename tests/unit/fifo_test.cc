// fifo_test.cc - the connector FIFO on its own: slots come out in order across many
// wrap-arounds, a full FIFO refuses acquire, an empty one refuses peek, metadata travels with
// each slot, a producer/consumer pair on two threads moves a stream intact, and a wait on a peer
// process that exited (a zombie here) ends with its name.
#include "transports/fifo.h"
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include "src/base/error.h"
#include "src/peer_monitor.h"

namespace fccl {
namespace {

struct Fifo {
  static constexpr int kSlots = 4;
  static constexpr size_t kSlotBytes = 64;
  std::unique_ptr<FifoCtrl> ctrl = std::make_unique<FifoCtrl>();
  std::vector<char> slots = std::vector<char>(kSlots * kSlotBytes);
  Fifo() {
    ctrl->head.store(0);
    ctrl->tail.store(0);
  }
  SendConn sender() { return SendConn(ctrl.get(), slots.data(), kSlots, kSlotBytes, 1); }
  RecvConn receiver() { return RecvConn(ctrl.get(), slots.data(), kSlots, kSlotBytes, 0); }
};

TEST(Fifo, FullRefusesAcquireAndEmptyRefusesPeek) {
  Fifo f;
  SendConn s = f.sender();
  RecvConn r = f.receiver();
  const char* data;
  const SlotMeta* meta;
  EXPECT_FALSE(r.tryPeek(&data, &meta));
  char* slot;
  for (int i = 0; i < Fifo::kSlots; ++i) {
    ASSERT_TRUE(s.tryAcquire(&slot));
    s.post(8, 100 + i);
  }
  EXPECT_FALSE(s.tryAcquire(&slot)) << "a full FIFO must not hand out a slot";
  ASSERT_TRUE(r.tryPeek(&data, &meta));
  EXPECT_EQ(meta->tag, 100u);
  r.release();
  EXPECT_TRUE(s.tryAcquire(&slot)) << "a released slot is free again";
}

TEST(Fifo, SlotsAndMetadataArriveInOrderAcrossWraparound) {
  Fifo f;
  SendConn s = f.sender();
  RecvConn r = f.receiver();
  for (uint32_t i = 0; i < 1000; ++i) {
    char* slot;
    ASSERT_TRUE(s.tryAcquire(&slot));
    memcpy(slot, &i, sizeof(i));
    s.post(sizeof(i), i * 3, i + 7);
    const char* data;
    const SlotMeta* meta;
    ASSERT_TRUE(r.tryPeek(&data, &meta));
    uint32_t got;
    memcpy(&got, data, sizeof(got));
    EXPECT_EQ(got, i);
    EXPECT_EQ(meta->bytes, sizeof(i));
    EXPECT_EQ(meta->tag, i * 3);
    EXPECT_EQ(meta->msgBytes, i + 7u);
    r.release();
  }
}

TEST(Fifo, TwoThreadsStreamIntact) {
  Fifo f;
  constexpr uint64_t kCount = 200000;
  std::atomic<int> abortFlag{0};
  WaitContext ctx;
  ctx.abortFlag = &abortFlag;
  ctx.timeoutMs = 20000;
  ctx.opName = "FifoTest";
  std::thread producer([&] {
    SendConn s = f.sender();
    for (uint64_t i = 0; i < kCount; ++i) {
      char* slot = nullptr;
      ASSERT_EQ(s.acquire(&slot, ctx), fcclSuccess);
      memcpy(slot, &i, sizeof(i));
      s.post(sizeof(i), 0);
    }
  });
  RecvConn r = f.receiver();
  uint64_t bad = 0;
  for (uint64_t i = 0; i < kCount; ++i) {
    const char* data = nullptr;
    const SlotMeta* meta = nullptr;
    ASSERT_EQ(r.wait(&data, &meta, ctx), fcclSuccess);
    uint64_t got;
    memcpy(&got, data, sizeof(got));
    bad += got != i;
    r.release();
  }
  producer.join();
  EXPECT_EQ(bad, 0u);
}

TEST(Fifo, WaitOnEmptyFifoTimesOutWithASentence) {
  Fifo f;
  RecvConn r = f.receiver();
  WaitContext ctx;
  ctx.timeoutMs = 100;
  ctx.rank = 3;
  ctx.opName = "AllReduce";
  ctx.opSeq = 42;
  ctx.peer = 2;
  ctx.what = "data";
  const char* data;
  const SlotMeta* meta;
  EXPECT_EQ(r.wait(&data, &meta, ctx), fcclSystemError);
  std::string msg = lastError();
  EXPECT_NE(msg.find("rank 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("AllReduce #42"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rank 2"), std::string::npos) << msg;
}

TEST(Fifo, AbortFlagEndsAWaitPromptly) {
  Fifo f;
  RecvConn r = f.receiver();
  std::atomic<int> abortFlag{0};
  WaitContext ctx;
  ctx.abortFlag = &abortFlag;
  ctx.timeoutMs = 60000;
  std::thread aborter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    abortFlag.store(1);
  });
  const char* data;
  const SlotMeta* meta;
  int64_t t0 = nowNs();
  EXPECT_EQ(r.wait(&data, &meta, ctx), fcclRemoteError);
  EXPECT_LT(nowNs() - t0, int64_t(5) * 1000000000);
  aborter.join();
}

TEST(Fifo, ExitedPeerProcessEndsAWaitWithItsName) {
  // A child that exits and stays unreaped: a zombie, which kill(pid, 0) still finds.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, id_t(child), &info, WEXITED | WNOWAIT), 0);  // exited, not reaped
  Fifo f;
  RecvConn r = f.receiver();
  const int pids[2] = {0, int(child)};
  std::atomic<int> deadPeer{0};
  WaitContext ctx;
  ctx.timeoutMs = 60000;
  ctx.rank = 0;
  ctx.opName = "AllReduce";
  ctx.opSeq = 7;
  ctx.peer = 1;
  ctx.what = "data";
  PeerMonitor monitor;
  monitor.peerPids = pids;
  monitor.nranks = 2;
  monitor.deadPeer = &deadPeer;
  ctx.watch = &monitor;
  const char* data;
  const SlotMeta* meta;
  int64_t t0 = nowNs();
  EXPECT_EQ(r.wait(&data, &meta, ctx), fcclRemoteError);
  EXPECT_LT(nowNs() - t0, int64_t(2) * 1000000000);
  std::string msg = lastError();
  EXPECT_NE(msg.find("peer rank 1 (pid " + std::to_string(child) + ") exited"), std::string::npos) << msg;
  EXPECT_EQ(deadPeer.load(), 2);
  // Once a peer is known dead, any other wait of the communicator ends at its first slow pause.
  ctx.peer = 0;
  t0 = nowNs();
  EXPECT_EQ(r.wait(&data, &meta, ctx), fcclRemoteError);
  EXPECT_LT(nowNs() - t0, int64_t(1) * 1000000000);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
}

}  // namespace
}  // namespace fccl
