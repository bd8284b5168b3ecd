// pointwise_form.cc - buildForm (pointwise_form.h): the one place that decides, per IR node,
// the compute type, where casts and roundings go, which values are uniform, and how each load
// and store is addressed. It walks each statement's expression depth first (operands in order,
// each node once), so values come out in an order every backend can evaluate as listed.
#include "fusion/lowered/pointwise_form.h"

#include <algorithm>

#include "fusion/ref/round.h"

namespace fccl::fusion::lowered {

using ir::DType;
using ir::Node;
using ir::NodeId;
using ir::Op;
using ir::Var;
using ir::VarKind;

namespace {

// IR pointwise op -> form op (Cast, Select, Dropout and the leaves are handled apart).
bool mapOp(Op op, VOp* out) {
  static constexpr std::pair<Op, VOp> kMap[] = {
      {Op::Neg, VOp::Neg}, {Op::Not, VOp::Not}, {Op::Sqrt, VOp::Sqrt}, {Op::Rsqrt, VOp::Rsqrt},
      {Op::Exp, VOp::Exp}, {Op::Log, VOp::Log}, {Op::Abs, VOp::Abs},   {Op::IsFinite, VOp::IsFinite},
      {Op::Add, VOp::Add}, {Op::Sub, VOp::Sub}, {Op::Mul, VOp::Mul},   {Op::Div, VOp::Div},
      {Op::Pow, VOp::Pow}, {Op::Min, VOp::Min}, {Op::Max, VOp::Max},   {Op::Lt, VOp::Lt},
      {Op::Le, VOp::Le},   {Op::Gt, VOp::Gt},   {Op::Ge, VOp::Ge},     {Op::Eq, VOp::Eq},
      {Op::Ne, VOp::Ne},   {Op::And, VOp::And}, {Op::Or, VOp::Or},
  };
  for (auto [from, to] : kMap)
    if (from == op) {
      *out = to;
      return true;
    }
  return false;
}

// Which ops exist on which compute type (the rest are the checker's errors, never generated).
bool defined(VOp op, CT t) {
  switch (op) {
    case VOp::Not:
    case VOp::And:
    case VOp::Or:
      return t == CT::B8;
    case VOp::Eq:
    case VOp::Ne:
      return true;
    case VOp::Sqrt:
    case VOp::Rsqrt:
    case VOp::Exp:
    case VOp::Log:
    case VOp::IsFinite:
      return isFloatCT(t);
    default:  // Neg Abs, arithmetic, Pow, Min Max, ordering comparisons
      return t != CT::B8;
  }
}

// A node whose value a list can only read (computed before it): FormOptions::nodeSlots.
bool slotted(Op op) {
  return ir::isWholeReduction(op) || (ir::isCollective(op) && op != Op::AllGather && op != Op::Slice);
}

class Builder {
 public:
  Builder(const ir::Program& p, const FormOptions& o, PointwiseForm& f, std::string* err)
      : p_(p), o_(o), f_(f), err_(err) {
    nodeValue_.assign(p.nodes.size(), -1);
    varValue_.assign(p.vars.size(), -1);
    lastStore_.assign(p.vars.size(), -1);
  }

