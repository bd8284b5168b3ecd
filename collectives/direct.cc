// direct.cc - the latency algorithm (direct_algo.h) on the host primitives.
#include "collectives/coll.h"
#include "collectives/direct_algo.h"
#include "collectives/prims_host_direct.h"

namespace fccl {

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
  HostDirectPrims p(ctx, t);
  return directCollective(p, t, ctx.rank, ctx.nranks, ctx.direct);
}

}  // namespace fccl
