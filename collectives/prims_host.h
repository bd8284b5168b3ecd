// prims_host.h - the ring primitives of the host backend: the eight named operations every
// ring algorithm is written in (NCCL's send / recvReduceSend / recvReduceCopySend /
// recvCopySend / recv, plus recvReduceCopy, copySend and localCopy); each moves one chunk of
// at most one FIFO slot through the ring neighbours `next` (we send to) and `prev` (we receive
// from), and runs the hook at its point. The p2p and latency algorithms' host primitives are in
// prims_host_p2p.h and prims_host_direct.h. Every wait is bounded and abortable (WaitContext);
// every received slot is checked against the tag and size this rank expects, so ranks that
// called different operations get an error instead of a silently wrong result.
#pragma once
#include <algorithm>
#include <cstring>
#include "collectives/copy.h"
#include "collectives/hooks.h"
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
    if constexpr (requires(Hook & h, const ChunkDesc& c, void* p) { h.reducePairTo(c, p, p, p); }) {
      static_assert(!Hook::kHasLoad, "reducePairTo reads the own chunk as it is");
      if (hook_.reducesPairTo()) {
        // The hook reduces, computes and writes the chunk passed on in one loop (hooks.h).
        hook_.reducePairTo(d, in, src, out);
        prev_->release();
        next_->post(bytes(d), a_.tag);
        return fcclSuccess;
      }
    }
    if constexpr (requires(Hook & h, const ChunkDesc& c, void* p) { h.reducedTo(c, p, p); }) {
      static_assert(!Hook::kHasLoad, "reducedTo uses the scratch that load hooks reduce through");
      if (hook_.reducesTo() && a_.scratch != nullptr) {
        // The hook writes the chunk passed on (and the output) itself: reduce into private
        // scratch, so the shared slot is written once, by the hook (hooks.h FnHook::fnTo).
        reduceInto(d, a_.scratch, in, src);
        prev_->release();
        hook_.reducedTo(d, a_.scratch, out);
        next_->post(bytes(d), a_.tag);
        return fcclSuccess;
      }
    }
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

}  // namespace fccl
