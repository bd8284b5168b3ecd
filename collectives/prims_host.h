// prims_host.h - the primitives of the host backend. HostPrims: the eight named operations
// every ring algorithm is written in (NCCL's send / recvReduceSend / recvReduceCopySend /
// recvCopySend / recv, plus recvReduceCopy, copySend and localCopy); each moves one chunk of
// at most one FIFO slot through the ring neighbours `next` (we send to) and `prev` (we receive
// from), and runs the hook at its point. HostP2pPrims: the slot-at-a-time operations of the
// point-to-point batch (p2p.h), to any peer. HostDirectPrims: the latency algorithm's
// publications (direct_algo.h), read in place in the peers' areas. Every wait is bounded and abortable
// (WaitContext); every received slot is checked against the tag and size this rank expects,
// so ranks that called different operations get an error instead of a silently wrong result.
#pragma once
#include <algorithm>
#include <cstring>
#include <memory>
#include "collectives/copy.h"
#include "collectives/direct.h"
#include "collectives/direct_algo.h"
#include "collectives/hooks.h"
#include "collectives/p2p.h"
#include "collectives/reduce_kernels.h"
#include "src/base/error.h"
#include "transports/fifo.h"

#define FCCL_PRIMS_CHECK(call)        \
  do {                                \
    fcclResult_t r_ = (call);         \
    if (r_ != fcclSuccess) return r_; \
  } while (0)

namespace fccl {

struct PrimsArgs {
  fcclDataType_t type;
  fcclRedOp_t op;  // base op for reduceN (sum for avg / premulsum)
  size_t elemSize;
  uint32_t tag;       // identifies the operation on the wire
  bool streamOutput;  // large operation: write the output with streaming stores (copy.h)
  char* scratch;      // one slot of scratch for load hooks
  WaitContext wait;   // who waits for what, for timeout / abort messages
};

template <class Hook>
class HostPrims {
 public:
  HostPrims(SendConn* next, RecvConn* prev, const PrimsArgs& args, Hook& hook)
      : next_(next), prev_(prev), a_(args), hook_(hook) {}

