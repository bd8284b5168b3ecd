// ir.cc - names and small helpers of the IR types (ir.h): spellings of dtypes, layouts, ops,
// symbolic element-count comparison, and type strings used by messages and the printer.
#include "fusion/ir/ir.h"

#include <algorithm>

namespace fccl::ir {

namespace {
struct DTypeName {
  DType t;
  const char* name;
  int bytes;
};
constexpr DTypeName kDTypes[] = {
    {DType::Untyped, "untyped", 0}, {DType::F64, "f64", 8}, {DType::F32, "f32", 4}, {DType::F16, "f16", 2},
    {DType::BF16, "bf16", 2},       {DType::I32, "i32", 4}, {DType::I64, "i64", 8}, {DType::Bool, "bool", 1},
};
}  // namespace

const char* dtypeName(DType t) { return kDTypes[static_cast<int>(t)].name; }
int dtypeBytes(DType t) { return kDTypes[static_cast<int>(t)].bytes; }
bool parseDType(std::string_view s, DType* out) {
  for (const DTypeName& d : kDTypes) {
    if (d.t != DType::Untyped && s == d.name) {
      *out = d.t;
      return true;
    }
  }
  return false;
}

const char* layoutName(Layout l) {
  switch (l) {
    case Layout::Replicated:
      return "replicated";
    case Layout::Sliced:
      return "sliced";
    case Layout::Local:
      return "local";
  }
  return "?";
}
bool parseLayout(std::string_view s, Layout* out) {
  for (Layout l : {Layout::Replicated, Layout::Sliced, Layout::Local}) {
    if (s == layoutName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

const char* redOpName(RedOp op) {
  switch (op) {
    case RedOp::Sum:
      return "sum";
    case RedOp::Prod:
      return "prod";
    case RedOp::Min:
      return "min";
    case RedOp::Max:
      return "max";
    case RedOp::Avg:
      return "avg";
  }
  return "?";
}
bool parseRedOp(std::string_view s, RedOp* out) {
  for (RedOp op : {RedOp::Sum, RedOp::Prod, RedOp::Min, RedOp::Max, RedOp::Avg}) {
    if (s == redOpName(op)) {
      *out = op;
      return true;
    }
  }
  return false;
}

const char* varKindName(VarKind k) {
  switch (k) {
    case VarKind::In:
      return "in";
    case VarKind::Out:
      return "out";
    case VarKind::InOut:
      return "inout";
    case VarKind::Scalar:
      return "scalar";
    case VarKind::Temp:
      return "temp";
  }
  return "?";
}

const char* opName(Op op) {
  switch (op) {
    case Op::Literal:
      return "literal";
    case Op::Ref:
      return "ref";
    case Op::NRanks:
      return "nranks";
    case Op::Rank:
      return "rank";
    case Op::Neg:
      return "-";
    case Op::Not:
      return "!";
    case Op::Sqrt:
      return "sqrt";
    case Op::Rsqrt:
      return "rsqrt";
    case Op::Exp:
      return "exp";
    case Op::Log:
      return "log";
    case Op::Abs:
      return "abs";
    case Op::IsFinite:
      return "isfinite";
    case Op::Cast:
      return "cast";
    case Op::Add:
      return "+";
    case Op::Sub:
      return "-";
    case Op::Mul:
      return "*";
    case Op::Div:
      return "/";
    case Op::Pow:
      return "^";
    case Op::Min:
      return "min";
    case Op::Max:
      return "max";
    case Op::Lt:
      return "<";
    case Op::Le:
      return "<=";
    case Op::Gt:
      return ">";
    case Op::Ge:
      return ">=";
    case Op::Eq:
      return "==";
    case Op::Ne:
      return "!=";
    case Op::And:
      return "&&";
    case Op::Or:
      return "||";
    case Op::Select:
      return "select";
    case Op::Dropout:
      return "dropout";
    case Op::AllReduce:
      return "allreduce";
    case Op::ReduceScatter:
      return "reduce_scatter";
    case Op::AllGather:
      return "all_gather";
    case Op::Broadcast:
      return "broadcast";
    case Op::Reduce:
      return "reduce";
    case Op::Slice:
      return "slice";
    case Op::Norm:
      return "norm";
    case Op::Sum:
      return "sum";
    case Op::MaxAll:
      return "max";
    case Op::AnyNonfinite:
      return "any_nonfinite";
  }
  return "?";
}

int opArity(Op op) {
  switch (op) {
    case Op::Literal:
    case Op::Ref:
    case Op::NRanks:
    case Op::Rank:
      return 0;
    case Op::Neg:
    case Op::Not:
    case Op::Sqrt:
    case Op::Rsqrt:
    case Op::Exp:
    case Op::Log:
    case Op::Abs:
    case Op::IsFinite:
    case Op::Cast:
    case Op::AllReduce:
    case Op::ReduceScatter:
    case Op::AllGather:
    case Op::Slice:
    case Op::Norm:
    case Op::Sum:
    case Op::MaxAll:
    case Op::AnyNonfinite:
      return 1;
    case Op::Select:
    case Op::Dropout:
      return 3;
    default:
      return 2;  // binary ops, Broadcast (x, root), Reduce (x, root)
  }
}

bool isCollective(Op op) { return op >= Op::AllReduce && op <= Op::Slice; }
bool isWholeReduction(Op op) { return op >= Op::Norm && op <= Op::AnyNonfinite; }
bool isComparison(Op op) { return op >= Op::Lt && op <= Op::Ne; }

bool sameElementCount(const Shape& a, const Shape& b) {
  // Canonical form: product of constants and the sorted multiset of symbols.
  auto canon = [](const Shape& s, int64_t* prod, std::vector<int32_t>* syms) {
    *prod = 1;
    for (const Dim& d : s) {
      if (d.sym >= 0) {
        syms->push_back(d.sym);
      } else {
        // Saturate instead of overflowing: absurd constant shapes just compare as "huge".
        if (d.size != 0 && *prod > INT64_MAX / (d.size < 1 ? 1 : d.size))
          *prod = INT64_MAX;
        else
          *prod *= d.size;
      }
    }
    std::sort(syms->begin(), syms->end());
  };
  int64_t pa = 0, pb = 0;
  std::vector<int32_t> sa, sb;
  canon(a, &pa, &sa);
  canon(b, &pb, &sb);
  if (pa == 0 && pb == 0) return true;  // both empty tensors whatever the symbols
  return pa == pb && sa == sb;
}

int Program::findVar(std::string_view n) const {
  for (size_t i = 0; i < vars.size(); ++i)
    if (vars[i].name == n) return static_cast<int>(i);
  return -1;
}
int Program::findSymbol(std::string_view n) const {
  for (size_t i = 0; i < symbols.size(); ++i)
    if (symbols[i] == n) return static_cast<int>(i);
  return -1;
}
int Program::internSymbol(std::string_view n) {
  int i = findSymbol(n);
  if (i >= 0) return i;
  symbols.emplace_back(n);
  return static_cast<int>(symbols.size() - 1);
}

std::string shapeString(const Program& p, const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    if (s[i].sym >= 0 && static_cast<size_t>(s[i].sym) < p.symbols.size())
      out += p.symbols[static_cast<size_t>(s[i].sym)];
    else
      out += std::to_string(s[i].size);
  }
  return out + "]";
}

std::string typeString(const Program& p, DType t, const Shape& s, Layout l) {
  std::string out = dtypeName(t);
  if (!s.empty()) out += shapeString(p, s);
  return out + " " + layoutName(l);
}

}  // namespace fccl::ir
