// split.cc - allreduce(op, x) -> all_gather(reduce_scatter(op, x)) for tensor operands: the
// CoCoNeT split that exposes the reduced slice so later passes can move work onto it.
// avg stays avg on the reduce_scatter (the collective divides by n on the step that produces
// the final value, as NCCL's post-op does), so the slice holds exactly the allreduce's values
// and no `/ nranks` node appears. Scalar allreduces are left alone (a scalar has no slices).
#include "fusion/passes/registry.h"
#include "fusion/passes/rewrite.h"

namespace fccl::fusion::passes {

bool runSplit(ir::Program& p, Annotations&, PassStats* stats) {
  int64_t n = 0;
  rebuild(p, [&](Rebuild& r, ir::NodeId id, bool) {
    const ir::Node x = r.out.node(id);
    if (x.op != ir::Op::AllReduce || x.isScalar()) return id;
    ir::Node rs = x;
    rs.op = ir::Op::ReduceScatter;
    rs.layout = ir::Layout::Sliced;
    const ir::NodeId a = r.add(rs);
    ir::Node ag = x;
    ag.op = ir::Op::AllGather;
    ag.redop = ir::RedOp::Sum;
    ag.implicit = false;
    ag.args = {a, ir::kNoNode, ir::kNoNode};
    ag.layout = ir::Layout::Replicated;
    ++n;
    return r.add(ag);
  });
  if (stats && n) stats->add("split", n);
  return n > 0;
}

}  // namespace fccl::fusion::passes
