// overlap.cc - a schedule annotation, not a rewrite: a collective statement (`y = coll(x)`,
// also `y = all_gather(reduce_scatter(op, x))` and a fused region's reduce_scatter) whose input
// x was written by the pointwise statement just before it (only scalar statements between) is
// recorded as an OverlapPair, so the runtime may start the collective on x's chunks as the
// producer finishes them: with FCCL_OVERLAP it runs the producer on a helper thread while the
// collective consumes the chunks marked ready (src/program_fused.cc); without it, one after the
// other, which is always correct. Only statement roots are seen: run it after fuse (which
// extracts reduce_scatters); lower() extracts other nested collectives later.
#include "fusion/passes/registry.h"
#include "fusion/passes/rewrite.h"

namespace fccl::fusion::passes {

using ir::Node;
using ir::NodeId;
using ir::Op;

bool runOverlap(ir::Program& p, Annotations& notes, PassStats* stats) {
  const std::vector<OverlapPair> before = notes.overlaps;
  notes.overlaps.clear();
  for (size_t c = 0; c < p.stmts.size(); ++c) {
    const Node& root = p.node(p.stmts[c].value);
    if (!ir::isCollective(root.op) || root.op == Op::Slice) continue;
    NodeId in = root.args[0];
    if (root.op == Op::AllGather && p.node(in).op == Op::ReduceScatter) in = p.node(in).args[0];
    if (p.node(in).op != Op::Ref) continue;
    const int32_t x = p.node(in).var;
    int producer = -1;
    for (size_t s = c; s-- > 0;) {
      if (p.stmts[s].var == x) {
        producer = static_cast<int>(s);
        break;
      }
      if (!p.vars[static_cast<size_t>(p.stmts[s].var)].isScalar()) break;  // not adjacent
    }
    if (producer < 0 || p.vars[static_cast<size_t>(x)].isScalar()) continue;
    const bool pointwise = !stmtContains(p, producer, [](const Node& n) {
      return (ir::isCollective(n.op) && n.op != Op::Slice) || ir::isWholeReduction(n.op);
    });
    if (!pointwise) continue;
    notes.overlaps.push_back({producer, static_cast<int32_t>(c), x});
    if (stats) stats->add("pairs");
  }
  bool changed = before.size() != notes.overlaps.size();
  for (size_t i = 0; !changed && i < before.size(); ++i)
    changed =
        before[i].producer != notes.overlaps[i].producer || before[i].consumer != notes.overlaps[i].consumer;
  return changed;
}

}  // namespace fccl::fusion::passes
