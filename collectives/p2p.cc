// p2p.cc - the point-to-point batch (p2p.h) on the host primitives.
#include "collectives/p2p.h"
#include "collectives/coll.h"
#include "collectives/prims_host_p2p.h"

namespace fccl {

fcclResult_t runP2p(CollContext& ctx, const CollTask* tasks, size_t ntasks) {
  HostP2pPrims p(ctx.conns, ctx.rank, ctx.wait);
  return p2pBatch(p, tasks, ntasks, ctx.rank, ctx.nranks);
}

std::vector<CollTask> alltoAllAsP2p(const CollTask& t, int nranks) {
  const size_t blockBytes = t.count * dtypeSize(t.type);
  std::vector<CollTask> p2p;
  p2p.reserve(2 * size_t(nranks));
  for (int p = 0; p < nranks; ++p) {
    CollTask s = t, r = t;
    s.kind = CollKind::Send;
    s.send = static_cast<const char*>(t.send) + p * blockBytes;
    s.root = p;
    r.kind = CollKind::Recv;
    r.recv = static_cast<char*>(t.recv) + p * blockBytes;
    r.root = p;
    p2p.push_back(s);
    p2p.push_back(r);
  }
  return p2p;
}

}  // namespace fccl
