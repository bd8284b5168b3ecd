// checker.cc - check(): rebuilds the parsed arena statement by statement, applying the implicit
// conversions (literal typing, integer promotion, store-time gather/slice) and then the strict
// per-node rules of rules.cc. Errors poison the node (and temporaries assigned from it) so one
// mistake gives one message.
#include "fusion/check/checker.h"

#include <algorithm>
#include <cmath>

#include "fusion/check/rules.h"
#include "fusion/ir/printer.h"

namespace fccl::ir::check {

namespace {

class Checker {
 public:
  Checker(const Program& in, Diagnostics& d) : in_(in), d_(d) {}

  std::optional<Program> run() {
    out_.name = in_.name;
    out_.source = in_.source;
    out_.symbols = in_.symbols;
    out_.vars = in_.vars;
    for (Var& v : out_.vars)
      if (v.kind == VarKind::Temp) v.dtype = DType::Untyped, v.shape.clear();
    written_.assign(out_.vars.size(), false);
    badVar_.assign(out_.vars.size(), false);
    map_.assign(in_.nodes.size(), kNoNode);
    for (const Stmt& s : in_.stmts) statement(s);
    for (size_t i = 0; i < out_.vars.size(); ++i) {
      const Var& v = out_.vars[i];
      if (v.kind == VarKind::Out && !written_[i]) d_.error(v.loc, "out '" + v.name + "' is never written");
    }
    if (d_.hasErrors()) return std::nullopt;
    Diagnostics self(d_.source());
    if (!verify(out_, self)) {  // a checker bug: report it rather than hand on a bad program
      for (const Diagnostic& e : self.list()) d_.error(e.loc, "internal: " + e.message);
      return std::nullopt;
    }
    return std::move(out_);
  }

 private:
  Node& nn(NodeId id) { return out_.node(id); }

  void statement(const Stmt& s) {
    // The statement's nodes in arena order: operands before users (ir.h invariant).
    std::vector<NodeId> todo{s.value}, ids;
    std::vector<char> seen(in_.nodes.size(), 0);
    while (!todo.empty()) {
      NodeId id = todo.back();
      todo.pop_back();
      if (id < 0 || static_cast<size_t>(id) >= in_.nodes.size() || seen[static_cast<size_t>(id)]) continue;
      seen[static_cast<size_t>(id)] = 1;
      ids.push_back(id);
      const Node& n = in_.node(id);
      for (int i = 0; i < opArity(n.op); ++i) todo.push_back(n.args[static_cast<size_t>(i)]);
    }
    std::sort(ids.begin(), ids.end());
    for (NodeId id : ids) map_[static_cast<size_t>(id)] = node(in_.node(id));
    NodeId v = map_[static_cast<size_t>(s.value)];
    const size_t var = static_cast<size_t>(s.var);
    if (v == kNoNode) {
      if (out_.vars[var].kind == VarKind::Temp) badVar_[var] = true;  // silence its readers
      written_[var] = true;
      return;
    }
    store(s, v);
  }

  // One parsed node -> checked node id, or kNoNode after an error (reported once).
  NodeId node(const Node& src) {
    Node n = src;
    const int k = opArity(n.op);
    for (int i = 0; i < k; ++i) {
      NodeId& a = n.args[static_cast<size_t>(i)];
      a = a >= 0 && static_cast<size_t>(a) < map_.size() ? map_[static_cast<size_t>(a)] : kNoNode;
      if (a == kNoNode) return kNoNode;
    }
    if (n.op == Op::Ref) {
      const size_t var = static_cast<size_t>(n.var);
      if (badVar_[var]) return kNoNode;
      const Var& v = out_.vars[var];
      if (v.kind == VarKind::Out && !written_[var]) {
        d_.error(n.loc, "out '" + v.name + "' is read before it is written");
        return kNoNode;
      }
    }
    std::string err;
    if (!coerce(n, &err)) {
      d_.error(n.loc, err);
      return kNoNode;
    }
    NodeId id = out_.add(n);
    ValueType t;
    Loc errLoc;
    if (!inferNode(out_, id, &t, &err, &errLoc)) {
      d_.error(errLoc.line ? errLoc : n.loc, err);
      return kNoNode;
    }
    Node& r = nn(id);
    r.dtype = t.dtype;
    r.layout = t.layout;
    r.shape = t.shape;
    r.crossRank = t.crossRank;
    return id;
  }

