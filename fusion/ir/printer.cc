// printer.cc - canonical printing (printer.h). Parentheses come from the precedence table,
// which mirrors the parser's grammar (grammar.md); change both together.
#include "fusion/ir/printer.h"

#include <charconv>
#include <cmath>

namespace fccl::ir {

namespace {

// Precedence of the printed form of a node: higher binds tighter.
enum Prec {
  kOr = 1,
  kAnd,
  kEq,
  kCmp,
  kAdd,
  kMul,
  kUnary,
  kPow,
  kPrimary
};

int precOf(const Program& p, NodeId id) {
  const Node& n = p.node(id);
  switch (n.op) {
    case Op::Or:
      return kOr;
    case Op::And:
      return kAnd;
    case Op::Eq:
    case Op::Ne:
      return kEq;
    case Op::Lt:
    case Op::Le:
    case Op::Gt:
    case Op::Ge:
      return kCmp;
    case Op::Add:
    case Op::Sub:
      return kAdd;
    case Op::Mul:
    case Op::Div:
      return kMul;
    case Op::Neg:
    case Op::Not:
      return kUnary;
    case Op::Pow:
      return kPow;
    case Op::Literal:
      return std::signbit(n.value) && n.dtype != DType::Bool ? kUnary : kPrimary;
    default:
      return kPrimary;
  }
}

constexpr int kMaxPrintDepth = 4096;  // far beyond what the parser accepts (256)

class ExprPrinter {
 public:
  explicit ExprPrinter(const Program& p) : p_(p) {}

  void emit(NodeId id, std::string& out, int depth = 0) {
    if (id < 0 || static_cast<size_t>(id) >= p_.nodes.size() || depth > kMaxPrintDepth) {
      out += "<bad>";
      return;
    }
    const Node& n = p_.node(id);
    auto sub = [&](NodeId a, bool paren) {
      if (paren) out += '(';
      emit(a, out, depth + 1);
      if (paren) out += ')';
    };
    auto call = [&](const char* name, bool redop) {
      out += name;
      out += '(';
      if (redop) {
        out += redOpName(n.redop);
        out += ", ";
      }
      for (int i = 0; i < opArity(n.op); ++i) {
        if (i) out += ", ";
        emit(n.args[static_cast<size_t>(i)], out, depth + 1);
      }
      out += ')';
    };
    const int prec = precOf(p_, id);
    switch (n.op) {
      case Op::Literal:
        if (n.dtype == DType::Bool)
          out += n.value != 0 ? "true" : "false";
        else
          out += printLiteral(n.value);
        return;
      case Op::Ref:
        out += n.var >= 0 && static_cast<size_t>(n.var) < p_.vars.size()
                   ? p_.vars[static_cast<size_t>(n.var)].name
                   : "<bad-var>";
        return;
      case Op::NRanks:
        out += "nranks";
        return;
      case Op::Rank:
        out += "rank";
        return;
      case Op::Neg:
      case Op::Not:
        out += opName(n.op);
        sub(n.args[0], precOf(p_, n.args[0]) < kUnary);
        return;
      case Op::Pow:
        // The base is a primary; the exponent is a unary expression (right associative).
        sub(n.args[0], precOf(p_, n.args[0]) < kPrimary);
        out += " ^ ";
        sub(n.args[1], precOf(p_, n.args[1]) < kUnary);
        return;
      case Op::Add:
      case Op::Sub:
      case Op::Mul:
      case Op::Div:
      case Op::And:
      case Op::Or:
      case Op::Lt:
      case Op::Le:
      case Op::Gt:
      case Op::Ge:
      case Op::Eq:
      case Op::Ne: {
        // Left associative; comparisons do not chain, so they need parens on both sides.
        const bool chain = isComparison(n.op);
        sub(n.args[0], chain ? precOf(p_, n.args[0]) <= prec : precOf(p_, n.args[0]) < prec);
        out += ' ';
        out += opName(n.op);
        out += ' ';
        sub(n.args[1], precOf(p_, n.args[1]) <= prec);
        return;
      }
      case Op::Cast:
        call(dtypeName(n.dtype), false);
        return;
      case Op::AllReduce:
      case Op::ReduceScatter:
      case Op::Reduce:
        call(opName(n.op), true);
        return;
      default:
        call(opName(n.op), false);
        return;
    }
  }

 private:
  const Program& p_;
};

}  // namespace

std::string printLiteral(double v) {
  if (std::isnan(v)) return "(0 / 0)";  // not produced by the parser; kept readable
  if (std::isinf(v)) return v > 0 ? "(1 / 0)" : "(-1 / 0)";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string printExpr(const Program& p, NodeId id) {
  std::string out;
  ExprPrinter(p).emit(id, out);
  return out;
}

std::string print(const Program& p, const PrintOptions& opts) {
  std::string out = "program " + p.name + "\n";
  for (const Var& v : p.vars) {
    if (v.kind == VarKind::Temp) continue;
    out += "  ";
    out += varKindName(v.kind);
    out += " " + v.name + " : " + dtypeName(v.dtype);
    if (v.kind != VarKind::Scalar) {
      if (!v.shape.empty()) out += shapeString(p, v.shape);
      out += " ";
      out += layoutName(v.layout);
    }
    out += "\n";
  }
  if (!p.stmts.empty()) out += "\n";
  for (const Stmt& s : p.stmts) {
    out += "  ";
    out += s.var >= 0 && static_cast<size_t>(s.var) < p.vars.size() ? p.vars[static_cast<size_t>(s.var)].name
                                                                    : "<bad-var>";
    out += " = " + printExpr(p, s.value);
    if (opts.annotate && s.value >= 0 && static_cast<size_t>(s.value) < p.nodes.size() &&
        p.node(s.value).dtype != DType::Untyped) {
      const Node& n = p.node(s.value);
      out += "  # " + typeString(p, n.dtype, n.shape, n.layout);
    }
    out += "\n";
  }
  return out;
}

}  // namespace fccl::ir
