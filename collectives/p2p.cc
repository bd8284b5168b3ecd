// p2p.cc - point-to-point: a batch of sends and receives (one fcclGroupStart/End, or one
// AlltoAll) progresses together, a slot at a time, so that a rank sending to next and
// receiving from prev never deadlocks however large the messages are. Sends to one peer go
// in call order, and so do receives from one peer, which is what matches them up.
// Each slot carries the whole message size so a receive of the wrong size is an error.
#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>
#include "collectives/coll.h"
#include "collectives/reduce_kernels.h"
#include "src/base/checks.h"
#include "src/base/error.h"

namespace fccl {

namespace {

constexpr uint32_t kP2pTag = 0x50325000u;  // "P2P"; p2p matching needs no sequence number

struct Transfer {
  char* buf;
  size_t bytes;
  size_t done = 0;
};

}  // namespace

fcclResult_t runP2p(CollContext& ctx, const CollTask* tasks, size_t ntasks) {
  const int n = ctx.nranks;
  std::vector<std::deque<Transfer>> sends(n), recvs(n);
  size_t pending = 0;
  for (size_t i = 0; i < ntasks; ++i) {
    const CollTask& t = tasks[i];
    size_t bytes = t.count * dtypeSize(t.type);
    if (bytes == 0) continue;  // as NCCL: a zero-size send or receive moves nothing
    char* buf = t.kind == CollKind::Send ? const_cast<char*>(static_cast<const char*>(t.send))
                                         : static_cast<char*>(t.recv);
    (t.kind == CollKind::Send ? sends : recvs)[t.root].push_back(Transfer{buf, bytes});
    ++pending;
  }
  // To ourselves: pair the k-th send with the k-th receive.
  auto& selfSends = sends[ctx.rank];
  auto& selfRecvs = recvs[ctx.rank];
  while (!selfSends.empty() && !selfRecvs.empty()) {
    Transfer s = selfSends.front(), r = selfRecvs.front();
    if (s.bytes != r.bytes)
      return setError(fcclInvalidUsage,
                      "rank %d: fcclSend of %zu bytes to itself met an fcclRecv of %zu bytes", ctx.rank,
                      s.bytes, r.bytes);
    if (r.buf != s.buf) memmove(r.buf, s.buf, s.bytes);
    selfSends.pop_front();
    selfRecvs.pop_front();
    pending -= 2;
  }
  if (!selfSends.empty() || !selfRecvs.empty())
    return setError(fcclInvalidUsage,
                    "rank %d: a send to itself has no matching receive in the same group (or "
                    "vice versa)",
                    ctx.rank);

  WaitContext& w = ctx.wait;
  std::unique_ptr<Waiter> waiter;  // created when progress stalls, reset when it resumes
  while (pending > 0) {
    bool progressed = false;
    for (int p = 0; p < n; ++p) {
      while (!sends[p].empty()) {
        Transfer& s = sends[p].front();
        char* slot;
        if (!ctx.conns->send[p].tryAcquire(&slot)) break;
        size_t piece = std::min(ctx.conns->send[p].slotBytes(), s.bytes - s.done);
        memcpy(slot, s.buf + s.done, piece);
        ctx.conns->send[p].post(uint32_t(piece), kP2pTag, s.bytes);
        s.done += piece;
        progressed = true;
        if (s.done == s.bytes) {
          sends[p].pop_front();
          --pending;
        }
      }
      while (!recvs[p].empty()) {
        Transfer& r = recvs[p].front();
        const char* data;
        const SlotMeta* slotMeta;
        if (!ctx.conns->recv[p].tryPeek(&data, &slotMeta)) break;
        // One read of the metadata the peer wrote: the bytes checked are the bytes copied.
        const SlotMeta meta = *slotMeta;
        if (meta.tag != kP2pTag || meta.msgBytes != r.bytes || meta.bytes > r.bytes - r.done)
          return setError(
              fcclInvalidUsage,
              "rank %d: fcclRecv of %zu bytes from rank %d, but rank %d sent %llu bytes (tag %08x)%s",
              ctx.rank, r.bytes, p, p, (unsigned long long)meta.msgBytes, meta.tag,
              meta.tag != kP2pTag ? ": it is running a collective, not a send" : "");
        // A sender fills every slot but a message's last (never empty); more than a slot holds
        // would read past it.
        if (meta.bytes == 0 || meta.bytes > ctx.conns->recv[p].slotBytes())
          return setError(fcclInternalError,
                          "rank %d: fcclRecv from rank %d: a FIFO slot claims %u bytes, but a slot holds "
                          "1 to %zu (corrupted metadata)",
                          ctx.rank, p, meta.bytes, ctx.conns->recv[p].slotBytes());
        memcpy(r.buf + r.done, data, meta.bytes);
        r.done += meta.bytes;
        ctx.conns->recv[p].release();
        progressed = true;
        if (r.done == r.bytes) {
          recvs[p].pop_front();
          --pending;
        }
      }
    }
    if (progressed) {
      waiter.reset();
      continue;
    }
    if (!waiter) {
      // Name one peer we are waiting on, for the timeout message.
      w.peer = -1;
      for (int p = 0; p < n && w.peer < 0; ++p)
        if (!recvs[p].empty() || !sends[p].empty()) w.peer = p;
      w.what = recvs[w.peer].empty() ? "a free slot to send into" : "data to receive";
      waiter = std::make_unique<Waiter>(w);
    }
    FCCL_CHECK(waiter->pause());
  }
  return fcclSuccess;
}

}  // namespace fccl