  // step 0 of a ring: our own (loaded) chunk goes to next.
  fcclResult_t send(const char* src, const ChunkDesc& d) {
    char* out;
    FCCL_PRIMS_CHECK(waitInput(d));
    FCCL_PRIMS_CHECK(acquireNext(&out));
    loadInto(d, out, src);
    next_->post(bytes(d), a_.tag);
    return fcclSuccess;
  }
  // Middle of a reduce: received partial + own chunk -> next.
  fcclResult_t recvReduceSend(const char* src, const ChunkDesc& d) {
    const char* in;
    char* out;
    FCCL_PRIMS_CHECK(waitInput(d));
    FCCL_PRIMS_CHECK(waitPrev(d, &in));
    FCCL_PRIMS_CHECK(acquireNext(&out));
    reduceInto(d, out, in, src);
    prev_->release();
    next_->post(bytes(d), a_.tag);
    return fcclSuccess;
  }
  // The step that produces the final value: reduce, run the reduced hook, store, pass on.
  fcclResult_t recvReduceCopySend(const char* src, char* dst, const ChunkDesc& d) {
    const char* in;
    char* out;
    FCCL_PRIMS_CHECK(waitInput(d));
    FCCL_PRIMS_CHECK(waitPrev(d, &in));
    FCCL_PRIMS_CHECK(acquireNext(&out));
    reduceInto(d, out, in, src);
    prev_->release();
    if constexpr (Hook::kHasReduced) hook_.reduced(d, out);
    next_->post(bytes(d), a_.tag);
    // The slot stays ours to read until next releases it.
    if (!hook_.ownOutputWritten()) copyToOutput(dst, out, bytes(d), a_.streamOutput);
    return fcclSuccess;
  }
  // Final step of reduce-scatter / reduce at the root: reduce straight into the output.
  fcclResult_t recvReduceCopy(const char* src, char* dst, const ChunkDesc& d) {
    const char* in;
    FCCL_PRIMS_CHECK(waitInput(d));
    FCCL_PRIMS_CHECK(waitPrev(d, &in));
    reduceInto(d, dst, in, src);
    prev_->release();
    if constexpr (Hook::kHasReduced) hook_.reduced(d, dst);
    return fcclSuccess;
  }
  // All-gather phase: keep a copy, pass it on.
  fcclResult_t recvCopySend(char* dst, const ChunkDesc& d) {
    const char* in;
    char* out;
    FCCL_PRIMS_CHECK(waitPrev(d, &in));
    FCCL_PRIMS_CHECK(acquireNext(&out));
    memcpy(out, in, bytes(d));
    prev_->release();
    next_->post(bytes(d), a_.tag);
    copyToOutput(dst, out, bytes(d), a_.streamOutput);
    if constexpr (Hook::kHasGathered) hook_.gathered(d, dst);
    return fcclSuccess;
  }
  // Last step of an all-gather / broadcast chain.
  fcclResult_t recv(char* dst, const ChunkDesc& d) {
    const char* in;
    FCCL_PRIMS_CHECK(waitPrev(d, &in));
    copyToOutput(dst, in, bytes(d), a_.streamOutput);
    prev_->release();
    if constexpr (Hook::kHasGathered) hook_.gathered(d, dst);
    return fcclSuccess;
  }
  // First step of an all-gather / broadcast root: own data to next and (if distinct) to dst.
  fcclResult_t copySend(const char* src, char* dst, const ChunkDesc& d) {
    char* out;
    FCCL_PRIMS_CHECK(acquireNext(&out));
    memcpy(out, src, bytes(d));
    next_->post(bytes(d), a_.tag);
    if (dst != src) copyToOutput(dst, out, bytes(d), a_.streamOutput);
    return fcclSuccess;
  }
  // One rank alone: the loaded input is the reduced result.
  fcclResult_t localCopy(const char* src, char* dst, const ChunkDesc& d) {
    FCCL_PRIMS_CHECK(waitInput(d));
    if constexpr (Hook::kHasLoad)
      hook_.load(d, dst, src);
    else if (dst != src)
      memmove(dst, src, bytes(d));
    if constexpr (Hook::kHasReduced) hook_.reduced(d, dst);
    return fcclSuccess;
  }

  size_t chunkElems() const { return next_->slotBytes() / a_.elemSize; }

 private:
  size_t bytes(const ChunkDesc& d) const { return d.count * a_.elemSize; }

  // Before the first read of our own input chunk (fcclAllReduceOverlap's producer wait).
  fcclResult_t waitInput(const ChunkDesc& d) {
    if constexpr (Hook::kHasInputWait)
      if (d.count > 0) return hook_.waitInput(d);
    return fcclSuccess;
  }

  fcclResult_t acquireNext(char** out) {
    a_.wait.peer = next_->peer();
    a_.wait.what = "a free FIFO slot";
    return next_->acquire(out, a_.wait);
  }
  fcclResult_t waitPrev(const ChunkDesc& d, const char** in) {
    a_.wait.peer = prev_->peer();
    a_.wait.what = "data";
    const SlotMeta* meta;
    fcclResult_t r = prev_->wait(in, &meta, a_.wait);
    if (r != fcclSuccess) return r;
    if (meta->tag != a_.tag) return callMismatch(a_.wait, prev_->peer(), "a chunk");
    if (meta->bytes != bytes(d))
      return setError(
          fcclInvalidUsage,
          "rank %d: %s #%llu expected a chunk of %zu bytes (tag %08x) from rank %d but got %u bytes "
          "(tag %08x): its chunking differs (FCCL_CHUNKSIZE set differently on the ranks?)",
          a_.wait.rank, a_.wait.opName, (unsigned long long)a_.wait.opSeq, bytes(d), a_.tag, prev_->peer(),
          meta->bytes, meta->tag);
    return fcclSuccess;
  }
  void loadInto(const ChunkDesc& d, char* out, const char* src) {
    if constexpr (Hook::kHasLoad)
      hook_.load(d, out, src);
    else
      memcpy(out, src, bytes(d));
  }
  void reduceInto(const ChunkDesc& d, char* out, const char* in, const char* src) {
    const char* own = src;
    if constexpr (Hook::kHasLoad) {
      hook_.load(d, a_.scratch, src);
      own = a_.scratch;
    }
    const void* srcs[2] = {in, own};
    reduceN(a_.type, a_.op, out, srcs, 2, d.count);
  }

