// pointwise_scalar.h - internal to fusion/exec: the tile VM's scalar semantics, the code behind
// every kernel: storage and compute C++ types per dtype, the rounding conversions (toStorage /
// fromStorage, what a Cast or a Store does), and one functor per lowered op. Kernels only loop
// over these (pointwise_ops.cc, pointwise_convert.cc); pointwise_form.h states the rules.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "fusion/exec/pointwise_ops.h"
#include "src/base/half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define FCCL_PW_X86 1
#ifdef __SANITIZE_THREAD__  // ifunc resolvers crash under TSan (see collectives/reduce_kernels.cc)
#define FCCL_PW_CLONES
#else
// Loops are plain so GCC vectorizes them; the avx2/avx512 clones widen the vectors on machines
// that have them while the library itself stays built for the x86-64 baseline.
#define FCCL_PW_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#else
#define FCCL_PW_X86 0
#define FCCL_PW_CLONES
#endif

namespace fccl::fusion::pw {

using ir::DType;

// ---------------------------------------------------------------------------------------------
// Storage and compute types per dtype.
template <DType D>
struct Types;
template <>
struct Types<DType::F64> {
  using St = double;
  using Cm = double;
};
template <>
struct Types<DType::F32> {
  using St = float;
  using Cm = float;
};
template <>
struct Types<DType::F16> {
  using St = half_t;
  using Cm = float;
};
template <>
struct Types<DType::BF16> {
  using St = bfloat16_t;
  using Cm = float;
};
template <>
struct Types<DType::I32> {
  using St = int32_t;
  using Cm = int32_t;
};
template <>
struct Types<DType::I64> {
  using St = int64_t;
  using Cm = int64_t;
};
template <>
struct Types<DType::Bool> {
  using St = uint8_t;
  using Cm = uint8_t;
};
template <DType D>
using St = typename Types<D>::St;
template <DType D>
using Cm = typename Types<D>::Cm;

template <class T>
constexpr bool kFloat = std::is_floating_point_v<T>;
template <class T>
constexpr bool kInt = std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>;
template <class T>
constexpr bool kBool = std::is_same_v<T, uint8_t>;

// double -> float rounded to odd (truncate, then set the last bit when inexact). Rounding that
// to a half or bfloat16 gives the correctly rounded result (float has >= p+2 more bits), where
// double -> float -> half by two nearest roundings can be off by one at ties.
inline float roundOddToFloat(double x) {
  const float f = static_cast<float>(x);
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const double back = static_cast<double>(f);
  const bool bump = back != x && x == x && (bits & 1u) == 0;
  const uint32_t adj = std::fabs(x) > std::fabs(back) ? bits + 1 : bits - 1;
  return std::bit_cast<float>(bump ? adj : bits);
}

template <class S>
inline float narrowToFloat(S x) {
  if constexpr (std::is_same_v<S, double>)
    return roundOddToFloat(x);
  else
    return static_cast<float>(x);
}

// Float -> integer: truncate toward zero, saturate at the type's range, NaN -> 0.
template <class I, class S>
inline I toInt(S x) {
  if constexpr (!kFloat<S>) {  // saturating narrowing (i64 -> i32), as the reference; bool is 0/1
    if constexpr (sizeof(S) > sizeof(I))
      return static_cast<I>(x > S(std::numeric_limits<I>::max())   ? std::numeric_limits<I>::max()
                            : x < S(std::numeric_limits<I>::min()) ? std::numeric_limits<I>::min()
                                                                   : x);
    else
      return static_cast<I>(x);
  } else {
    constexpr S lim = S(std::numeric_limits<I>::max() / 2 + 1) * S(2);  // 2^(bits-1), exact
    const I t = static_cast<I>(x >= lim || x < -lim || x != x ? S(0) : x);
    return x != x     ? I(0)
           : x >= lim ? std::numeric_limits<I>::max()
           : x < -lim ? std::numeric_limits<I>::min()
                      : t;
  }
}

template <DType D, class S>
inline St<D> toStorage(S x) {
  if constexpr (D == DType::F64)
    return static_cast<double>(x);
  else if constexpr (D == DType::F32)
    return static_cast<float>(x);
  else if constexpr (D == DType::F16)
    return toHalf(narrowToFloat(x));
  else if constexpr (D == DType::BF16)
    return toBfloat16(narrowToFloat(x));
  else if constexpr (D == DType::Bool)
    return static_cast<uint8_t>(x != S(0));
  else
    return toInt<St<D>>(x);
}

template <DType D>
inline Cm<D> fromStorage(St<D> s) {
  if constexpr (D == DType::F16 || D == DType::BF16)
    return toFloat(s);
  else if constexpr (D == DType::Bool)
    return static_cast<uint8_t>(s != 0);
  else
    return s;
}

// ---------------------------------------------------------------------------------------------
// Scalar semantics. Integers wrap (two's complement) instead of overflowing.
template <class T>
inline T wrapAdd(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
}
template <class T>
inline T wrapSub(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(a) - static_cast<U>(b));
}
template <class T>
inline T wrapMul(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(a) * static_cast<U>(b));
}
// Truncating division; x/0 = 0 and MIN/-1 = MIN (no trap).
template <class T>
inline T intDiv(T a, T b) {
  if (b == 0) return 0;
  if (b == -1) return wrapSub(T(0), a);
  return a / b;
}
// Integer power by squaring (wrapping); negative exponents: 1^e = 1, (-1)^e = +-1, else 0.
template <class T>
inline T intPow(T a, T e) {
  if (e < 0) return a == 1 ? T(1) : a == -1 ? ((e & 1) ? T(-1) : T(1)) : T(0);
  T r = 1;
  while (e) {
    if (e & 1) r = wrapMul(r, a);
    a = wrapMul(a, a);
    e >>= 1;
  }
  return r;
}

