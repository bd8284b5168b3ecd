// allreduce_hier.cc - the two-level AllReduce for ranks spread over hosts, l per host: a
// reduce-scatter inside each host (the sliced partition: local position q ends with slice q of
// the host's sum, in its own place in recv), then an allreduce of slice q among the ranks of
// local position q on every host (l rings side by side, each 1/l of the data, so the network
// carries 2(h-1)/h of the tensor per host instead of the flat ring's 2(n-1)/n), then an
// all-gather inside each host. Each phase is a ring run on its own sub-ring (CollContext::ring)
// with its own wire tag, so a phase's chunk can never pass for another's. Pre-multiplication
// runs on the first phase's loads, the average's division on the slice's final value.
#include <algorithm>
#include "collectives/coll.h"
#include "src/base/dtype.h"

namespace fccl {

fcclResult_t runHierAllReduce(CollContext& ctx, const CollTask& t, const RingView& local,
                              const RingView& cross) {
  const size_t elem = dtypeSize(t.type);
  const size_t slice = (t.count + local.n - 1) / local.n;  // the sliced partition (sliced_ring.h)
  const size_t begin = std::min(t.count, size_t(local.pos) * slice);
  const size_t end = std::min(t.count, begin + slice);
  char* own = static_cast<char*>(t.recv) + begin * elem;
  const uint32_t tag = ctx.tag;
  auto on = [&](const RingView& r, uint32_t phase) {
    CollContext c = ctx;
    c.ring = r.ranks;
    c.nranks = r.n;
    c.rank = r.pos;
    c.tag = tag ^ (phase * 0x9e3779b9u);
    return c;
  };

  // 1. This host's sum, sliced: slice q lands in its place in recv on local position q.
  CollTask rs = t;
  rs.kind = CollKind::ReduceScatterSliced;
  rs.recv = own;
  rs.avgDivisor = 1;
  CollContext c1 = on(local, 1);
  fcclResult_t res = runRing(c1, rs);
  if (res != fcclSuccess) return res;

  // 2. Slice q summed over the hosts, in place; the average divides by every rank.
  CollTask ar = t;
  ar.kind = CollKind::AllReduce;
  ar.send = own;
  ar.recv = own;
  ar.count = end - begin;
  ar.premulScalar = nullptr;  // applied once, in phase 1
  ar.sendReady = nullptr;
  CollContext c2 = on(cross, 2);
  if (ar.count > 0) {
    res = runRing(c2, ar);
    if (res != fcclSuccess) return res;
  }

  // 3. Every slice to every rank of the host (in place: our slice already sits in recv).
  CollTask ag = t;
  ag.kind = CollKind::AllGatherSliced;
  ag.send = own;
  ag.premulScalar = nullptr;
  ag.avgDivisor = 1;
  ag.sendReady = nullptr;
  CollContext c3 = on(local, 3);
  return runRing(c3, ag);
}

}  // namespace fccl