  bool statement(int32_t si) {
    if (si < 0 || static_cast<size_t>(si) >= p_.stmts.size())
      return fail("statement index " + std::to_string(si) + " is out of range");
    const ir::Stmt& s = p_.stmts[static_cast<size_t>(si)];
    if (s.var < 0 || static_cast<size_t>(s.var) >= p_.vars.size() || s.value < 0 ||
        static_cast<size_t>(s.value) >= p_.nodes.size())
      return fail("malformed statement " + std::to_string(si));
    const Var& dst = p_.vars[static_cast<size_t>(s.var)];
    where_ = "statement '" + dst.name + " = ...'";
    if (dst.dtype == DType::Untyped) return fail("'" + dst.name + "' is untyped (run the checker first)");
    int32_t v = emit(s.value);
    if (v < 0) return false;
    const CT want = computeType(dst.dtype);
    Stmt st;
    st.var = s.var;
    st.dtype = dst.dtype;
    st.irStmt = si;
    if (dst.isScalar()) {
      if (!val(v).uniform) return fail("a tensor value stored in scalar '" + dst.name + "'");
      // Later Refs see the value as the variable holds it: declared scalars rounded to their type.
      if (dst.kind != VarKind::Temp)
        v = castTo(v, dst.dtype);
      else if (val(v).ct != want)
        v = castTo(v, ctDType(want));
      varValue_[static_cast<size_t>(s.var)] = v;
      f_.maxScalarVar = std::max(f_.maxScalarVar, s.var);
      st.kind = StmtKind::ScalarResult;
    } else {
      if (dst.kind == VarKind::In) return fail("input tensor '" + dst.name + "' is assigned");
      if (dst.kind == VarKind::Scalar) return fail("scalar input '" + dst.name + "' is assigned");
      if (val(v).ct != want) v = castTo(v, ctDType(want));
      st.index = dst.layout == ir::Layout::Sliced ? Index::Sliced : Index::Full;
      if (dst.kind == VarKind::Temp) {
        // Tile-local for later statements (unrounded), stored where the runtime gave it storage.
        st.kind = StmtKind::Buffer;
        varValue_[static_cast<size_t>(s.var)] = v;
      } else {
        st.kind = StmtKind::Store;  // later Refs load it again (Value::storedBy)
        lastStore_[static_cast<size_t>(s.var)] = static_cast<int32_t>(f_.stmts.size());
      }
    }
    st.value = v;
    st.valuesEnd = static_cast<int32_t>(f_.values.size());
    f_.stmts.push_back(st);
    return true;
  }

 private:
  bool fail(const std::string& msg) {
    *err_ = where_.empty() ? msg : where_ + ": " + msg;
    return false;
  }
  int32_t unsupported(const Node& n, const std::string& what) {
    const std::string at =
        n.loc.line ? " at " + std::to_string(n.loc.line) + ":" + std::to_string(n.loc.col) : "";
    fail(std::string("'") + ir::opName(n.op) + "'" + at + " " + what);
    return -1;
  }
  const Value& val(int32_t v) const { return f_.values[static_cast<size_t>(v)]; }

  int32_t add(Value v) {
    f_.values.push_back(v);
    return static_cast<int32_t>(f_.values.size() - 1);
  }
  int32_t compute(VOp op, CT ct, NodeId node, int32_t a, int32_t b = -1, int32_t c = -1) {
    Value v;
    v.op = op;
    v.ct = ct;
    v.node = node;
    v.a = {a, b, c};
    v.uniform = op != VOp::Dropout;
    for (int32_t x : {a, b, c})
      if (x >= 0) v.uniform = v.uniform && val(x).uniform;
    return add(v);
  }
  // v rounded to dtype `to` and widened to its compute type; nothing when that is the identity
  // (same compute type and stored as computed; bool values are always 0 or 1).
  int32_t castTo(int32_t v, DType to) {
    const CT ct = computeType(to);
    if (val(v).ct == ct && (storedAsComputed(to) || to == DType::Bool)) return v;
    const int32_t c = compute(VOp::Cast, ct, val(v).node, v);
    f_.values[static_cast<size_t>(c)].dtype = to;
    return c;
  }
  int32_t leaf(VOp op, DType dtype, NodeId node) {
    Value v;
    v.op = op;
    v.ct = computeType(dtype);
    v.dtype = dtype;
    v.node = node;
    v.uniform = true;
    return add(v);
  }

