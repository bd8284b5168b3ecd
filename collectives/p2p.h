// p2p.h - point-to-point: a batch of sends and receives (one fcclGroupStart/End, or one
// AlltoAll) progresses together, a slot at a time, so that a rank sending to next and
// receiving from prev never deadlocks however large the messages are. Sends to one peer go in
// call order, and so do receives from one peer, which is what matches them up; a send to
// ourselves meets our receive of the same rank in call order. Written over the p2p
// primitives (prims_host_p2p.h):
//   trySend(peer, src, bytes, msgBytes, &moved)  one slot of a message, if a slot is free
//   tryRecv(peer, dst, room, msgBytes, &moved)   one slot of a message, if one arrived
//   localCopy(dst, src, bytes)                   a send to ourselves
//   stalled(peer, receiving) / progressed()      nothing moved this round / something did
#pragma once
#include <cstddef>
#include <deque>
#include <vector>
#include "collectives/coll.h"
#include "collectives/ring.h"
#include "src/base/dtype.h"

namespace fccl {

struct P2pTransfer {
  char* buf;
  size_t bytes;
  size_t done = 0;
};

template <class Prims>
fcclResult_t p2pBatch(Prims& p, const CollTask* tasks, size_t ntasks, int rank, int nranks) {
  std::vector<std::deque<P2pTransfer>> sends(nranks), recvs(nranks);
  size_t pending = 0;
  for (size_t i = 0; i < ntasks; ++i) {
    const CollTask& t = tasks[i];
    const size_t bytes = t.count * dtypeSize(t.type);
    if (bytes == 0) continue;  // as NCCL: a zero-size send or receive moves nothing
    char* buf = t.kind == CollKind::Send ? const_cast<char*>(static_cast<const char*>(t.send))
                                         : static_cast<char*>(t.recv);
    (t.kind == CollKind::Send ? sends : recvs)[t.root].push_back(P2pTransfer{buf, bytes});
    ++pending;
  }
  // To ourselves: the k-th send meets the k-th receive.
  auto& selfSends = sends[rank];
  auto& selfRecvs = recvs[rank];
  while (!selfSends.empty() && !selfRecvs.empty()) {
    FCCL_ALGO_CHECK(p.localCopy(selfRecvs.front(), selfSends.front()));
    selfSends.pop_front();
    selfRecvs.pop_front();
    pending -= 2;
  }
  if (!selfSends.empty() || !selfRecvs.empty()) return p.unmatchedSelf();

  while (pending > 0) {
    bool progressed = false;
    for (int peer = 0; peer < nranks; ++peer) {
      // As many slots as the peer's FIFO takes, then as many as have arrived.
      while (!sends[peer].empty()) {
        P2pTransfer& s = sends[peer].front();
        size_t moved = 0;
        if (!p.trySend(peer, s.buf + s.done, s.bytes - s.done, s.bytes, &moved)) break;
        s.done += moved;
        progressed = true;
        if (s.done == s.bytes) {
          sends[peer].pop_front();
          --pending;
        }
      }
      while (!recvs[peer].empty()) {
        P2pTransfer& r = recvs[peer].front();
        size_t moved = 0;
        FCCL_ALGO_CHECK(p.tryRecv(peer, r.buf + r.done, r.bytes - r.done, r.bytes, &moved));
        if (moved == 0) break;
        r.done += moved;
        progressed = true;
        if (r.done == r.bytes) {
          recvs[peer].pop_front();
          --pending;
        }
      }
    }
    if (progressed) {
      p.progressed();
      continue;
    }
    // Name one peer we are waiting on, for a timeout's sentence.
    int peer = 0;
    while (recvs[peer].empty() && sends[peer].empty()) ++peer;
    FCCL_ALGO_CHECK(p.stalled(peer, !recvs[peer].empty()));
  }
  return fcclSuccess;
}

}  // namespace fccl
