// pointwise_ops.cc - the tile VM's kernels (pointwise_ops.h): one template loop per op, stamped
// out per compute type and operand form, and the pickers that map (op, type, form) to them.
// Semantics (the ones pointwise.h documents) live in the scalar functors below; the kernels
// only loop. Loops are plain so GCC vectorizes them; the avx2 clone doubles the vector width
// on machines that have it while the library itself stays built for the x86-64 baseline.
#include "fusion/exec/pointwise_ops.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "fusion/ir/dropout.h"
#include "src/base/half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define FCCL_PW_X86 1
#ifdef __SANITIZE_THREAD__  // ifunc resolvers crash under TSan (see collectives/reduce_kernels.cc)
#define FCCL_PW_CLONES
#else
#define FCCL_PW_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#else
#define FCCL_PW_X86 0
#define FCCL_PW_CLONES
#endif

namespace fccl::fusion::pw {

using ir::DType;
using ir::Op;

CT computeType(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      return CT::F32;
    case DType::I32:
      return CT::I32;
    case DType::I64:
      return CT::I64;
    case DType::Bool:
      return CT::B8;
    default:
      return CT::F64;
  }
}

int ctBytes(CT t) {
  switch (t) {
    case CT::F64:
    case CT::I64:
      return 8;
    case CT::F32:
    case CT::I32:
      return 4;
    case CT::B8:
      return 1;
  }
  return 8;
}