  // Gives an untyped (literal-only) subtree the type t.
  bool retype(NodeId id, DType t, std::string* err) {
    Node& n = nn(id);
    if (n.dtype != DType::Untyped) return true;
    if (t == DType::Bool) {
      *err = "a number is used where a bool is needed; use true, false or a comparison";
      return false;
    }
    if (isInteger(t) && n.op == Op::Literal && n.value != std::trunc(n.value)) {
      *err = "literal " + printLiteral(n.value) + " is not an integer, but the other side is " +
             dtypeName(t) + "; cast the other side to a float type";
      return false;
    }
    if (isInteger(t) && (n.op == Op::Sqrt || n.op == Op::Rsqrt || n.op == Op::Exp || n.op == Op::Log)) {
      *err = std::string(opName(n.op)) + " of a literal used as " + dtypeName(t) +
             "; write the value as a float";
      return false;
    }
    n.dtype = t;
    for (int i = 0; i < opArity(n.op); ++i)
      if (!retype(nn(id).args[static_cast<size_t>(i)], t, err)) return false;
    return true;
  }

  NodeId implicitNode(Op op, NodeId a, DType t) {
    Node c;
    c.op = op;
    c.implicit = true;
    c.args[0] = a;
    c.loc = nn(a).loc;
    c.dtype = t;
    c.layout = nn(a).layout;
    c.shape = nn(a).shape;
    if (op == Op::AllGather) c.layout = Layout::Replicated;
    if (op == Op::Slice) c.layout = Layout::Sliced;
    return out_.add(c);
  }

  // Makes a and b the same dtype: a literal adopts the other's, an integer scalar is promoted
  // to the other's float type; anything else that differs is an error asking for a cast.
  bool unify(NodeId* a, NodeId* b, std::string* err) {
    const DType ta = nn(*a).dtype, tb = nn(*b).dtype;
    if (ta == tb) return true;
    if (ta == DType::Untyped) return retype(*a, tb, err);
    if (tb == DType::Untyped) return retype(*b, ta, err);
    if (isFloat(ta) && isInteger(tb) && nn(*b).isScalar()) {
      *b = implicitNode(Op::Cast, *b, ta);
      return true;
    }
    if (isFloat(tb) && isInteger(ta) && nn(*a).isScalar()) {
      *a = implicitNode(Op::Cast, *a, tb);
      return true;
    }
    // Suggest widening the narrower side (for float vs integer: casting the integer side).
    const bool aNarrow = isFloat(ta) == isFloat(tb) ? dtypeBytes(ta) <= dtypeBytes(tb) : !isFloat(ta);
    const NodeId narrow = aNarrow ? *a : *b;
    const DType wide = aNarrow ? tb : ta;
    *err = std::string(dtypeName(ta)) + " and " + dtypeName(tb) + " do not mix";
    if (ta != DType::Bool && tb != DType::Bool)
      *err += std::string("; cast one side: ") + dtypeName(wide) + "(" + describe(out_, narrow) + ")";
    return false;
  }

  bool settle(NodeId a, DType t, std::string* err) {
    return nn(a).dtype == DType::Untyped ? retype(a, t, err) : true;
  }

