// p2p.cc - the point-to-point batch (p2p.h) on the host primitives.
#include "collectives/p2p.h"
#include "collectives/coll.h"
#include "collectives/prims_host_p2p.h"

namespace fccl {

fcclResult_t runP2p(CollContext& ctx, const CollTask* tasks, size_t ntasks) {
  HostP2pPrims p(ctx.conns, ctx.rank, ctx.wait);
  return p2pBatch(p, tasks, ntasks, ctx.rank, ctx.nranks);
}

}  // namespace fccl
