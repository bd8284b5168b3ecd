// round.h - rounding a double to an element type, exactly as a store into a tensor of that
// type does: floats round to nearest even with subnormals and overflow to inf, integers
// truncate toward zero and saturate (NaN -> 0), bool is x != 0.
#pragma once

#include <cmath>
#include <cstdint>

#include "fusion/ir/ir.h"

namespace fccl::ir::ref {

// Rounds x to a binary float with `p` significand bits (implicit bit included) and normal
// exponents in [emin, emax], in one step (no double rounding through f32).
inline double roundToBinary(double x, int p, int emin, int emax) {
  if (!std::isfinite(x) || x == 0) return x;
  int e = 0;
  std::frexp(x, &e);  // |x| in [2^(e-1), 2^e)
  int E = e - 1;
  if (E < emin) E = emin;  // subnormal range: a fixed quantum
  const double q = std::ldexp(1.0, E - (p - 1));
  const double r = std::nearbyint(x / q) * q;  // x/q is exact (power of two); ties to even
  const double maxFinite = std::ldexp(2.0 - std::ldexp(1.0, 1 - p), emax);
  if (std::fabs(r) > maxFinite) return std::copysign(INFINITY, x);
  return r;
}

inline double roundTo(DType t, double x) {
  switch (t) {
    case DType::F32:
      return roundToBinary(x, 24, -126, 127);
    case DType::F16:
      return roundToBinary(x, 11, -14, 15);
    case DType::BF16:
      return roundToBinary(x, 8, -126, 127);
    case DType::I32:
    case DType::I64: {
      if (std::isnan(x)) return 0;
      const double lo = t == DType::I32 ? -2147483648.0 : -9223372036854775808.0;
      const double hi = t == DType::I32 ? 2147483647.0 : 9223372036854775807.0;
      return std::trunc(x < lo ? lo : x > hi ? hi : x);
    }
    case DType::Bool:
      return x != 0 ? 1 : 0;
    default:
      return x;  // F64, Untyped
  }
}

}  // namespace fccl::ir::ref
