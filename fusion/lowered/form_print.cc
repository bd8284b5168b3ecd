// form_print.cc - the small tables of the lowered pointwise form (compute types, op names and
// arities) and printForm, its text for fcclc --print-lowered and tests (pointwise_form.h).
#include <cstdio>

#include "fusion/ir/printer.h"
#include "fusion/lowered/pointwise_form.h"

namespace fccl::fusion::lowered {

CT computeType(ir::DType t) {
  switch (t) {
    case ir::DType::F32:
    case ir::DType::F16:
    case ir::DType::BF16:
      return CT::F32;
    case ir::DType::I32:
      return CT::I32;
    case ir::DType::I64:
      return CT::I64;
    case ir::DType::Bool:
      return CT::B8;
    default:
      return CT::F64;
  }
}

int ctBytes(CT t) { return t == CT::F64 || t == CT::I64 ? 8 : t == CT::B8 ? 1 : 4; }

const char* ctName(CT t) {
  static const char* const kNames[] = {"f64", "f32", "i32", "i64", "bool"};
  return kNames[static_cast<int>(t)];
}

ir::DType ctDType(CT ct) {
  static const ir::DType kTypes[] = {ir::DType::F64, ir::DType::F32, ir::DType::I32, ir::DType::I64,
                                     ir::DType::Bool};
  return kTypes[static_cast<int>(ct)];
}

const char* vopName(VOp op) {
  static const char* const kNames[] = {
      "const", "scalar", "rank",     "nranks", "load", "cast", "neg", "not",    "sqrt",   "rsqrt", "exp",
      "log",   "abs",    "isfinite", "add",    "sub",  "mul",  "div", "pow",    "min",    "max",   "lt",
      "le",    "gt",     "ge",       "eq",     "ne",   "and",  "or",  "select", "dropout"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(VOp::Dropout) + 1);
  return kNames[static_cast<int>(op)];
}

int vopArity(VOp op) {
  if (op <= VOp::Load) return 0;
  if (op <= VOp::IsFinite) return 1;
  if (op <= VOp::Or) return 2;
  return 3;
}

namespace {

const char* indexName(Index i) {
  static const char* const kNames[] = {"full", "sliced", "chunk", "node"};
  return kNames[static_cast<int>(i)];
}

std::string varName(const ir::Program& p, int32_t v) {
  return v >= 0 && static_cast<size_t>(v) < p.vars.size() ? p.vars[static_cast<size_t>(v)].name : "?";
}

// Built by appending: GCC 12 gives a false -Wrestrict on `"literal" + std::string` at -O3 (PR 105651).
std::string id(int32_t v) {
  std::string s = "%";
  s += std::to_string(v);
  return s;
}

}  // namespace

std::string printForm(const ir::Program& p, const PointwiseForm& f) {
  std::string out;
  size_t next = 0;
  for (const Stmt& s : f.stmts) {
    for (; next < static_cast<size_t>(s.valuesEnd); ++next) {
      const Value& v = f.values[next];
      std::string line = "  ";
      line += id(static_cast<int32_t>(next));
      line += " = ";
      line += vopName(v.op);
      line += ".";
      line += ctName(v.ct);
      switch (v.op) {
        case VOp::Const: {
          char buf[40];
          std::snprintf(buf, sizeof buf, " %.17g", v.value);
          line += buf;
          break;
        }
        case VOp::Scalar:
        case VOp::Load:
          line += " ";
          if (v.index == Index::NodeSlot || v.var < 0) {
            line += "(";
            line += ir::printExpr(p, v.node);
            line += ")";
          } else {
            line += varName(p, v.var);
          }
          if (v.op == VOp::Load || v.index == Index::NodeSlot) {
            line += "[";
            line += indexName(v.index);
            line += "]";
          }
          line += " : ";
          line += ir::dtypeName(v.dtype);
          if (v.storedBy >= 0) {
            line += " (after statement ";
            line += std::to_string(v.storedBy);
            line += ")";
          }
          break;
        case VOp::Cast:
          line += " ";
          line += id(v.a[0]);
          line += " to ";
          line += ir::dtypeName(v.dtype);
          break;
        default:
          for (int i = 0; i < vopArity(v.op); ++i) {
            line += i ? ", " : " ";
            line += id(v.a[static_cast<size_t>(i)]);
          }
          break;
      }
      if (v.uniform && v.op != VOp::Const) line += "  uniform";
      out += line + "\n";
    }
    static const char* const kKinds[] = {"store", "buffer", "scalar"};
    out += std::string("  ") + kKinds[static_cast<int>(s.kind)] + " " + varName(p, s.var);
    if (s.kind != StmtKind::ScalarResult) out += std::string("[") + indexName(s.index) + "]";
    out += std::string(" : ") + ir::dtypeName(s.dtype) + " = " + id(s.value);
    if (s.readOutside) out += " (read outside)";
    if (s.irStmt >= 0 && static_cast<size_t>(s.irStmt) < p.stmts.size()) {
      const ir::Stmt& st = p.stmts[static_cast<size_t>(s.irStmt)];
      out += "  # " + varName(p, st.var) + " = " + ir::printExpr(p, st.value);
    }
    out += "\n";
  }
  return out;
}

}  // namespace fccl::fusion::lowered