namespace {

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
// Kernels.
template <class F, class T>
FCCL_PW_CLONES void unaryK(void* o, const void* a, const void*, const void*, int n, int64_t) {
  using R = decltype(F::template f<T>(T{}));
  R* out = static_cast<R*>(o);
  const T* x = static_cast<const T*>(a);
  for (int i = 0; i < n; ++i) out[i] = F::template f<T>(x[i]);
}

template <class F, class T, Form form>
FCCL_PW_CLONES void binaryK(void* o, const void* a, const void* b, const void*, int n, int64_t) {
  using R = decltype(F::template f<T>(T{}, T{}));
  R* out = static_cast<R*>(o);
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  if constexpr (form == Form::VV) {
    for (int i = 0; i < n; ++i) out[i] = F::template f<T>(x[i], y[i]);
  } else if constexpr (form == Form::VU) {
    const T s = *y;
    for (int i = 0; i < n; ++i) out[i] = F::template f<T>(x[i], s);
  } else {
    const T s = *x;
    for (int i = 0; i < n; ++i) out[i] = F::template f<T>(s, y[i]);
  }
}

template <class F1, class F2, class T, Form form, bool innerLeft, bool otherUni>
FCCL_PW_CLONES void fusedK(void* o, const void* a, const void* b, const void* c, int n, int64_t) {
  T* out = static_cast<T*>(o);
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  const T* z = static_cast<const T*>(c);
  const T xs = *x, ys = *y, zs = *z;
  for (int i = 0; i < n; ++i) {
    const T xi = form == Form::UV ? xs : x[i];
    const T yi = form == Form::VU ? ys : y[i];
    const T zi = otherUni ? zs : z[i];
    const T r = F1::template f<T>(xi, yi);
    out[i] = innerLeft ? F2::template f<T>(r, zi) : F2::template f<T>(zi, r);
  }
}

template <class T>
FCCL_PW_CLONES void selectK(void* o, const void* c, const void* a, const void* b, int n, int64_t) {
  T* out = static_cast<T*>(o);
  const uint8_t* k = static_cast<const uint8_t*>(c);
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  for (int i = 0; i < n; ++i) out[i] = k[i] ? x[i] : y[i];
}

template <class T>
FCCL_PW_CLONES void dropoutK(void* o, const void* a, const void* pp, const void* sp, int n, int64_t first) {
  T* out = static_cast<T*>(o);
  const T* x = static_cast<const T*>(a);
  // dropout.h's rule: keep when the hash's top 24 bits >= floor(p * 2^24); x / (1 - p) in
  // double as the reference does (so an f32 result is bitwise the reference's); p >= 1 makes the
  // threshold 2^24, which no 24-bit value reaches, so every element drops.
  const double p = *static_cast<const double*>(pp);
  const auto seed = static_cast<unsigned long long>(*static_cast<const int64_t*>(sp));
  const unsigned threshold = ir::dropoutThreshold(p);
  const double denom = 1 - p;
  for (int i = 0; i < n; ++i) {
    const bool keep = ir::dropoutKeep(seed, static_cast<unsigned long long>(first + i), threshold);
    out[i] = static_cast<T>(keep ? static_cast<double>(x[i]) / denom : 0.0);
  }
}

template <class S, DType D>
FCCL_PW_CLONES void castK(void* o, const void* a, const void*, const void*, int n, int64_t) {
  Cm<D>* out = static_cast<Cm<D>*>(o);
  const S* x = static_cast<const S*>(a);
  for (int i = 0; i < n; ++i) out[i] = fromStorage<D>(toStorage<D>(x[i]));
}

template <DType D>
FCCL_PW_CLONES void loadK(void* o, const void* a, const void*, const void*, int n, int64_t) {
  Cm<D>* out = static_cast<Cm<D>*>(o);
  const St<D>* x = static_cast<const St<D>*>(a);
  for (int i = 0; i < n; ++i) out[i] = fromStorage<D>(x[i]);
}

template <class S, DType D, bool Uni>
FCCL_PW_CLONES void storeK(void* o, const void* a, const void*, const void*, int n, int64_t) {
  St<D>* out = static_cast<St<D>*>(o);
  const S* x = static_cast<const S*>(a);
  if constexpr (Uni) {
    const St<D> s = toStorage<D>(*x);
    for (int i = 0; i < n; ++i) out[i] = s;
  } else {
    for (int i = 0; i < n; ++i) out[i] = toStorage<D>(x[i]);
  }
}

template <class T>
void copyK(void* o, const void* a, const void*, const void*, int n, int64_t) {
  std::memcpy(o, a, sizeof(T) * static_cast<size_t>(n));
}

template <class T>
FCCL_PW_CLONES void fillK(void* o, const void* a, const void*, const void*, int n, int64_t) {
  T* out = static_cast<T*>(o);
  const T s = *static_cast<const T*>(a);
  for (int i = 0; i < n; ++i) out[i] = s;
}

// sqrt and 1/sqrt: std::sqrt cannot vectorize while it may set errno (the library is not built
// with -fno-math-errno), so on x86 these use the IEEE sqrt instructions directly (same results:
// correctly rounded, NaN for negative inputs).
#if FCCL_PW_X86
template <bool Recip>
__attribute__((target("avx2"))) void sqrtF32Avx2(void* o, const void* a, const void*, const void*, int n,
                                                 int64_t) {
  float* out = static_cast<float*>(o);
  const float* x = static_cast<const float*>(a);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 s = _mm256_sqrt_ps(_mm256_loadu_ps(x + i));
    if (Recip) s = _mm256_div_ps(_mm256_set1_ps(1.0f), s);
    _mm256_storeu_ps(out + i, s);
  }
  for (; i < n; ++i) {
    const float s = _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x[i])));
    out[i] = Recip ? 1.0f / s : s;
  }
}
template <bool Recip>
void sqrtF32Sse(void* o, const void* a, const void*, const void*, int n, int64_t) {
  float* out = static_cast<float*>(o);
  const float* x = static_cast<const float*>(a);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    __m128 s = _mm_sqrt_ps(_mm_loadu_ps(x + i));
    if (Recip) s = _mm_div_ps(_mm_set1_ps(1.0f), s);
    _mm_storeu_ps(out + i, s);
  }
  for (; i < n; ++i) {
    const float s = _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x[i])));
    out[i] = Recip ? 1.0f / s : s;
  }
}
template <bool Recip>
__attribute__((target("avx2"))) void sqrtF64Avx2(void* o, const void* a, const void*, const void*, int n,
                                                 int64_t) {
  double* out = static_cast<double*>(o);
  const double* x = static_cast<const double*>(a);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256d s = _mm256_sqrt_pd(_mm256_loadu_pd(x + i));
    if (Recip) s = _mm256_div_pd(_mm256_set1_pd(1.0), s);
    _mm256_storeu_pd(out + i, s);
  }
  for (; i < n; ++i) {
    const __m128d v = _mm_set_sd(x[i]);
    const double s = _mm_cvtsd_f64(_mm_sqrt_sd(v, v));
    out[i] = Recip ? 1.0 / s : s;
  }
}
template <bool Recip>
void sqrtF64Sse(void* o, const void* a, const void*, const void*, int n, int64_t) {
  double* out = static_cast<double*>(o);
  const double* x = static_cast<const double*>(a);
  int i = 0;
  for (; i + 2 <= n; i += 2) {
    __m128d s = _mm_sqrt_pd(_mm_loadu_pd(x + i));
    if (Recip) s = _mm_div_pd(_mm_set1_pd(1.0), s);
    _mm_storeu_pd(out + i, s);
  }
  for (; i < n; ++i) {
    const __m128d v = _mm_set_sd(x[i]);
    const double s = _mm_cvtsd_f64(_mm_sqrt_sd(v, v));
    out[i] = Recip ? 1.0 / s : s;
  }
}
bool haveAvx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
template <bool Recip>
Kernel sqrtKernel(CT t) {
  if (t == CT::F32) return haveAvx2() ? &sqrtF32Avx2<Recip> : &sqrtF32Sse<Recip>;
  return haveAvx2() ? &sqrtF64Avx2<Recip> : &sqrtF64Sse<Recip>;
}
#else
template <bool Recip>
Kernel sqrtKernel(CT t) {
  using F = std::conditional_t<Recip, FRsqrt, FSqrt>;
  if (t == CT::F32) return &unaryK<F, float>;
  return &unaryK<F, double>;
}
#endif

