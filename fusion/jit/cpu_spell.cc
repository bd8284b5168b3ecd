// cpu_spell.cc - see cpu_spell.h. The conversions spell pointwise_form.h's Cast rule case by case
// (as pointwise_scalar.h's toStorage / fromStorage do for the VM); jit_test checks every cast
// pair against the VM bit for bit.
#include "fusion/jit/cpu_spell.h"

#include <cmath>
#include <cstdio>

namespace fccl::fusion::jit {

using ir::DType;
using lowered::CT;
using lowered::isFloatCT;

const char* cppType(CT t) {
  switch (t) {
    case CT::F64:
      return "double";
    case CT::F32:
      return "float";
    case CT::I32:
      return "i32";
    case CT::I64:
      return "i64";
    case CT::B8:
      return "u8";
  }
  return "double";
}
const char* storageName(DType t) {
  switch (t) {
    case DType::F64:
      return "double";
    case DType::F32:
      return "float";
    case DType::F16:
    case DType::BF16:
      return "u16";
    case DType::I32:
      return "i32";
    case DType::I64:
      return "i64";
    default:
      return "u8";
  }
}
// prefix + decimal i, built by appending: GCC 12 gives a false -Wrestrict on
// `"literal" + std::to_string(i)` at -O3 (GCC PR 105651).
std::string name(const char* prefix, long long i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

// A double as an exact C++ expression (hex float; inf and NaN as builtins).
std::string literal(double x) {
  if (std::isnan(x)) return "__builtin_nan(\"\")";
  if (std::isinf(x)) return x > 0 ? "__builtin_huge_val()" : "(-__builtin_huge_val())";
  char buf[64];
  std::snprintf(buf, sizeof buf, "(%a)", x);
  return buf;
}

// Value `x` of compute type `from` in storage form of `to`, rounded (the VM's toStorage).
std::string toStorage(CT from, DType to, const std::string& x) {
  const std::string narrow = from == CT::F64 ? "roundOdd(" + x + ")" : "static_cast<float>(" + x + ")";
  switch (to) {
    case DType::F64:
      return "static_cast<double>(" + x + ")";
    case DType::F32:
      return "static_cast<float>(" + x + ")";
    case DType::F16:
      return "f2h(" + narrow + ")";
    case DType::BF16:
      return "f2b(" + narrow + ")";
    case DType::I32:
    case DType::I64: {
      const std::string I = to == DType::I32 ? "i32" : "i64";
      if (isFloatCT(from)) return "fti<" + I + ">(" + x + ")";
      if (from == CT::I64 && to == DType::I32) return "nti(" + x + ")";
      return "static_cast<" + I + ">(" + x + ")";
    }
    default:
      return "static_cast<u8>((" + x + ") != 0)";
  }
}
// Storage form -> compute type (fromStorage).
std::string fromStorage(DType t, const std::string& s) {
  switch (t) {
    case DType::F16:
      return "h2f(" + s + ")";
    case DType::BF16:
      return "b2f(" + s + ")";
    case DType::Bool:
      return "static_cast<u8>((" + s + ") != 0)";
    default:
      return s;
  }
}

}  // namespace fccl::fusion::jit