struct FNeg {
  template <class T>
  static T f(T x) {
    if constexpr (kFloat<T>)
      return -x;
    else
      return wrapSub(T(0), x);
  }
};
struct FAbs {
  template <class T>
  static T f(T x) {
    if constexpr (kFloat<T>)
      return std::fabs(x);
    else
      return x < 0 ? wrapSub(T(0), x) : x;
  }
};
struct FNot {
  template <class T>
  static T f(T x) {
    return static_cast<T>(x ^ 1);
  }
};
struct FSqrt {
  template <class T>
  static T f(T x) {
    return std::sqrt(x);
  }
};
struct FRsqrt {
  template <class T>
  static T f(T x) {
    return T(1) / std::sqrt(x);
  }
};
struct FExp {
  template <class T>
  static T f(T x) {
    return std::exp(x);
  }
};
struct FLog {
  template <class T>
  static T f(T x) {
    return std::log(x);
  }
};
struct FIsFinite {
  template <class T>
  static uint8_t f(T x) {
    if constexpr (std::is_same_v<T, float>) {
      return (std::bit_cast<uint32_t>(x) & 0x7f800000u) != 0x7f800000u;
    } else {
      return (std::bit_cast<uint64_t>(x) & 0x7ff0000000000000ull) != 0x7ff0000000000000ull;
    }
  }
};

struct FAdd {
  template <class T>
  static T f(T a, T b) {
    if constexpr (kFloat<T>)
      return a + b;
    else
      return wrapAdd(a, b);
  }
};
struct FSub {
  template <class T>
  static T f(T a, T b) {
    if constexpr (kFloat<T>)
      return a - b;
    else
      return wrapSub(a, b);
  }
};
struct FMul {
  template <class T>
  static T f(T a, T b) {
    if constexpr (kFloat<T>)
      return a * b;
    else
      return wrapMul(a, b);
  }
};
struct FDiv {
  template <class T>
  static T f(T a, T b) {
    if constexpr (kFloat<T>)
      return a / b;
    else
      return intDiv(a, b);
  }
};
struct FPow {
  template <class T>
  static T f(T a, T b) {
    if constexpr (kFloat<T>)
      return std::pow(a, b);
    else
      return intPow(a, b);
  }
};
// min/max ignore a NaN operand (fmin/fmax, as the reference); on ties (-0 vs +0) they return b.
struct FMin {
  template <class T>
  static T f(T a, T b) {
    if constexpr (kFloat<T>)
      return (a < b || b != b) ? a : b;
    else
      return a < b ? a : b;
  }
};
struct FMax {
  template <class T>
  static T f(T a, T b) {
    if constexpr (kFloat<T>)
      return (a > b || b != b) ? a : b;
    else
      return a > b ? a : b;
  }
};
struct FLt {
  template <class T>
  static uint8_t f(T a, T b) {
    return a < b;
  }
};
struct FLe {
  template <class T>
  static uint8_t f(T a, T b) {
    return a <= b;
  }
};
struct FGt {
  template <class T>
  static uint8_t f(T a, T b) {
    return a > b;
  }
};
struct FGe {
  template <class T>
  static uint8_t f(T a, T b) {
    return a >= b;
  }
};
struct FEq {
  template <class T>
  static uint8_t f(T a, T b) {
    return a == b;
  }
};
struct FNe {
  template <class T>
  static uint8_t f(T a, T b) {
    return a != b;
  }
};
struct FAnd {
  template <class T>
  static T f(T a, T b) {
    return static_cast<T>(a & b);
  }
};
struct FOr {
  template <class T>
  static T f(T a, T b) {
    return static_cast<T>(a | b);
  }
};

// ---------------------------------------------------------------------------------------------
// Pickers' helpers: compute type or dtype -> C++ type (a lambda then picks the kernel).
template <class Fn>
Kernel byType(CT t, Fn&& fn) {
  switch (t) {
    case CT::F64:
      return fn(double{});
    case CT::F32:
      return fn(float{});
    case CT::I32:
      return fn(int32_t{});
    case CT::I64:
      return fn(int64_t{});
    case CT::B8:
      return fn(uint8_t{});
  }
  return nullptr;
}

template <class Fn>
Kernel byDType(DType d, Fn&& fn) {
  switch (d) {
    case DType::F64:
      return fn(std::integral_constant<DType, DType::F64>{});
    case DType::F32:
      return fn(std::integral_constant<DType, DType::F32>{});
    case DType::F16:
      return fn(std::integral_constant<DType, DType::F16>{});
    case DType::BF16:
      return fn(std::integral_constant<DType, DType::BF16>{});
    case DType::I32:
      return fn(std::integral_constant<DType, DType::I32>{});
    case DType::I64:
      return fn(std::integral_constant<DType, DType::I64>{});
    case DType::Bool:
      return fn(std::integral_constant<DType, DType::Bool>{});
    default:
      return nullptr;
  }
}

#if FCCL_PW_X86
// sqrt and 1/sqrt on the IEEE instructions (pointwise_sqrt.cc), for F32 and F64.
Kernel sqrtKernelX86(CT t, bool recip);
#endif

}  // namespace fccl::fusion::pw