// ---------------------------------------------------------------------------------------------
// Pickers: compute type -> C++ type, then op -> functor, instantiating only valid pairs.
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

template <class F, class T>
Kernel binaryForms(Form f) {
  switch (f) {
    case Form::VV:
      return &binaryK<F, T, Form::VV>;
    case Form::VU:
      return &binaryK<F, T, Form::VU>;
    case Form::UV:
      return &binaryK<F, T, Form::UV>;
  }
  return nullptr;
}

template <class F1, class F2, class T>
Kernel fusedForms(Form f, bool innerLeft, bool otherUni) {
  auto pick = [&](auto form) -> Kernel {
    constexpr Form F = decltype(form)::value;
    if (innerLeft) return otherUni ? &fusedK<F1, F2, T, F, true, true> : &fusedK<F1, F2, T, F, true, false>;
    return otherUni ? &fusedK<F1, F2, T, F, false, true> : &fusedK<F1, F2, T, F, false, false>;
  };
  switch (f) {
    case Form::VV:
      return pick(std::integral_constant<Form, Form::VV>{});
    case Form::VU:
      return pick(std::integral_constant<Form, Form::VU>{});
    case Form::UV:
      return pick(std::integral_constant<Form, Form::UV>{});
  }
  return nullptr;
}

template <class Fn>
Kernel byArith(Op op, Fn&& fn) {
  switch (op) {
    case Op::Add:
      return fn(FAdd{});
    case Op::Sub:
      return fn(FSub{});
    case Op::Mul:
      return fn(FMul{});
    case Op::Div:
      return fn(FDiv{});
    default:
      return nullptr;
  }
}

}  // namespace

Kernel fusedKernel(Op inner, Op outer, CT t, Form innerForm, bool innerLeft, bool otherUniform) {
  if (t != CT::F32 && t != CT::F64) return nullptr;
  return byArith(inner, [&](auto f1) {
    return byArith(outer, [&](auto f2) {
      using F1 = decltype(f1);
      using F2 = decltype(f2);
      return t == CT::F32 ? fusedForms<F1, F2, float>(innerForm, innerLeft, otherUniform)
                          : fusedForms<F1, F2, double>(innerForm, innerLeft, otherUniform);
    });
  });
}

Kernel unaryKernel(Op op, CT t) {
  if ((op == Op::Sqrt || op == Op::Rsqrt) && (t == CT::F32 || t == CT::F64))
    return op == Op::Sqrt ? sqrtKernel<false>(t) : sqrtKernel<true>(t);
  return byType(t, [op](auto v) -> Kernel {
    using T = decltype(v);
    if constexpr (kBool<T>) {
      return op == Op::Not ? &unaryK<FNot, T> : nullptr;
    } else {
      switch (op) {
        case Op::Neg:
          return &unaryK<FNeg, T>;
        case Op::Abs:
          return &unaryK<FAbs, T>;
        default:
          break;
      }
      if constexpr (kFloat<T>) {
        switch (op) {
          case Op::Exp:
            return &unaryK<FExp, T>;
          case Op::Log:
            return &unaryK<FLog, T>;
          case Op::IsFinite:
            return &unaryK<FIsFinite, T>;
          default:
            break;
        }
      }
      return nullptr;
    }
  });
}

