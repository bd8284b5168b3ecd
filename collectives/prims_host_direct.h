// prims_host_direct.h - the host primitives of the latency algorithm (direct_algo.h): this
// rank's publication written into its own area, the peers' publications waited for and read in
// place in theirs (direct.h), with the call's tag and size checked.
#pragma once
#include <cstring>
#include "collectives/coll.h"
#include "collectives/direct.h"
#include "collectives/direct_algo.h"
#include "collectives/reduce_kernels.h"
#include "src/base/error.h"
#include "src/base/wait.h"

namespace fccl {

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
