// reorder.cc - moves pointwise work that consumes an all_gather before it, onto slices, so each
// rank computes 1/n of it and only the final value crosses the network:
//   f(all_gather(s), r)  -> all_gather(f(s, slice(r)))   f pointwise, result replicated
//   slice(all_gather(x)) -> x
//   slice(f(a, b))       -> f(slice(a), slice(b))         f pointwise on replicated operands
//   norm(all_gather(x))  -> norm(x) cross-rank             (sum, max, any_nonfinite too)
//   t = all_gather(X)    -> t = X (t becomes sliced)       t a temporary with at most one use
//                           that is not slice(t); that use reads all_gather(t) instead
// Operands: replicated scalars stay, replicated tensors get slice(), all_gather(y) gives y; a
// local operand (tensor or scalar such as `rank`) makes f local and blocks the move, since each
// rank's copy would be computed with another rank's value. The gather stays where a replicated
// tensor is stored (`w = all_gather(...)`), under a local operand, or at a temporary read
// whole more than once (moving it there would gather twice). Repeated to a fixed point.
#include <set>

#include "fusion/passes/registry.h"
#include "fusion/passes/rewrite.h"

namespace fccl::fusion::passes {

using ir::Layout;
using ir::Node;
using ir::NodeId;
using ir::Op;

namespace {

constexpr int kMaxRounds = 64;  // each round moves every gather at least one level; programs are small

class Round {
 public:
  Round(PassStats* stats, std::set<int32_t> demoted) : stats_(stats), demoted_(std::move(demoted)) {}
  int64_t changes() const { return changes_; }

  NodeId visit(Rebuild& r, NodeId id, bool root) {
    const Node x = r.out.node(id);
    if (x.op == Op::Ref && demoted_.count(x.var)) {
      r.out.node(id).layout = Layout::Sliced;
      return gather(r, id);  // a whole read of a now-sliced temporary
    }
    if (root && x.op == Op::AllGather && demoted_.count(r.stmtVar)) {
      bump("temps-sliced");
      return x.args[0];
    }
    if (x.op == Op::Slice) {
      const Node& a = r.out.node(x.args[0]);
      if (a.op == Op::AllGather || (isPointwise(a.op) && a.layout == Layout::Replicated))
        return sliceOf(r, x.args[0]);
      return id;
    }
    if (ir::isWholeReduction(x.op) && r.out.node(x.args[0]).op == Op::AllGather) {
      Node y = x;
      y.args[0] = r.out.node(x.args[0]).args[0];
      y.crossRank = true;
      y.layout = Layout::Replicated;
      bump("reductions-sliced");
      return r.add(y);
    }
    if (isPointwise(x.op) && !x.isScalar() && x.layout == Layout::Replicated) {
      bool anyGather = false;
      for (int i = 0; i < ir::opArity(x.op); ++i)
        anyGather |= r.out.node(x.args[static_cast<size_t>(i)]).op == Op::AllGather;
      if (!anyGather) return id;
      Node y = x;
      for (int i = 0; i < ir::opArity(x.op); ++i) {
        NodeId& a = y.args[static_cast<size_t>(i)];
        if (!r.out.node(a).isScalar()) a = sliceOf(r, a);  // scalars here are replicated
      }
      y.layout = Layout::Sliced;
      bump("hoisted");
      return gather(r, r.add(y));
    }
    return id;
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

  // A sliced node with the values of slice(id), id a replicated tensor.
  NodeId sliceOf(Rebuild& r, NodeId id) {
    const Node x = r.out.node(id);
    if (x.op == Op::AllGather) {
      bump("slices-folded");
      return x.args[0];
    }
    if (isPointwise(x.op) && x.layout == Layout::Replicated && !x.isScalar()) {
      Node y = x;
      for (int i = 0; i < ir::opArity(x.op); ++i) {
        NodeId& a = y.args[static_cast<size_t>(i)];
        if (!r.out.node(a).isScalar()) a = sliceOf(r, a);
      }
      y.layout = Layout::Sliced;
      bump("slices-sunk");
      return r.add(y);
    }
    Node s;
    s.op = Op::Slice;
    s.dtype = x.dtype;
    s.shape = x.shape;
    s.layout = Layout::Sliced;
    s.loc = x.loc;
    s.args = {id, ir::kNoNode, ir::kNoNode};
    return r.add(s);
  }

  PassStats* stats_;
  std::set<int32_t> demoted_;
  int64_t changes_ = 0;
};

// Temporaries `t = all_gather(X)` read whole (not as slice(t)) at most once.
std::set<int32_t> demotable(const ir::Program& p) {
  std::set<int32_t> out;
  for (size_t s = 0; s < p.stmts.size(); ++s) {
    const ir::Stmt& st = p.stmts[s];
    const ir::Var& v = p.vars[static_cast<size_t>(st.var)];
    if (v.kind != ir::VarKind::Temp || v.isScalar() || p.node(st.value).op != Op::AllGather)
      continue;
    int whole = 0;
    for (size_t u = s + 1; u < p.stmts.size(); ++u) {
      const NodeId root = p.stmts[u].value;
      if (p.node(root).op == Op::Ref && p.node(root).var == st.var) ++whole;
      for (NodeId id : stmtNodes(p, static_cast<int>(u))) {
        const Node& n = p.node(id);
        for (int i = 0; i < ir::opArity(n.op); ++i) {
          const Node& a = p.node(n.args[static_cast<size_t>(i)]);
          if (a.op == Op::Ref && a.var == st.var && n.op != Op::Slice) ++whole;
        }
      }
    }
    if (whole <= 1) out.insert(st.var);
  }
  return out;
}

}  // namespace

bool runReorder(ir::Program& p, Annotations&, PassStats* stats) {
  bool changed = false;
  for (int round = 0; round < kMaxRounds; ++round) {
    const std::set<int32_t> demoted = demotable(p);
    for (int32_t v : demoted) p.vars[static_cast<size_t>(v)].layout = Layout::Sliced;
    Round rd(stats, demoted);
    rebuild(p, [&rd](Rebuild& r, NodeId id, bool root) { return rd.visit(r, id, root); });
    if (stats) stats->add("rounds");
    if (rd.changes() == 0) break;
    changed = true;
  }
  if (changed) rebuild(p);  // drop nodes the rewrites left unreachable
  return changed;
}

}  // namespace fccl::fusion::passes