  SendConn* next_;
  RecvConn* prev_;
  PrimsArgs a_;
  Hook& hook_;
};

// The point-to-point batch's primitives (p2p.h) on the FIFOs to every peer. Each slot carries
// the whole message's size, so a receive of the wrong size is an error, not a truncation.
class HostP2pPrims {
 public:
  static constexpr uint32_t kTag = 0x50325000u;  // "P2P"; p2p matching needs no sequence number

  HostP2pPrims(Connections* conns, int rank, WaitContext& wait) : conns_(conns), rank_(rank), wait_(wait) {}

  bool trySend(int peer, const char* src, size_t bytes, uint64_t msgBytes, size_t* moved) {
    SendConn& c = conns_->send[peer];
    char* slot;
    if (!c.tryAcquire(&slot)) return false;
    *moved = std::min(c.slotBytes(), bytes);
    memcpy(slot, src, *moved);
    c.post(uint32_t(*moved), kTag, msgBytes);
    return true;
  }

  fcclResult_t tryRecv(int peer, char* dst, size_t room, uint64_t msgBytes, size_t* moved) {
    RecvConn& c = conns_->recv[peer];
    const char* data;
    const SlotMeta* slotMeta;
    *moved = 0;
    if (!c.tryPeek(&data, &slotMeta)) return fcclSuccess;
    // One read of the metadata the peer wrote: the bytes checked are the bytes copied.
    const SlotMeta meta = *slotMeta;
    if (meta.tag != kTag || meta.msgBytes != msgBytes || meta.bytes > room)
      return setError(
          fcclInvalidUsage,
          "rank %d: fcclRecv of %llu bytes from rank %d, but rank %d sent %llu bytes (tag %08x)%s", rank_,
          (unsigned long long)msgBytes, peer, peer, (unsigned long long)meta.msgBytes, meta.tag,
          meta.tag != kTag ? ": it is running a collective, not a send" : "");
    // A sender fills every slot but a message's last (never empty); more than a slot holds
    // would read past it.
    if (meta.bytes == 0 || meta.bytes > c.slotBytes())
      return setError(
          fcclInternalError,
          "rank %d: fcclRecv from rank %d: a FIFO slot claims %u bytes, but a slot holds 1 to %zu "
          "(corrupted metadata)",
          rank_, peer, meta.bytes, c.slotBytes());
    memcpy(dst, data, meta.bytes);
    c.release();
    *moved = meta.bytes;
    return fcclSuccess;
  }

  fcclResult_t localCopy(const P2pTransfer& recv, const P2pTransfer& send) {
    if (send.bytes != recv.bytes)
      return setError(fcclInvalidUsage,
                      "rank %d: fcclSend of %zu bytes to itself met an fcclRecv of %zu bytes", rank_,
                      send.bytes, recv.bytes);
    if (recv.buf != send.buf) memmove(recv.buf, send.buf, send.bytes);
    return fcclSuccess;
  }

  fcclResult_t unmatchedSelf() const {
    return setError(fcclInvalidUsage,
                    "rank %d: a send to itself has no matching receive in the same group (or vice versa)",
                    rank_);
  }

  // Nothing moved this round: pause (spin, yield, nap; bounded and abortable), waiting on `peer`.
  fcclResult_t stalled(int peer, bool receiving) {
    if (!waiter_) {
      wait_.peer = peer;
      wait_.what = receiving ? "data to receive" : "a free slot to send into";
      waiter_ = std::make_unique<Waiter>(wait_);
    }
    return waiter_->pause();
  }
  void progressed() { waiter_.reset(); }

