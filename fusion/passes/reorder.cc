// reorder.cc - moves pointwise work that consumes an all_gather before it, onto slices, so each
// rank computes 1/n of it and only the final value crosses the network:
//   f(all_gather(s), r)   -> all_gather(f(s, r))   f pointwise with a replicated result
//   f(all_gather(s), m)   -> f(s, m)               f already sliced (m sliced): the gather
//                                                  only fed values read at this rank's slice
//   slice(all_gather(x))  -> x
//   norm(all_gather(x))   -> norm(x), cross-rank   (sum, max, any_nonfinite too)
//   t = all_gather(X)     -> t = X, t sliced        t a temporary, when that does not add
//                                                  gathers (each whole read of t left after
//                                                  the rules above becomes all_gather(t))
// A move that would widen what is gathered (a cast to a larger type) is not made.
// Operands of a moved f: replicated scalars and tensors stay as they are (layouts.md: a
// replicated operand of a sliced operation is read at this rank's slice, so no slice() node is
// needed - the checker's own output has none either), all_gather(y) gives y. A local operand
// (tensor, or a scalar such as `rank`) makes f local and blocks the move: each rank's copy would
// be computed with another rank's value. The gather stays where a replicated tensor is stored
// (`w = all_gather(...)`), under a local operand, or at a temporary read whole more than once.
// Repeated to a fixed point; the total number of all_gathers never grows.
#include "fusion/passes/registry.h"
#include "fusion/passes/rewrite.h"

namespace fccl::fusion::passes {

using ir::Layout;
using ir::Node;
using ir::NodeId;
using ir::Op;

namespace {

constexpr int kMaxRounds = 64;  // programs are small; each round removes or lifts a gather

class Rules {
 public:
  Rules(PassStats* stats, int32_t demoted) : stats_(stats), demoted_(demoted) {}
  int64_t changes() const { return changes_; }

  NodeId visit(Rebuild& r, NodeId id, bool root) {
    const Node x = r.out.node(id);
    if (x.op == Op::Ref && x.var == demoted_) {
      r.out.node(id).layout = Layout::Sliced;
      return gather(r, id);  // a read of the now-sliced temporary; parents absorb the gather
    }
    if (root && x.op == Op::AllGather && r.stmtVar == demoted_) return x.args[0];
    if (x.op == Op::Slice && r.out.node(x.args[0]).op == Op::AllGather) {
      bump("slices-folded");
      return r.out.node(x.args[0]).args[0];
    }
    if (ir::isWholeReduction(x.op) && r.out.node(x.args[0]).op == Op::AllGather) {
      Node y = x;
      y.args[0] = r.out.node(x.args[0]).args[0];
      y.crossRank = true;
      y.layout = Layout::Replicated;
      bump("reductions-sliced");
      return r.add(y);
    }
    if (!isPointwise(x.op) || x.isScalar()) return id;
    bool anyGather = false;
    for (int i = 0; i < ir::opArity(x.op); ++i)
      anyGather |= r.out.node(x.args[static_cast<size_t>(i)]).op == Op::AllGather;
    if (!anyGather || x.layout == Layout::Local) return id;
    if (x.layout == Layout::Replicated) {
      // Moving f before the gather must not make the gather move more bytes (f64(all_gather(s))
      // stays: gathering the f32 values and widening after is cheaper).
      int gathered = 0;
      for (int i = 0; i < ir::opArity(x.op); ++i) {
        const Node& a = r.out.node(x.args[static_cast<size_t>(i)]);
        if (a.op == Op::AllGather) gathered += ir::dtypeBytes(a.dtype);
      }
      if (ir::dtypeBytes(x.dtype) > gathered) return id;
    }
    Node y = x;
    for (int i = 0; i < ir::opArity(x.op); ++i) {
      NodeId& a = y.args[static_cast<size_t>(i)];
      if (r.out.node(a).op == Op::AllGather) a = r.out.node(a).args[0];
    }
    y.layout = Layout::Sliced;
    if (x.layout == Layout::Sliced) {
      bump("slices-folded");
      return r.add(y);
    }
    bump("hoisted");
    return gather(r, r.add(y));
  }

 private:
  void bump(const char* what) {
    ++changes_;
    if (stats_) stats_->add(what);
  }

  NodeId gather(Rebuild& r, NodeId sliced) {
    Node g = r.out.node(sliced);
    g.op = Op::AllGather;
    g.args = {sliced, ir::kNoNode, ir::kNoNode};
    g.layout = Layout::Replicated;
    g.implicit = false;
    g.crossRank = false;
    g.var = -1;
    return r.add(g);
  }

  PassStats* stats_;
  int32_t demoted_;
  int64_t changes_ = 0;
};

// One bottom-up sweep of the rules (a local fixed point per statement), optionally demoting
// temporary `demoted` (its var must already be marked sliced). Returns the rewrite count.
int64_t sweep(ir::Program& p, PassStats* stats, int32_t demoted) {
  Rules rules(stats, demoted);
  rebuild(p, [&rules](Rebuild& r, NodeId id, bool root) { return rules.visit(r, id, root); });
  rebuild(p);  // drop what the rewrites left unreachable
  return rules.changes() + (demoted >= 0 ? 1 : 0);
}

int64_t countGathers(const ir::Program& p) {
  int64_t n = 0;
  for (const Node& x : p.nodes) n += x.op == Op::AllGather;
  return n;
}

}  // namespace

bool runReorder(ir::Program& p, Annotations&, PassStats* stats) {
  bool changed = false;
  for (int round = 0; round < kMaxRounds; ++round) {
    if (stats) stats->add("rounds");
    int64_t changes = sweep(p, stats, -1);
    for (size_t s = 0; s < p.stmts.size(); ++s) {
      const ir::Stmt st = p.stmts[s];
      const ir::Var& v = p.vars[static_cast<size_t>(st.var)];
      if (v.kind != ir::VarKind::Temp || v.isScalar() || p.node(st.value).op != Op::AllGather) continue;
      ir::Program trial = p;
      trial.vars[static_cast<size_t>(st.var)].layout = Layout::Sliced;
      PassStats scratch;
      sweep(trial, &scratch, st.var);
      if (countGathers(trial) > countGathers(p)) continue;  // it would gather more often
      p = std::move(trial);
      ++changes;
      if (stats) {
        stats->add("temps-sliced");
        for (const auto& [k, n] : scratch.counters) stats->add(k, n);
      }
    }
    if (changes == 0) break;
    changed = true;
  }
  return changed;
}

}  // namespace fccl::fusion::passes