  int32_t emit(NodeId id) {
    if (id < 0 || static_cast<size_t>(id) >= p_.nodes.size()) return fail("node index out of range"), -1;
    int32_t& memo = nodeValue_[static_cast<size_t>(id)];
    if (memo >= 0) return memo;
    const Node& n = p_.node(id);
    if (n.dtype == DType::Untyped) return unsupported(n, "is untyped (run the checker first)");
    for (int i = 0; i < ir::opArity(n.op); ++i)
      if (n.args[static_cast<size_t>(i)] < 0 || n.args[static_cast<size_t>(i)] >= id)
        return unsupported(n, "has an operand that is not an earlier node");
    const int32_t v = emitNode(id, n);
    nodeValue_[static_cast<size_t>(id)] = v;
    return v;
  }

  int32_t emitNode(NodeId id, const Node& n) {
    const CT ct = computeType(n.dtype);
    if (o_.nodeSlots && (slotted(n.op) || id == o_.chunkNode)) {  // computed before the list
      const int32_t v = leaf(n.isScalar() ? VOp::Scalar : VOp::Load, n.dtype, id);
      f_.values[static_cast<size_t>(v)].uniform = n.isScalar();
      f_.values[static_cast<size_t>(v)].index = id == o_.chunkNode ? Index::Chunk : Index::NodeSlot;
      return v;
    }
    switch (n.op) {
      case Op::Literal: {  // rounded to its compute type (not to f16/bf16: they compute as f32)
        const int32_t v = leaf(VOp::Const, ctDType(ct), id);
        f_.values[static_cast<size_t>(v)].value = ir::ref::roundTo(ctDType(ct), n.value);
        return v;
      }
      case Op::NRanks:
        return leaf(VOp::NRanks, DType::I32, id);
      case Op::Rank:
        return leaf(VOp::Rank, DType::I32, id);
      case Op::Ref:
        return ref(n, id);
      case Op::Slice:
      case Op::AllGather:
        return emit(n.args[0]);  // logical indexing: this rank's slice of x is x at [i]
      default:
        break;
    }
    if (ir::isCollective(n.op)) return unsupported(n, "is a collective; it runs as its own step");
    if (ir::isWholeReduction(n.op)) return unsupported(n, "reduces a whole tensor; it runs as its own step");
    const int32_t a = emit(n.args[0]);
    if (a < 0) return -1;
    const std::string undefinedOn =
        std::string("is not defined on ") + ir::dtypeName(p_.node(n.args[0]).dtype);
    if (n.op == Op::Cast) {
      const DType from = p_.node(n.args[0]).dtype;
      if (from == n.dtype || (val(a).ct == ct && storedAsComputed(n.dtype))) return a;
      const int32_t c = compute(VOp::Cast, ct, id, a);
      f_.values[static_cast<size_t>(c)].dtype = n.dtype;
      return c;
    }
    VOp op = VOp::Const;
    if (ir::opArity(n.op) == 1) {
      if (!mapOp(n.op, &op) || !defined(op, val(a).ct)) return unsupported(n, undefinedOn);
      return compute(op, ct, id, a);
    }
    int32_t b = emit(n.args[1]);
    if (b < 0) return -1;
    if (n.op == Op::Dropout) {
      const int32_t c = emit(n.args[2]);
      if (c < 0) return -1;
      if (!val(b).uniform || !val(c).uniform) return unsupported(n, "needs scalar p and seed");
      if (!isFloatCT(val(a).ct)) return unsupported(n, "needs a float operand");
      const int32_t p64 = castTo(b, DType::F64), s64 = castTo(c, DType::I64);
      return compute(VOp::Dropout, ct, id, a, p64, s64);
    }
    if (n.op == Op::Select) {
      const int32_t c = emit(n.args[2]);
      if (c < 0) return -1;
      if (val(a).ct != CT::B8 || val(b).ct != val(c).ct)
        return unsupported(n, "has mismatched operand types");
      return compute(VOp::Select, val(b).ct, id, a, b, c);
    }
    // Pow's integer exponent of a float base is converted to the base's type first.
    if (n.op == Op::Pow && val(b).ct != val(a).ct) b = castTo(b, ctDType(val(a).ct));
    if (val(a).ct != val(b).ct) return unsupported(n, "has operands of different types");
    if (!mapOp(n.op, &op) || !defined(op, val(a).ct)) return unsupported(n, undefinedOn);
    return compute(op, ct, id, a, b);
  }

