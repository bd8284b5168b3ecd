// verify.cc - verify(): the ir.h invariants and the layouts.md rules on any program, with no
// conversions applied. Passes run it on their output; the checker runs it on its own.
#include <algorithm>

#include "fusion/check/checker.h"
#include "fusion/check/rules.h"

namespace fccl::ir::check {

namespace {

bool sameShape(const Shape& a, const Shape& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].sym != b[i].sym || (a[i].sym < 0 && a[i].size != b[i].size)) return false;
  return true;
}

std::string nodeName(const Program& p, NodeId id) {
  return "node %" + std::to_string(id) + " (" + opName(p.node(id).op) + ")";
}

}  // namespace

bool verify(const Program& p, Diagnostics& d) {
  const size_t before = d.count();
  const size_t nn = p.nodes.size();
  for (const Var& v : p.vars) {
    for (const Dim& dim : v.shape)
      if (dim.sym >= static_cast<int32_t>(p.symbols.size()) || (dim.sym < 0 && dim.size < 0))
        d.error(v.loc, "variable '" + v.name + "' has a bad dimension");
  }
  // Structure: operands exist and come earlier; Refs name variables.
  for (size_t k = 0; k < nn; ++k) {
    const Node& n = p.nodes[k];
    const NodeId id = static_cast<NodeId>(k);
    for (int i = 0; i < opArity(n.op); ++i) {
      const NodeId a = n.args[static_cast<size_t>(i)];
      if (a < 0 || a >= id)
        d.error(n.loc, nodeName(p, id) + ": operand " + std::to_string(i) + " is %" + std::to_string(a) +
                           ", not earlier");
    }
    if (n.op == Op::Ref && (n.var < 0 || static_cast<size_t>(n.var) >= p.vars.size()))
      d.error(n.loc, nodeName(p, id) + ": no such variable");
  }
  for (const Stmt& s : p.stmts) {
    if (s.var < 0 || static_cast<size_t>(s.var) >= p.vars.size() || s.value < 0 ||
        static_cast<size_t>(s.value) >= nn)
      d.error(s.loc, "statement refers to a missing variable or node");
  }
  if (d.count() != before) return false;

  // Each statement owns its nodes; check them in arena order, statements in program order.
  std::vector<int> owner(nn, -1);
  std::vector<bool> written(p.vars.size(), false);
  for (size_t si = 0; si < p.stmts.size(); ++si) {
    const Stmt& s = p.stmts[si];
    std::vector<NodeId> todo{s.value}, ids;
    while (!todo.empty()) {
      const NodeId id = todo.back();
      todo.pop_back();
      int& o = owner[static_cast<size_t>(id)];
      if (o == static_cast<int>(si)) continue;
      if (o >= 0) {
        d.error(p.node(id).loc, nodeName(p, id) + " is shared by statements " + std::to_string(o) + " and " +
                                    std::to_string(si));
        return false;
      }
      o = static_cast<int>(si);
      ids.push_back(id);
      const Node& n = p.node(id);
      for (int i = 0; i < opArity(n.op); ++i) todo.push_back(n.args[static_cast<size_t>(i)]);
    }
    std::sort(ids.begin(), ids.end());
    for (NodeId id : ids) {
      const Node& n = p.node(id);
      if (n.dtype == DType::Untyped) {
        d.error(n.loc, nodeName(p, id) + " is untyped");
        continue;
      }
      if (n.op == Op::Ref) {
        const Var& v = p.vars[static_cast<size_t>(n.var)];
        if ((v.kind == VarKind::Out || v.kind == VarKind::Temp) && !written[static_cast<size_t>(n.var)])
          d.error(n.loc, "'" + v.name + "' is read before it is written");
      }
      ValueType t;
      std::string err;
      Loc errLoc;
      if (!inferNode(p, id, &t, &err, &errLoc)) {
        d.error(n.loc, nodeName(p, id) + ": " + err);
        continue;
      }
      const bool binary =
          opArity(n.op) == 2 && n.op != Op::Pow && n.op != Op::Broadcast && n.op != Op::Reduce;
      if (binary && p.node(n.args[0]).dtype != p.node(n.args[1]).dtype)
        d.error(n.loc, nodeName(p, id) + ": operands have different types");
      if (t.dtype != n.dtype || t.layout != n.layout || !sameShape(t.shape, n.shape) ||
          t.crossRank != n.crossRank)
        d.error(n.loc, nodeName(p, id) + " is annotated " + typeString(p, n.dtype, n.shape, n.layout) +
                           " but its operands give " + typeString(p, t.dtype, t.shape, t.layout));
    }
    // The store.
    const Var& v = p.vars[static_cast<size_t>(s.var)];
    const Node& val = p.node(s.value);
    std::string err;
    if (v.kind == VarKind::In || v.kind == VarKind::Scalar) {
      d.error(s.loc, "assignment to input '" + v.name + "'");
    } else if (v.kind == VarKind::Temp) {
      if (written[static_cast<size_t>(s.var)]) d.error(s.loc, "temporary '" + v.name + "' is assigned twice");
      if (v.dtype != val.dtype || v.layout != val.layout || !sameShape(v.shape, val.shape))
        d.error(s.loc, "temporary '" + v.name + "' is declared " + typeString(p, v.dtype, v.shape, v.layout) +
                           " but assigned " + typeString(p, val.dtype, val.shape, val.layout));
    } else if (v.dtype != val.dtype) {
      d.error(s.loc, std::string(dtypeName(val.dtype)) + " value stored in " + dtypeName(v.dtype) + " '" +
                         v.name + "'");
    } else {
      const StoreKind k = storeRule(p, v, s.value, &err);
      if (k == StoreKind::Error) d.error(s.loc, err);
      if (k == StoreKind::Gather || k == StoreKind::Slice)
        d.error(s.loc, std::string(layoutName(val.layout)) + " value stored in " + layoutName(v.layout) +
                           " '" + v.name + "' without an explicit " +
                           (k == StoreKind::Gather ? "all_gather" : "slice"));
    }
    written[static_cast<size_t>(s.var)] = true;
  }
  for (size_t i = 0; i < p.vars.size(); ++i) {
    if (p.vars[i].kind == VarKind::Out && !written[i])
      d.error(p.vars[i].loc, "out '" + p.vars[i].name + "' is never written");
  }
  return d.count() == before;
}

}  // namespace fccl::ir::check
