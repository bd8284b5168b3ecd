// cuda_expr.cc - CUDA C++ spellings of the IR's types, literals and the lowered form's ops
// (cuda_expr.h). The semantics are the lowered form's (fusion/lowered/pointwise_form.h): min/max
// ignore NaN and return the second operand on ties (fccl_min), rsqrt is 1/sqrt (correctly
// rounded, unlike rsqrtf), integer division truncates with x/0 = 0; the helpers named fccl_*
// live in the prelude (cuda_prelude.cc).
#include "fusion/codegen/cuda_expr.h"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "fusion/ref/round.h"

namespace fccl::fusion::codegen {

using ir::DType;
using lowered::VOp;

const char* computeTypeName(DType t) {
  switch (t) {
    case DType::F64:
      return "double";
    case DType::I32:
      return "int";
    case DType::I64:
      return "long long";
    case DType::Bool:
      return "bool";
    default:
      return "float";  // f32, f16, bf16 (Untyped never reaches the emitter)
  }
}

const char* storageTypeName(DType t) {
  if (t == DType::F16) return "__half";
  if (t == DType::BF16) return "__nv_bfloat16";
  return computeTypeName(t);
}

namespace {

// Shortest text that reads back as the same value, with a '.' or exponent so C++ sees a
// floating literal.
template <typename F>
std::string shortest(F v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

Expr wrap(const Expr& e, int maxPrec) { return e.prec > maxPrec ? Expr{"(" + e.text + ")", 0} : e; }

Expr call(const std::string& f, const Expr& a) { return {f + "(" + a.text + ")", 0}; }
Expr call(const std::string& f, const Expr& a, const Expr& b) {
  return {f + "(" + a.text + ", " + b.text + ")", 0};
}

// Left-associative binary operator of precedence p. Under comparisons and logic every
// binary operand is parenthesized: clearer, and NVRTC warns about `a && b || c`.
Expr binary(const char* op, int p, const Expr& l, const Expr& r) {
  const int lmax = p >= 9 ? 3 : p, rmax = p >= 9 ? 3 : p - 1;
  return {wrap(l, lmax).text + " " + op + " " + wrap(r, rmax).text, p};
}

Expr unary(const char* op, const Expr& e) { return {op + wrap(e, 0).text, 3}; }

}  // namespace

Expr literal(DType t, double v) {
  if (t == DType::Bool) return {v != 0 ? "true" : "false", 0};
  if (t == DType::I32 || t == DType::I64) {
    const double r = ir::ref::roundTo(t, v);
    if (t == DType::I32) {
      const auto x = static_cast<int64_t>(r);
      if (x == INT32_MIN) return {"(-2147483647 - 1)", 0};
      return {std::to_string(x), x < 0 ? 3 : 0};
    }
    // roundTo saturates at 2^63, which is not an int64.
    const int64_t x = r >= 9223372036854775807.0 ? INT64_MAX : static_cast<int64_t>(r);
    if (x == INT64_MIN) return {"(-9223372036854775807LL - 1)", 0};
    return {std::to_string(x) + "LL", x < 0 ? 3 : 0};
  }
  if (t == DType::F64) {
    if (std::isnan(v)) return {"__longlong_as_double(0x7ff8000000000000LL)", 0};
    if (std::isinf(v))
      return {std::string(v < 0 ? "-" : "") + "__longlong_as_double(0x7ff0000000000000LL)", v < 0 ? 3 : 0};
    return {shortest(v), std::signbit(v) ? 3 : 0};
  }
  const float f = static_cast<float>(ir::ref::roundTo(t, v));  // exact: already rounded
  if (std::isnan(f)) return {"__int_as_float(0x7fffffff)", 0};
  if (std::isinf(f)) return {std::string(f < 0 ? "-" : "") + "__int_as_float(0x7f800000)", f < 0 ? 3 : 0};
  return {shortest(f) + "f", std::signbit(f) ? 3 : 0};
}

Expr convert(lowered::CT from, DType to, Expr e) {
  const DType f = lowered::ctDType(from);  // f64, f32 (also f16/bf16 held in float), i32, i64, bool
  if (from == lowered::computeType(to) && (lowered::storedAsComputed(to) || to == DType::Bool)) return e;
  // Conversions whose C cast already rounds like the form's Cast (to nearest even).
  const bool cCast = (to == DType::F32 && (f == DType::F64 || ir::isInteger(f))) ||
                     (to == DType::F64 && f != DType::Bool) || (to == DType::I64 && f == DType::I32);
  if (cCast) return {std::string("(") + computeTypeName(to) + ")" + wrap(e, 0).text, 3};
  return call(std::string("fccl_to_") + ir::dtypeName(to), e);
}

std::string loadFrom(DType t, const std::string& element) {
  if (t == DType::F16) return "__half2float(" + element + ")";
  if (t == DType::BF16) return "__bfloat162float(" + element + ")";
  return element;
}

std::string storeAs(DType t, const std::string& value) {
  if (t == DType::F16) return "__float2half_rn(" + value + ")";
  if (t == DType::BF16) return "__float2bfloat16_rn(" + value + ")";
  return value;
}

std::string scalarField(DType t, const std::string& field) {
  switch (t) {
    case DType::F64:
      return field + ".f";
    case DType::F32:
      return "(float)" + field + ".f";
    case DType::F16:
      return "fccl_to_f16(" + field + ".f)";  // one rounding from the double
    case DType::BF16:
      return "fccl_to_bf16(" + field + ".f)";
    case DType::I32:
      return "(int)" + field + ".i";
    case DType::I64:
      return field + ".i";
    default:
      return "(" + field + ".i != 0)";  // bool
  }
}

Expr opExpr(VOp op, lowered::CT at, const Expr* a, const std::string& index) {
  const DType x = lowered::ctDType(at);
  const bool f64 = x == DType::F64, flt = lowered::isFloatCT(at);
  auto fn = [&](const char* f32name, const char* f64name) { return std::string(f64 ? f64name : f32name); };
  switch (op) {
    case VOp::Neg:
      return unary("-", a[0]);
    case VOp::Not:
      return unary("!", a[0]);
    case VOp::Sqrt:
      return call(fn("sqrtf", "sqrt"), a[0]);
    case VOp::Rsqrt:  // 1/sqrt, correctly rounded twice like the CPU; rsqrtf is 2 ulp
      return binary("/", 5, literal(x, 1), call(fn("sqrtf", "sqrt"), a[0]));
    case VOp::Exp:
      return call(fn("expf", "exp"), a[0]);
    case VOp::Log:
      return call(fn("logf", "log"), a[0]);
    case VOp::Abs:
      return call(flt ? fn("fabsf", "fabs") : x == DType::I64 ? "llabs" : "abs", a[0]);
    case VOp::IsFinite:
      return call("fccl_isfinite", a[0]);
    case VOp::Add:
      return binary("+", 6, a[0], a[1]);
    case VOp::Sub:
      return binary("-", 6, a[0], a[1]);
    case VOp::Mul:
      return binary("*", 5, a[0], a[1]);
    case VOp::Div:
      return flt ? binary("/", 5, a[0], a[1]) : call("fccl_div", a[0], a[1]);
    case VOp::Pow:
      if (!flt)
        return Expr{
            "fccl_ipow<" + std::string(computeTypeName(x)) + ">(" + a[0].text + ", " + a[1].text + ")", 0};
      return call(fn("powf", "pow"), a[0], a[1]);  // an integer exponent was cast to the base's type
    case VOp::Min:
      return call("fccl_min", a[0], a[1]);
    case VOp::Max:
      return call("fccl_max", a[0], a[1]);
    case VOp::Lt:
      return binary("<", 9, a[0], a[1]);
    case VOp::Le:
      return binary("<=", 9, a[0], a[1]);
    case VOp::Gt:
      return binary(">", 9, a[0], a[1]);
    case VOp::Ge:
      return binary(">=", 9, a[0], a[1]);
    case VOp::Eq:
      return binary("==", 10, a[0], a[1]);
    case VOp::Ne:
      return binary("!=", 10, a[0], a[1]);
    case VOp::And:
      return binary("&&", 14, a[0], a[1]);
    case VOp::Or:
      return binary("||", 15, a[0], a[1]);
    case VOp::Select: {
      // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive, PR 105329) on
      // "(" + std::string at -O3.
      std::string text = "(";
      text += wrap(a[0], 3).text;
      text += " ? ";
      text += wrap(a[1], 3).text;
      text += " : ";
      text += wrap(a[2], 3).text;
      text += ")";
      return Expr{text, 0};
    }
    case VOp::Dropout:
      return Expr{"fccl_dropout(" + a[0].text + ", " + a[1].text + ", " + a[2].text + ", " + index + ")", 0};
    default:  // leaves, Load and Cast are spelled by the emitter
      return Expr{};
  }
}

}  // namespace fccl::fusion::codegen
