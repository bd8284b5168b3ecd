// run_ring.cc - instantiates the ring algorithms with the host primitives and the right hook:
// the identity hook when there is no post-op (the common case compiles to plain copies and
// reductions), CollHook for Avg and PreMulSum, either behind ReadyHook when the input is still
// being produced (fcclAllReduceOverlap).
#include "collectives/all_gather_ring.h"
#include "collectives/allreduce_ring.h"
#include "collectives/broadcast_ring.h"
#include "collectives/coll.h"
#include "collectives/prims_host.h"
#include "collectives/reduce_ring.h"
#include "collectives/reduce_scatter_ring.h"
#include "collectives/sliced_ring.h"
#include "src/base/checks.h"

namespace fccl {

namespace {

template <class Hook>
fcclResult_t runRingWithHook(CollContext& ctx, const CollTask& t, Hook& hook) {
  const size_t elem = dtypeSize(t.type);
  const int n = ctx.nranks;
  // Positions on the ring: a root is a rank, so it becomes its position.
  auto rankAt = [&](int pos) { return ctx.ring != nullptr ? ctx.ring[pos] : pos; };
  int root = t.root;
  if (ctx.ring != nullptr && (t.kind == CollKind::Broadcast || t.kind == CollKind::Reduce))
    for (int i = 0; i < n; ++i)
      if (ctx.ring[i] == t.root) root = i;
  RingArgs a{ctx.rank,
             n,
             t.count,
             elem,
             ctx.chunkBytes / elem,
             root,
             static_cast<const char*>(t.send),
             static_cast<char*>(t.recv)};
  if (n == 1) {
    // Alone: every collective is a (hooked) local copy of this rank's data.
    if constexpr (!Hook::kHasLoad && !Hook::kHasReduced && !Hook::kHasInputWait) {
      if (t.recv != t.send && t.count > 0) memmove(t.recv, t.send, t.count * elem);
      return fcclSuccess;
    } else {
      // Chunk by chunk through scratch, as the ring would: the hook sees the reduced value
      // before anything lands in the output (a fused hook may read the output's old value).
      for (size_t off = 0; off < t.count; off += a.chunkElems) {
        const ChunkDesc d{off, std::min(a.chunkElems, t.count - off), 0, 0};
        const char* src = a.send + off * elem;
        if constexpr (Hook::kHasInputWait) FCCL_CHECK(hook.waitInput(d));
        if constexpr (Hook::kHasLoad)
          hook.load(d, ctx.scratch, src);
        else
          memcpy(ctx.scratch, src, d.count * elem);
        if constexpr (Hook::kHasReduced) hook.reduced(d, ctx.scratch);
        if (!hook.ownOutputWritten()) memmove(a.recv + off * elem, ctx.scratch, d.count * elem);
      }
      return fcclSuccess;
    }
  }
  SendConn* next = &ctx.conns->send[rankAt(ringMod(ctx.rank + 1, n))];
  RecvConn* prev = &ctx.conns->recv[rankAt(ringMod(ctx.rank - 1, n))];
  // Streaming stores pay off once the output no longer fits in the caches (measured: 8 MiB).
  const bool streaming = t.count * elem * (t.kind == CollKind::AllGather ? n : 1) >= (size_t(8) << 20);
  PrimsArgs pa{t.type, t.op, elem, ctx.tag, streaming, ctx.scratch, ctx.wait};
  HostPrims<Hook> p(next, prev, pa, hook);
  switch (t.kind) {
    case CollKind::AllReduce:
      return allReduceRing(p, a);
    case CollKind::ReduceScatter:
      return reduceScatterRing(p, a);
    case CollKind::AllGather:
      return allGatherRing(p, a);
    case CollKind::Broadcast:
      return broadcastRing(p, a);
    case CollKind::ReduceScatterSliced:
      return reduceScatterSlicedRing(p, a);
    case CollKind::AllGatherSliced:
      return allGatherSlicedRing(p, a);
    case CollKind::Reduce:
      return reduceRing(p, a);
    default:
      return setError(fcclInternalError, "ring: %s has no ring algorithm", collName(t.kind));
  }
}

template <class Base>
fcclResult_t runRingReady(CollContext& ctx, const CollTask& t, const Base& base) {
  ReadyHook<Base> hook;
  static_cast<Base&>(hook) = base;
  hook.ready = t.sendReady;
  hook.wait = ctx.wait;
  return runRingWithHook(ctx, t, hook);
}

}  // namespace

fcclResult_t runRing(CollContext& ctx, const CollTask& t) {
  if (t.sendReady != nullptr) {
    if (t.premulScalar == nullptr && t.avgDivisor <= 1) return runRingReady(ctx, t, IdentityHook{});
    return runRingReady(ctx, t, CollHook{t.type, t.premulScalar, t.avgDivisor});
  }
  if (t.premulScalar == nullptr && t.avgDivisor <= 1) {
    IdentityHook hook;
    return runRingWithHook(ctx, t, hook);
  }
  CollHook hook{t.type, t.premulScalar, t.avgDivisor};
  return runRingWithHook(ctx, t, hook);
}

fcclResult_t runRingHooked(CollContext& ctx, const CollTask& t, FnHook& hook) {
  hook.type = t.type;
  hook.divisor = t.avgDivisor;
  if (t.sendReady != nullptr) {
    // A fused program's producer is still writing the input (overlap): wait per chunk too.
    ReadyHook<FnHook> ready;
    static_cast<FnHook&>(ready) = hook;
    ready.ready = t.sendReady;
    ready.wait = ctx.wait;
    fcclResult_t res = runRingWithHook(ctx, t, ready);
    hook.status = ready.status;
    return res != fcclSuccess ? res : hook.status;
  }
  fcclResult_t res = runRingWithHook(ctx, t, hook);
  return res != fcclSuccess ? res : hook.status;
}

const char* collName(CollKind k) {
  switch (k) {
    case CollKind::AllReduce:
      return "AllReduce";
    case CollKind::Reduce:
      return "Reduce";
    case CollKind::Broadcast:
      return "Broadcast";
    case CollKind::ReduceScatter:
      return "ReduceScatter";
    case CollKind::AllGather:
      return "AllGather";
    case CollKind::AlltoAll:
      return "AlltoAll";
    case CollKind::Send:
      return "Send";
    case CollKind::ReduceScatterSliced:
      return "ReduceScatter(sliced)";
    case CollKind::AllGatherSliced:
      return "AllGather(sliced)";
    case CollKind::Recv:
      return "Recv";
  }
  return "unknown";
}

}  // namespace fccl