 private:
  Connections* conns_;
  const int rank_;
  WaitContext& wait_;
  std::unique_ptr<Waiter> waiter_;  // alive while progress stalls
};

// The latency algorithm's primitives (direct_algo.h) on the direct areas of every rank
// (direct.h), for one task.
class HostDirectPrims {
 public:
  HostDirectPrims(CollContext& ctx, const CollTask& t) : ctx_(ctx), t_(t), views_(ctx.directViews) {}

  fcclResult_t waitDone(int peer, uint64_t seq) {
    ctx_.wait.peer = peer;
    ctx_.wait.what = "peers to finish reading the previous publication";
    DirectCtrl* c = views_[peer].ctrl;
    return waitUntil(ctx_.wait, [&] { return c->doneSeq.load(std::memory_order_acquire) >= seq; });
  }

  fcclResult_t publish(int k, uint64_t seq, const CollTask& t, size_t bytes) {
    if (bytes > ctx_.directBytes)  // the tuner's promise; a wrong one must not write past the slot
      return setError(
          fcclInternalError, "rank %d: %s #%llu: direct publication of %zu bytes exceeds the %zu-byte slot",
          ctx_.rank, ctx_.wait.opName, (unsigned long long)ctx_.wait.opSeq, bytes, ctx_.directBytes);
    const DirectView& own = views_[ctx_.rank];
    const bool premul = t.premulScalar != nullptr && t.kind != CollKind::AllGather &&
                        t.kind != CollKind::AlltoAll && t.kind != CollKind::Broadcast;
    if (premul)
      scale(t.type, own.data[k], t.send, t.premulScalar, bytes / dtypeSize(t.type));
    else if (bytes != 0)  // send may be null when there is nothing to copy (memcpy UB)
      memcpy(own.data[k], t.send, bytes);
    own.header[k]->bytes = uint32_t(bytes);
    own.header[k]->tag = ctx_.tag;
    own.header[k]->seq.store(seq, std::memory_order_release);
    return fcclSuccess;
  }

  fcclResult_t waitPublished(int peer, int k, uint64_t seq, size_t bytes) {
    DirectSlotHeader* h = views_[peer].header[k];
    ctx_.wait.peer = peer;
    ctx_.wait.what = "the peer's published data";
    fcclResult_t r = waitUntil(ctx_.wait, [&] { return h->seq.load(std::memory_order_acquire) == seq; });
    if (r != fcclSuccess) return r;
    if (h->tag != ctx_.tag) return callMismatch(ctx_.wait, peer, "the publication");
    if (h->bytes != bytes)
      return setError(
          fcclInvalidUsage,
          "rank %d: %s #%llu expected %zu bytes (tag %08x) from rank %d but it published %u bytes "
          "(tag %08x): the same call with another size, so its memory was overwritten",
          ctx_.rank, ctx_.wait.opName, (unsigned long long)ctx_.wait.opSeq, bytes, ctx_.tag, peer, h->bytes,
          h->tag);
    return fcclSuccess;
  }

  const char* data(int peer, int k) const { return views_[peer].data[k]; }
  void reduce(void* dst, const void* const* srcs, int n, size_t count) {
    reduceN(t_.type, t_.op, dst, srcs, n, count);
  }
  void divide(void* dst, size_t count) { fccl::divide(t_.type, dst, dst, t_.avgDivisor, count); }
  // count 0: buffers may be NULL, and memcpy from NULL is undefined even for 0 bytes.
  void copy(void* dst, const void* src, size_t bytes) {
    if (bytes != 0 && dst != src) memcpy(dst, src, bytes);
  }
  void done(uint64_t seq) { views_[ctx_.rank].ctrl->doneSeq.store(seq, std::memory_order_release); }
  fcclResult_t noDirectAlgorithm(CollKind k) const {
    return setError(fcclInternalError, "direct: %s has no direct algorithm", collName(k));
  }

 private:
  CollContext& ctx_;
  const CollTask& t_;
  const DirectView* views_;
};

}  // namespace fccl