  bool coerce(Node& n, std::string* err) {
    NodeId* a = n.args.data();
    switch (n.op) {
      case Op::Add:
      case Op::Sub:
      case Op::Mul:
      case Op::Div:
      case Op::Min:
      case Op::Max:
        return unify(&a[0], &a[1], err);
      case Op::Lt:
      case Op::Le:
      case Op::Gt:
      case Op::Ge:
      case Op::Eq:
      case Op::Ne:
        return unify(&a[0], &a[1], err) && settle(a[0], DType::F64, err) && settle(a[1], DType::F64, err);
      case Op::Pow: {
        const DType tb = nn(a[0]).dtype, te = nn(a[1]).dtype;
        if (isInteger(te) && (isFloat(tb) || tb == DType::Untyped)) return true;
        return unify(&a[0], &a[1], err);
      }
      case Op::Select:
        return unify(&a[1], &a[2], err);
      case Op::Dropout: {
        const DType tx = nn(a[0]).dtype;
        return settle(a[1], isFloat(tx) ? tx : DType::F64, err) && settle(a[2], DType::I64, err);
      }
      case Op::IsFinite:
      case Op::Cast:
      case Op::Norm:
      case Op::Sum:
      case Op::MaxAll:
      case Op::AnyNonfinite:
      case Op::AllReduce:
      case Op::ReduceScatter:
      case Op::AllGather:
      case Op::Slice:
        return settle(a[0], DType::F64, err);
      case Op::Broadcast:
      case Op::Reduce:
        return settle(a[0], DType::F64, err) && settle(a[1], DType::I32, err);
      default:
        return true;
    }
  }

  void store(const Stmt& s, NodeId v) {
    const size_t vi = static_cast<size_t>(s.var);
    Var& t = out_.vars[vi];
    std::string err;
    auto bad = [&](std::string msg) {
      d_.error(s.loc, std::move(msg));
      if (t.kind == VarKind::Temp) badVar_[vi] = true;  // declared ones keep their types
      written_[vi] = true;
    };
    if (t.kind == VarKind::In) return bad("cannot assign to input '" + t.name + "'");
    if (t.kind == VarKind::Scalar) return bad("cannot assign to scalar input '" + t.name + "'");
    if (t.kind == VarKind::Temp) {
      if (written_[vi]) {
        return bad("temporary '" + t.name + "' is assigned twice (first at " + std::to_string(t.loc.line) +
                   ":" + std::to_string(t.loc.col) + "); use a new name");
      }
      if (!settle(v, DType::F64, &err)) return bad(err);
      const Node& n = nn(v);
      t.dtype = n.dtype;
      t.layout = n.layout;
      t.shape = n.shape;
      written_[vi] = true;
      out_.stmts.push_back({s.var, v, s.loc});
      return;
    }
    // A declared out/inout tensor or scalar result.
    if (!settle(v, t.dtype, &err)) return bad(err);
    if (isFloat(t.dtype) && isInteger(nn(v).dtype) && nn(v).isScalar())
      v = implicitNode(Op::Cast, v, t.dtype);
    if (nn(v).dtype != t.dtype) {
      return bad(std::string(dtypeName(nn(v).dtype)) + " value stored in " + dtypeName(t.dtype) + " '" +
                 t.name + "'; cast it: " + dtypeName(t.dtype) + "(...)");
    }
    switch (storeRule(out_, t, v, &err)) {
      case StoreKind::Error:
        return bad(err);
      case StoreKind::Gather:
        v = implicitNode(Op::AllGather, v, t.dtype);
        break;
      case StoreKind::Slice:
        v = implicitNode(Op::Slice, v, t.dtype);
        break;
      case StoreKind::Ok:
        break;
    }
    written_[vi] = true;
    out_.stmts.push_back({s.var, v, s.loc});
  }

  const Program& in_;
  Diagnostics& d_;
  Program out_;
  std::vector<NodeId> map_;    // parsed node -> checked node (kNoNode: error)
  std::vector<bool> written_;  // per var: assigned by an earlier statement
  std::vector<bool> badVar_;   // per var: its assignment failed; reads stay silent
};

}  // namespace

std::optional<Program> check(const Program& parsed, Diagnostics& diags) {
  return Checker(parsed, diags).run();
}

}  // namespace fccl::ir::check
