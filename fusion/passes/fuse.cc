// fuse.cc - forms fused collective regions: a reduce_scatter, then the statements that can run
// in its reduced hook (sliced pointwise statements, and `v = all_gather(X)` stores of replicated
// results, X computed on the slice), become one region in Annotations::fused. The IR is put in
// the region's canonical form, which stays an ordinary checked program:
//   [operand temp]  in_t = <the reduce_scatter's operand>        only when it is not a variable
//   [scalars]       scalar temporaries of the region, hoisted     they read scalars only
//   rsStmt          reduced = reduce_scatter(op, in)              reduced: a sliced temporary
//   hooks           ...sliced statements..., w = all_gather(...)  run per reduced chunk
// A region needs at least one hook statement that does more than copy `reduced`; otherwise the
// program is left as it is (a plain allreduce beats a hook that only copies). The region ends
// at the first statement that is not hook-eligible (a whole-tensor reduction, a collective, a
// replicated or local computation). Renumbering statements drops overlap annotations.
#include "fusion/passes/registry.h"
#include "fusion/passes/rewrite.h"

namespace fccl::fusion::passes {

using ir::Layout;
using ir::Node;
using ir::NodeId;
using ir::Op;
using ir::Program;

namespace {

// Nodes of statement s's tree, not descending into `leaf` (which is excluded too).
std::vector<NodeId> nodesExcept(const Program& p, int s, NodeId leaf) {
  std::vector<NodeId> out, todo{p.stmts[static_cast<size_t>(s)].value};
  std::vector<char> seen(p.nodes.size(), 0);
  while (!todo.empty()) {
    const NodeId id = todo.back();
    todo.pop_back();
    if (id == leaf || seen[static_cast<size_t>(id)]) continue;
    seen[static_cast<size_t>(id)] = 1;
    out.push_back(id);
    const Node& n = p.node(id);
    for (int i = 0; i < ir::opArity(n.op); ++i) todo.push_back(n.args[static_cast<size_t>(i)]);
  }
  return out;
}

bool eligible(const Program& p, int s, NodeId leaf, bool* scalarTemp) {
  *scalarTemp = false;
  const ir::Stmt& st = p.stmts[static_cast<size_t>(s)];
  const ir::Var& v = p.vars[static_cast<size_t>(st.var)];
  const Node& root = p.node(st.value);
  const bool rootGather = root.op == Op::AllGather && st.value != leaf;
  auto clean = [&](bool allowRootGather) {
    for (NodeId id : nodesExcept(p, s, leaf)) {
      const Node& n = p.node(id);
      if (allowRootGather && id == st.value) continue;
      if ((ir::isCollective(n.op) && n.op != Op::Slice) || ir::isWholeReduction(n.op)) return false;
    }
    return true;
  };
  if (v.isScalar()) return *scalarTemp = v.kind == ir::VarKind::Temp && clean(false);
  if (v.layout == Layout::Sliced) return clean(false);
  if (v.layout == Layout::Replicated && rootGather) return clean(true);
  return false;
}

// A hook that only copies the reduced value (`x = reduced`, `w = all_gather(reduced)`).
bool copiesOnly(const Program& p, int s, int32_t reducedVar, NodeId leaf) {
  NodeId id = p.stmts[static_cast<size_t>(s)].value;
  if (p.node(id).op == Op::AllGather) id = p.node(id).args[0];
  if (id == leaf) return true;
  const Node& n = p.node(id);
  return n.op == Op::Ref && n.var == reducedVar;
}

NodeId firstReduceScatter(const Program& p, int s) {
  for (NodeId id : stmtNodes(p, s))
    if (p.node(id).op == Op::ReduceScatter) return id;
  return ir::kNoNode;
}

}  // namespace

bool hookEligible(const Program& p, int s, bool* scalarTemp) {
  return eligible(p, s, ir::kNoNode, scalarTemp);
}

bool runFuse(Program& p, Annotations& notes, PassStats* stats) {
  const std::vector<FusedRegion> before = notes.fused;
  notes.fused.clear();
  bool irChanged = false;
  size_t i = 0;
  while (i < p.stmts.size()) {
    const int si = static_cast<int>(i);
    const NodeId k = firstReduceScatter(p, si);
    if (k == ir::kNoNode) {
      ++i;
      continue;
    }
    const ir::Stmt st = p.stmts[i];
    const bool rootRS = st.value == k && p.vars[static_cast<size_t>(st.var)].kind == ir::VarKind::Temp;
    // Hook candidates: the rest of this statement (when the reduce_scatter is nested in it or
    // stored in a declared tensor), then the statements after it.
    std::vector<int> hooks, scalars;
    bool work = false;
    const int32_t rsVar = rootRS ? st.var : -1;
    size_t stop = rootRS ? i + 1 : i;
    for (; stop < p.stmts.size(); ++stop) {
      const size_t j = stop;
      bool scalar = false;
      const NodeId leaf = j == i ? k : ir::kNoNode;
      if (!eligible(p, static_cast<int>(j), leaf, &scalar)) break;
      (scalar ? scalars : hooks).push_back(static_cast<int>(j));
      if (!scalar && !copiesOnly(p, static_cast<int>(j), rsVar, leaf)) work = true;
    }
    if (!work) {
      ++i;
      continue;
    }
    // Canonical form.
    std::vector<ir::Stmt> operandStmt, rsStmt;
    NodeId rsNode = k;
    if (!rootRS) {
      const Node& in = p.node(p.node(k).args[0]);
      const std::string hint = in.op == Op::Ref ? "rs_" + p.vars[static_cast<size_t>(in.var)].name : "rs";
      extractToTemp(p, k, hint, &rsStmt);
      rsNode = rsStmt.back().value;
    } else {
      rsStmt.push_back(st);
    }
    if (p.node(p.node(rsNode).args[0]).op != Op::Ref) {
      extractToTemp(p, p.node(rsNode).args[0], "rs_in", &operandStmt);
      if (stats) stats->add("extracted");
    }
    if (!rootRS && stats) stats->add("extracted");
    std::vector<ir::Stmt> out(p.stmts.begin(), p.stmts.begin() + si);
    out.insert(out.end(), operandStmt.begin(), operandStmt.end());
    for (int s : scalars) out.push_back(p.stmts[static_cast<size_t>(s)]);
    FusedRegion r;
    r.rsStmt = static_cast<int32_t>(out.size());
    out.push_back(rsStmt.back());
    r.hookBegin = static_cast<int32_t>(out.size());
    int64_t gathers = 0;
    for (int s : hooks) {
      out.push_back(p.stmts[static_cast<size_t>(s)]);
      if (p.node(out.back().value).op == Op::AllGather) ++gathers;
    }
    r.hookEnd = static_cast<int32_t>(out.size());
    out.insert(out.end(), p.stmts.begin() + static_cast<long>(stop), p.stmts.end());
    irChanged |= !rootRS || !operandStmt.empty() || !scalars.empty();
    p.stmts = std::move(out);
    notes.fused.push_back(r);
    if (stats) {
      stats->add("regions");
      stats->add("hook-statements", static_cast<int64_t>(hooks.size()));
      if (gathers) stats->add("gathers", gathers);
      if (!scalars.empty()) stats->add("scalars-hoisted", static_cast<int64_t>(scalars.size()));
    }
    i = static_cast<size_t>(r.hookEnd);
  }
  if (irChanged) {
    rebuild(p);  // extraction left the arena out of statement order
    notes.overlaps.clear();
  }
  bool notesChanged = before.size() != notes.fused.size();
  for (size_t r = 0; !notesChanged && r < before.size(); ++r)
    notesChanged = before[r].rsStmt != notes.fused[r].rsStmt ||
                   before[r].hookBegin != notes.fused[r].hookBegin ||
                   before[r].hookEnd != notes.fused[r].hookEnd;
  return irChanged || notesChanged;
}

}  // namespace fccl::fusion::passes
