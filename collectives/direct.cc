// direct.cc - the latency algorithm: every rank publishes its contribution in its own
// shared slot, then reads what it needs straight from its peers' slots. One hop instead of
// n-1, no pipelining: the right choice while messages are small (the tuner's threshold).
//
// Slots alternate by direct-operation number (seq & 1). A rank may overwrite its slot of
// seq-2 only once every peer is done reading it. That is implied when, in op seq-1, this
// rank read every peer's seq-1 publication (a peer that published seq-1 had finished seq-2);
// otherwise (after a broadcast or reduce) we check the peers' doneSeq counters.
#include <cstring>
#include <vector>
#include "collectives/coll.h"
#include "collectives/reduce_kernels.h"
#include "src/base/checks.h"
#include "src/base/error.h"

namespace fccl {

namespace {

bool publishes(const CollTask& t, int rank) { return t.kind != CollKind::Broadcast || rank == t.root; }
bool readsAll(const CollTask& t, int rank) {
  switch (t.kind) {
    case CollKind::Broadcast:
      return false;
    case CollKind::Reduce:
      return rank == t.root;
    default:
      return true;
  }
}
bool readsPeer(const CollTask& t, int rank, int peer) {
  if (peer == rank) return false;
  switch (t.kind) {
    case CollKind::Broadcast:
      return peer == t.root;
    case CollKind::Reduce:
      return rank == t.root;
    default:
      return true;
  }
}

}  // namespace

size_t directPublishBytes(const CollTask& t, int nranks) {
  size_t elem = dtypeSize(t.type);
  switch (t.kind) {
    case CollKind::ReduceScatter:
    case CollKind::AlltoAll:
      return t.count * nranks * elem;
    default:
      return t.count * elem;
  }
}

fcclResult_t runDirect(CollContext& ctx, const CollTask& t) {
  const int n = ctx.nranks;
  const int me = ctx.rank;
  const size_t elem = dtypeSize(t.type);
  const uint64_t seq = ++ctx.direct->seq;
  const int k = int(seq & 1);
  const size_t pubBytes = directPublishBytes(t, n);
  const DirectView* views = ctx.directViews;
  WaitContext& w = ctx.wait;
  const char* send = static_cast<const char*>(t.send);
  char* recv = static_cast<char*>(t.recv);

  if (publishes(t, me)) {
    if (!ctx.direct->lastReadAll && seq > 2) {
      for (int p = 0; p < n; ++p) {
        if (p == me) continue;
        w.peer = p;
        w.what = "peers to finish reading the previous publication";
        DirectCtrl* c = views[p].ctrl;
        FCCL_CHECK(waitUntil(w, [&] { return c->doneSeq.load(std::memory_order_acquire) >= seq - 2; }));
      }
    }
    if (pubBytes > ctx.directBytes)  // the tuner's promise; a wrong one must not write past the slot
      return setError(fcclInternalError,
                      "rank %d: %s #%llu: direct publication of %zu bytes exceeds the %zu-byte slot", me,
                      w.opName, (unsigned long long)w.opSeq, pubBytes, ctx.directBytes);
    char* slot = views[me].data[k];
    if (t.premulScalar != nullptr && t.kind != CollKind::AllGather && t.kind != CollKind::AlltoAll &&
        t.kind != CollKind::Broadcast)
      scale(t.type, slot, send, t.premulScalar, pubBytes / elem);
    else if (pubBytes != 0)  // send may be null when there is nothing to copy (memcpy UB)
      memcpy(slot, send, pubBytes);
    views[me].header[k]->bytes = uint32_t(pubBytes);
    views[me].header[k]->tag = ctx.tag;
    views[me].header[k]->seq.store(seq, std::memory_order_release);
  }

  // Wait for every publication this rank reads, and check it is the same operation.
  for (int p = 0; p < n; ++p) {
    if (!readsPeer(t, me, p)) continue;
    DirectSlotHeader* h = views[p].header[k];
    w.peer = p;
    w.what = "the peer's published data";
    FCCL_CHECK(waitUntil(w, [&] { return h->seq.load(std::memory_order_acquire) == seq; }));
    if (h->tag != ctx.tag) return callMismatch(w, p, "the publication");
    if (h->bytes != pubBytes)
      return setError(
          fcclInvalidUsage,
          "rank %d: %s #%llu expected %zu bytes (tag %08x) from rank %d but it published %u bytes "
          "(tag %08x): the same call with another size, so its memory was overwritten",
          me, w.opName, (unsigned long long)w.opSeq, pubBytes, ctx.tag, p, h->bytes, h->tag);
  }

  const void* srcs[64];
  std::vector<const void*> manySrcs;
  const void** s = srcs;
  if (n > 64) {
    manySrcs.resize(n);
    s = manySrcs.data();
  }
  switch (t.kind) {
    case CollKind::AllReduce:
    case CollKind::Reduce:
      if (t.kind == CollKind::Reduce && me != t.root) break;
      for (int p = 0; p < n; ++p) s[p] = views[p].data[k];
      reduceN(t.type, t.op, recv, s, n, t.count);
      if (t.avgDivisor > 1) divide(t.type, recv, recv, t.avgDivisor, t.count);
      break;
    case CollKind::ReduceScatter:
      for (int p = 0; p < n; ++p) s[p] = views[p].data[k] + size_t(me) * t.count * elem;
      reduceN(t.type, t.op, recv, s, n, t.count);
      if (t.avgDivisor > 1) divide(t.type, recv, recv, t.avgDivisor, t.count);
      break;
    case CollKind::AllGather:
      // count 0: buffers may be NULL, and memcpy from NULL is undefined even for 0 bytes.
      for (int p = 0; p < n && t.count > 0; ++p) {
        char* dst = recv + size_t(p) * t.count * elem;
        const char* src = p == me ? send : views[p].data[k];
        if (dst != src) memcpy(dst, src, t.count * elem);
      }
      break;
    case CollKind::AlltoAll:
      for (int p = 0; p < n && t.count > 0; ++p)
        memcpy(recv + size_t(p) * t.count * elem,
               (p == me ? send : views[p].data[k]) + size_t(me) * t.count * elem, t.count * elem);
      break;
    case CollKind::Broadcast: {
      const char* src = me == t.root ? send : views[t.root].data[k];
      if (recv != src && t.count > 0) memcpy(recv, src, t.count * elem);
      break;
    }
    default:
      return setError(fcclInternalError, "direct: %s has no direct algorithm", collName(t.kind));
  }
  views[me].ctrl->doneSeq.store(seq, std::memory_order_release);
  ctx.direct->lastReadAll = readsAll(t, me);
  return fcclSuccess;
}

}  // namespace fccl