Kernel binaryKernel(Op op, CT t, Form f) {
  return byType(t, [op, f](auto v) -> Kernel {
    using T = decltype(v);
    switch (op) {
      case Op::Eq:
        return binaryForms<FEq, T>(f);
      case Op::Ne:
        return binaryForms<FNe, T>(f);
      default:
        break;
    }
    if constexpr (kBool<T>) {
      switch (op) {
        case Op::And:
          return binaryForms<FAnd, T>(f);
        case Op::Or:
          return binaryForms<FOr, T>(f);
        default:
          return nullptr;
      }
    } else {
      switch (op) {
        case Op::Add:
          return binaryForms<FAdd, T>(f);
        case Op::Sub:
          return binaryForms<FSub, T>(f);
        case Op::Mul:
          return binaryForms<FMul, T>(f);
        case Op::Div:
          return binaryForms<FDiv, T>(f);
        case Op::Pow:
          return binaryForms<FPow, T>(f);
        case Op::Min:
          return binaryForms<FMin, T>(f);
        case Op::Max:
          return binaryForms<FMax, T>(f);
        case Op::Lt:
          return binaryForms<FLt, T>(f);
        case Op::Le:
          return binaryForms<FLe, T>(f);
        case Op::Gt:
          return binaryForms<FGt, T>(f);
        case Op::Ge:
          return binaryForms<FGe, T>(f);
        default:
          return nullptr;
      }
    }
  });
}

Kernel selectKernel(CT t) {
  return byType(t, [](auto v) -> Kernel { return &selectK<decltype(v)>; });
}

Kernel dropoutKernel(CT t) {
  if (t == CT::F32) return &dropoutK<float>;
  if (t == CT::F64) return &dropoutK<double>;
  return nullptr;
}

Kernel castKernel(CT from, DType to) {
  return byType(from, [to](auto v) -> Kernel {
    using S = decltype(v);
    return byDType(to, [](auto d) -> Kernel { return &castK<S, decltype(d)::value>; });
  });
}

Kernel loadKernel(DType stored) {
  return byDType(stored, [](auto d) -> Kernel { return &loadK<decltype(d)::value>; });
}

Kernel storeKernel(CT from, DType stored, bool uniformSource) {
  return byType(from, [stored, uniformSource](auto v) -> Kernel {
    using S = decltype(v);
    return byDType(stored, [uniformSource](auto d) -> Kernel {
      if (uniformSource) return &storeK<S, decltype(d)::value, true>;
      return &storeK<S, decltype(d)::value, false>;
    });
  });
}

Kernel copyKernel(CT t) {
  return byType(t, [](auto v) -> Kernel { return &copyK<decltype(v)>; });
}

Kernel fillKernel(CT t) {
  return byType(t, [](auto v) -> Kernel { return &fillK<decltype(v)>; });
}

void scalarToCompute(double v, DType t, void* out) {
  byDType(t, [v, out](auto d) -> Kernel {
    constexpr DType D = decltype(d)::value;
    const Cm<D> c = fromStorage<D>(toStorage<D>(v));
    std::memcpy(out, &c, sizeof(c));
    return nullptr;
  });
}

double computeToDouble(const void* in, CT t) {
  switch (t) {
    case CT::F64: {
      double x;
      std::memcpy(&x, in, 8);
      return x;
    }
    case CT::F32: {
      float x;
      std::memcpy(&x, in, 4);
      return x;
    }
    case CT::I32: {
      int32_t x;
      std::memcpy(&x, in, 4);
      return x;
    }
    case CT::I64: {
      int64_t x;
      std::memcpy(&x, in, 8);
      return static_cast<double>(x);
    }
    case CT::B8: {
      uint8_t x;
      std::memcpy(&x, in, 1);
      return x;
    }
  }
  return 0;
}

}  // namespace fccl::fusion::pw
