// rules.cc - per-node typing and layout rules (rules.h, layouts.md). Pure functions of the
// arena; no coercions here: the checker inserts casts/gathers before asking.
#include "fusion/check/rules.h"

#include "fusion/ir/printer.h"

namespace fccl::ir::check {

std::string describe(const Program& p, NodeId id) {
  const Node& n = p.node(id);
  if (n.op == Op::Ref) return p.vars[static_cast<size_t>(n.var)].name;
  std::string s = printExpr(p, id);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return "'" + s + "'";
}

namespace {

// The running layout of a pointwise fold: the layout, whether everything so far is scalar, and
// a node that has that layout (named in messages).
struct Acc {
  Layout layout;
  bool scalar;
  NodeId rep;
};

bool combine(const Program& p, Acc* acc, NodeId b, std::string* err) {
  const Node& y = p.node(b);
  if (acc->scalar || y.isScalar()) {
    // A scalar is Replicated (no effect) or Local (makes a whole value local; a sliced value
    // stays sliced, each rank's slice computed with its own scalar).
    const Layout s = acc->scalar ? acc->layout : y.layout;
    const Layout o = acc->scalar ? y.layout : acc->layout;
    acc->layout = s == Layout::Replicated ? o : (o == Layout::Sliced ? Layout::Sliced : Layout::Local);
    if (acc->scalar) acc->rep = b;
    acc->scalar = acc->scalar && y.isScalar();
    return true;
  }
  const Layout lx = acc->layout, ly = y.layout;
  if ((lx == Layout::Local && ly == Layout::Sliced) || (lx == Layout::Sliced && ly == Layout::Local)) {
    const NodeId sl = lx == Layout::Sliced ? acc->rep : b;
    const NodeId lo = lx == Layout::Sliced ? b : acc->rep;
    *err = describe(p, sl) +
           " is sliced: only 1/n of it exists on this rank; all_gather it to "
           "combine with local " +
           describe(p, lo);
    return false;
  }
  // Equal layouts stay; Replicated with Sliced reads the replicated operand at the slice;
  // Replicated with Local gives Local.
  if (lx == Layout::Replicated && ly != Layout::Replicated) {
    acc->layout = ly;
    acc->rep = b;
  }
  return true;
}

}  // namespace

bool combineLayouts(const Program& p, NodeId a, NodeId b, Layout* out, std::string* err) {
  Acc acc{p.node(a).layout, p.node(a).isScalar(), a};
  if (!combine(p, &acc, b, err)) return false;
  *out = acc.layout;
  return true;
}

namespace {

bool fail(std::string* err, Loc* errLoc, Loc loc, std::string msg) {
  *err = std::move(msg);
  *errLoc = loc;
  return false;
}

// Pointwise result layout and shape over the operands used by the op.
bool pointwise(const Program& p, const Node& n, ValueType* out, std::string* err, Loc* errLoc) {
  const int k = opArity(n.op);
  const NodeId first = n.args[0];
  Acc acc{p.node(first).layout, p.node(first).isScalar(), first};
  const Node* tensor = p.node(first).isScalar() ? nullptr : &p.node(first);
  for (int i = 1; i < k; ++i) {
    const NodeId a = n.args[static_cast<size_t>(i)];
    const Node& an = p.node(a);
    if (!an.isScalar()) {
      if (tensor && !sameElementCount(tensor->shape, an.shape)) {
        return fail(err, errLoc, n.loc,
                    "shapes " + shapeString(p, tensor->shape) + " and " + shapeString(p, an.shape) +
                        " do not have the same number of elements");
      }
      if (!tensor) tensor = &an;
    }
    if (!combine(p, &acc, a, err)) return fail(err, errLoc, n.loc, *err);
  }
  out->layout = acc.layout;
  out->shape = tensor ? tensor->shape : Shape{};
  return true;
}

bool isNumeric(DType t) { return t != DType::Bool; }  // Untyped counts as numeric

}  // namespace

bool inferNode(const Program& p, NodeId id, ValueType* out, std::string* err, Loc* errLoc) {
  const Node& n = p.node(id);
  *out = ValueType{};
  auto arg = [&](int i) -> const Node& { return p.node(n.args[static_cast<size_t>(i)]); };
  auto dt = [&](int i) { return arg(i).dtype; };
  switch (n.op) {
    case Op::Literal:
      out->dtype = n.dtype;
      return true;
    case Op::Ref: {
      const Var& v = p.vars[static_cast<size_t>(n.var)];
      *out = {v.dtype, v.layout, v.shape, false};
      return true;
    }
    case Op::NRanks:
      out->dtype = DType::I32;
      return true;
    case Op::Rank:
      out->dtype = DType::I32;
      out->layout = Layout::Local;
      return true;
    default:
      break;
  }
  const Node& a0 = arg(0);
  const std::string op = opName(n.op);
  if (isCollective(n.op)) {
    out->dtype = a0.dtype;
    out->shape = a0.shape;
    const std::string what = op + " of " + layoutName(a0.layout) + " " + describe(p, n.args[0]);
    if ((n.op == Op::Broadcast || n.op == Op::Reduce)) {
      const Node& r = arg(1);
      if (!isInteger(r.dtype) || !r.isScalar() || r.layout != Layout::Replicated)
        return fail(err, errLoc, r.loc,
                    "the root of " + op + " must be an integer scalar, the same on every rank");
    }
    if ((n.op == Op::AllReduce || n.op == Op::ReduceScatter || n.op == Op::Reduce) &&
        a0.dtype == DType::Bool && n.redop != RedOp::Min && n.redop != RedOp::Max)
      return fail(err, errLoc, n.loc,
                  std::string(redOpName(n.redop)) +
                      " of bool values; use "
                      "min (all) or max (any), or cast to a number");
    if (a0.isScalar() && (n.op == Op::ReduceScatter || n.op == Op::AllGather || n.op == Op::Slice))
      return fail(err, errLoc, n.loc, op + " needs a tensor, not a scalar");
    switch (n.op) {
      case Op::AllReduce:
        if (a0.layout == Layout::Replicated)
          return fail(err, errLoc, n.loc, what + ": it is already the same on every rank");
        if (a0.layout == Layout::Sliced)
          return fail(err, errLoc, n.loc, what + ": it is already reduced; all_gather it");
        out->layout = Layout::Replicated;
        return true;
      case Op::ReduceScatter:
        if (a0.layout != Layout::Local)
          return fail(err, errLoc, n.loc, what + ": reduce_scatter needs a local tensor");
        out->layout = Layout::Sliced;
        return true;
      case Op::AllGather:
        if (a0.layout != Layout::Sliced)
          return fail(err, errLoc, n.loc,
                      what + ": all_gather needs a sliced tensor" +
                          (a0.layout == Layout::Local ? "; combine local values with allreduce"
                                                      : "; it is already whole on every rank"));
        out->layout = Layout::Replicated;
        return true;
      case Op::Broadcast:
        if (a0.layout == Layout::Sliced) return fail(err, errLoc, n.loc, what + ": all_gather it first");
        out->layout = Layout::Replicated;
        return true;
      case Op::Reduce:
        if (a0.layout != Layout::Local)
          return fail(err, errLoc, n.loc, what + ": reduce needs a local value");
        out->layout = Layout::Local;
        return true;
      default:  // Slice
        if (a0.layout != Layout::Replicated)
          return fail(err, errLoc, n.loc, what + ": slice needs a replicated tensor");
        out->layout = Layout::Sliced;
        return true;
    }
  }
  if (isWholeReduction(n.op)) {
    if (a0.isScalar())
      return fail(err, errLoc, n.loc, op + " reduces a tensor; " + describe(p, n.args[0]) + " is a scalar");
    const bool needFloat = n.op == Op::Norm || n.op == Op::AnyNonfinite;
    if (needFloat ? !isFloat(a0.dtype) : !(isFloat(a0.dtype) || isInteger(a0.dtype)))
      return fail(
          err, errLoc, n.loc,
          op + " needs a " + (needFloat ? "float" : "numeric") + " tensor, not " + dtypeName(a0.dtype));
    out->dtype = n.op == Op::AnyNonfinite ? DType::Bool : a0.dtype;
    out->crossRank = a0.layout == Layout::Sliced;
    out->layout = a0.layout == Layout::Local ? Layout::Local : Layout::Replicated;
    return true;
  }
  // Pointwise.
  if (!pointwise(p, n, out, err, errLoc)) return false;
  switch (n.op) {
    case Op::Neg:
    case Op::Abs:
      if (!isNumeric(a0.dtype)) return fail(err, errLoc, n.loc, op + " of a bool");
      out->dtype = a0.dtype;
      return true;
    case Op::Sqrt:
    case Op::Rsqrt:
    case Op::Exp:
    case Op::Log:
      if (!isFloat(a0.dtype) && a0.dtype != DType::Untyped)
        return fail(err, errLoc, n.loc,
                    op + " needs a float operand, not " + dtypeName(a0.dtype) + "; cast it: f32(" +
                        describe(p, n.args[0]) + ")");
      out->dtype = a0.dtype;
      return true;
    case Op::IsFinite:
      if (!isFloat(a0.dtype))
        return fail(err, errLoc, n.loc,
                    "isfinite needs a float operand, not " + std::string(dtypeName(a0.dtype)));
      out->dtype = DType::Bool;
      return true;
    case Op::Not:
      if (a0.dtype != DType::Bool) return fail(err, errLoc, n.loc, "'!' needs a bool operand");
      out->dtype = DType::Bool;
      return true;
    case Op::Cast:
      if (a0.dtype == DType::Untyped) return fail(err, errLoc, n.loc, "cast of an untyped value");
      out->dtype = n.dtype;
      return true;
    case Op::And:
    case Op::Or:
      if (a0.dtype != DType::Bool || dt(1) != DType::Bool)
        return fail(err, errLoc, n.loc, "'" + op + "' needs bool operands (comparisons)");
      out->dtype = DType::Bool;
      return true;
    case Op::Select:
      if (a0.dtype != DType::Bool)
        return fail(err, errLoc, a0.loc,
                    "the condition of select must be bool, not " + std::string(dtypeName(a0.dtype)));
      if (dt(1) != dt(2))
        return fail(err, errLoc, n.loc,
                    std::string("select branches have different types: ") + dtypeName(dt(1)) + " and " +
                        dtypeName(dt(2)));
      out->dtype = dt(1);
      return true;
    case Op::Dropout:
      if (!isFloat(a0.dtype) || a0.isScalar())
        return fail(err, errLoc, n.loc, "dropout needs a float tensor");
      if (!isFloat(dt(1)) || !arg(1).isScalar() || arg(1).layout != Layout::Replicated)
        return fail(err, errLoc, arg(1).loc,
                    "the drop probability of dropout must be a float "
                    "scalar, the same on every rank");
      if (!isInteger(dt(2)) || !arg(2).isScalar() || arg(2).layout != Layout::Replicated)
        return fail(err, errLoc, arg(2).loc,
                    "the seed of dropout must be an integer scalar, "
                    "the same on every rank");
      out->dtype = a0.dtype;
      out->layout = a0.layout;
      out->shape = a0.shape;
      return true;
    case Op::Pow:
      if (!isNumeric(a0.dtype) || !isNumeric(dt(1))) return fail(err, errLoc, n.loc, "'^' of a bool");
      if (dt(1) != a0.dtype && !(isInteger(dt(1)) && (isFloat(a0.dtype) || a0.dtype == DType::Untyped)))
        return fail(err, errLoc, n.loc,
                    std::string(dtypeName(a0.dtype)) + " and " + dtypeName(dt(1)) + " do not mix in '^'");
      out->dtype = a0.dtype;
      return true;
    default: {  // binary arithmetic and comparisons: equal operand types
      if (a0.dtype != dt(1))
        return fail(err, errLoc, n.loc,
                    std::string(dtypeName(a0.dtype)) + " and " + dtypeName(dt(1)) + " do not mix");
      const bool cmp = isComparison(n.op);
      if (a0.dtype == DType::Bool && !(n.op == Op::Eq || n.op == Op::Ne))
        return fail(err, errLoc, n.loc, "'" + op + "' of bool values");
      out->dtype = cmp ? DType::Bool : a0.dtype;
      return true;
    }
  }
}

StoreKind storeRule(const Program& p, const Var& t, NodeId value, std::string* err) {
  const Node& v = p.node(value);
  const std::string tn = "'" + t.name + "'";
  if (t.isScalar() && !v.isScalar()) {
    *err = "a tensor cannot be stored in scalar " + tn + "; reduce it with norm, sum or max";
    return StoreKind::Error;
  }
  if (!v.isScalar() && !sameElementCount(t.shape, v.shape)) {
    *err = "value of shape " + shapeString(p, v.shape) + " stored in " + tn + " of shape " +
           shapeString(p, t.shape);
    return StoreKind::Error;
  }
  switch (t.layout) {
    case Layout::Replicated:
      if (v.layout == Layout::Sliced) return StoreKind::Gather;
      if (v.layout == Layout::Local) {
        *err = "value is local (it differs per rank) but " + tn +
               " is replicated; allreduce or broadcast it first";
        return StoreKind::Error;
      }
      return StoreKind::Ok;
    case Layout::Sliced:
      if (v.layout == Layout::Replicated && !v.isScalar()) return StoreKind::Slice;
      if (v.layout == Layout::Local && !v.isScalar()) {
        *err = "value is local (it differs per rank) but " + tn + " is sliced; reduce_scatter it first";
        return StoreKind::Error;
      }
      return StoreKind::Ok;  // sliced, or a scalar filling each rank's slice
    case Layout::Local:
      if (v.layout == Layout::Sliced) {
        *err = "value is sliced (1/n of it on each rank) but " + tn + " is local; all_gather it first";
        return StoreKind::Error;
      }
      return StoreKind::Ok;
  }
  return StoreKind::Ok;
}

}  // namespace fccl::ir::check