  int32_t ref(const Node& n, NodeId id) {
    if (n.var < 0 || static_cast<size_t>(n.var) >= p_.vars.size()) return unsupported(n, "names no variable");
    if (varValue_[static_cast<size_t>(n.var)] >= 0) return varValue_[static_cast<size_t>(n.var)];
    const Var& v = p_.vars[static_cast<size_t>(n.var)];
    if (v.dtype == DType::Untyped) return unsupported(n, "reads an untyped variable");
    if (v.isScalar()) {
      const int32_t s = leaf(VOp::Scalar, v.dtype, id);
      f_.values[static_cast<size_t>(s)].var = n.var;
      f_.maxScalarVar = std::max(f_.maxScalarVar, n.var);
      return s;
    }
    Value l;
    l.op = VOp::Load;
    l.ct = computeType(v.dtype);
    l.dtype = v.dtype;
    l.var = n.var;
    l.node = id;
    l.index = n.var == o_.chunkVar             ? Index::Chunk
              : v.layout == ir::Layout::Sliced ? Index::Sliced
                                               : Index::Full;
    l.storedBy = lastStore_[static_cast<size_t>(n.var)];
    return add(l);
  }

  const ir::Program& p_;
  const FormOptions& o_;
  PointwiseForm& f_;
  std::string* err_;
  std::string where_;
  std::vector<int32_t> nodeValue_;  // per node: its value, once built
  std::vector<int32_t> varValue_;   // per var: the value a temporary or scalar holds, once assigned
  std::vector<int32_t> lastStore_;  // per var: the last Store statement to it, -1 before any
};

// Variables read by statements of p outside `stmts`.
std::vector<char> readOutside(const ir::Program& p, const std::vector<int32_t>& stmts) {
  std::vector<char> in(p.stmts.size(), 0), reads(p.vars.size(), 0), seen(p.nodes.size(), 0);
  for (int32_t s : stmts)
    if (s >= 0 && static_cast<size_t>(s) < p.stmts.size()) in[static_cast<size_t>(s)] = 1;
  for (size_t s = 0; s < p.stmts.size(); ++s) {
    if (in[s]) continue;
    std::vector<NodeId> todo{p.stmts[s].value};
    while (!todo.empty()) {
      const NodeId id = todo.back();
      todo.pop_back();
      if (id < 0 || static_cast<size_t>(id) >= p.nodes.size() || seen[static_cast<size_t>(id)]) continue;
      seen[static_cast<size_t>(id)] = 1;
      const Node& n = p.node(id);
      if (n.op == Op::Ref && n.var >= 0 && static_cast<size_t>(n.var) < p.vars.size())
        reads[static_cast<size_t>(n.var)] = 1;
      for (int i = 0; i < ir::opArity(n.op); ++i) todo.push_back(n.args[static_cast<size_t>(i)]);
    }
  }
  return reads;
}

}  // namespace

bool buildForm(const ir::Program& p, const std::vector<int32_t>& stmts, const FormOptions& o,
               PointwiseForm* out, std::string* error) {
  std::string scratch;
  if (!error) error = &scratch;
  PointwiseForm f;
  f.irStmts = stmts;
  Builder b(p, o, f, error);
  for (int32_t si : stmts)
    if (!b.statement(si)) return false;
  const std::vector<char> outside = readOutside(p, stmts);
  for (Stmt& s : f.stmts) s.readOutside = outside[static_cast<size_t>(s.var)] != 0;
  *out = std::move(f);
  return true;
}

}  // namespace fccl::fusion::lowered
