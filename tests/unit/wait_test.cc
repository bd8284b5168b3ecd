// wait_test.cc - the end of a wait (src/base/wait.h, with src/peer_monitor.h): a wait whose awaited peer has
// exited ends with fcclRemoteError naming it, unless what it waited for arrived after the last poll (the peer
// delivered, then exited): then the wait succeeds. Also the timeout sentence.
#include "src/base/wait.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "src/base/error.h"
#include "src/peer_monitor.h"

namespace fccl {
namespace {

// A communicator on which rank 1 (a process) is already known to have exited: every slow pause
// of a wait ends at once.
struct DeadPeerContext {
  int pids[2] = {0, int(getpid())};
  std::atomic<int> deadPeer{2};  // 1 + rank 1
  PeerMonitor monitor;
  WaitContext ctx;
  DeadPeerContext() {
    ctx.rank = 0;
    ctx.opName = "Recv";
    ctx.opSeq = 7;
    ctx.peer = 1;
    ctx.what = "data from peer";
    ctx.spinLimit = 1;  // straight to the slow path
    monitor.peerPids = pids;
    monitor.nranks = 2;
    monitor.deadPeer = &deadPeer;
    ctx.watch = &monitor;
  }
};

TEST(Wait, DeadPeerEndsTheWaitNamingIt) {
  DeadPeerContext d;
  EXPECT_EQ(waitUntil(d.ctx, [] { return false; }), fcclRemoteError);
  EXPECT_NE(std::string(lastError()).find("Recv #7: peer rank 1"), std::string::npos) << lastError();
}

TEST(Wait, DataThatArrivedBeforeThePeerExitedCounts) {
  DeadPeerContext d;
  int polls = 0;
  // False at the first two polls (before the wait and at the top of its loop), true once the
  // slow pause has found the peer gone: the peer delivered in between.
  EXPECT_EQ(waitUntil(d.ctx, [&] { return ++polls >= 3; }), fcclSuccess);
  EXPECT_EQ(polls, 3);
}

TEST(Wait, TimeoutNamesTheOperationAndThePeer) {
  WaitContext ctx;
  ctx.rank = 2;
  ctx.opName = "AllReduce";
  ctx.opSeq = 41;
  ctx.peer = 3;
  ctx.what = "free slot at peer";
  ctx.timeoutMs = 50;
  ctx.spinLimit = 1;
  EXPECT_EQ(waitUntil(ctx, [] { return false; }), fcclSystemError);
  EXPECT_NE(std::string(lastError())
                .find("rank 2: AllReduce #41 timed out after 50 ms waiting for free slot at "
                      "peer of rank 3"),
            std::string::npos)
      << lastError();
}

}  // namespace
}  // namespace fccl
