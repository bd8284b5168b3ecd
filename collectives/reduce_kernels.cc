// reduce_kernels.cc - the dtype x op reduction loops behind reduceN/scale/divide.
// Invariants: one pass over memory for any nsrcs (sources folded through an L1-sized tile);
// every inner loop is a plain elementwise loop GCC vectorizes; ISA-specific code only behind
// target_clones or a cpuid check (x86-64), so it runs on any x86-64 CPU and builds elsewhere.
#include "collectives/reduce_kernels.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "src/base/half.h"

// Each public entry is a `flatten` dispatcher: all kernel templates inline into it, so each
// clone compiles the whole loop nest for its ISA and the ifunc picks one at load time.
// Under ThreadSanitizer only the default clone: GCC instruments the ifunc resolver, which the
// dynamic loader runs before the TSan runtime is initialized (segfault at startup).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#ifdef __SANITIZE_THREAD__
#define FCCL_KERNEL_CLONES __attribute__((flatten))
#else
#define FCCL_KERNEL_CLONES __attribute__((target_clones("avx2", "default"), flatten))
#endif
#define FCCL_HAVE_F16C_PATH 1
#include <immintrin.h>
#else
#define FCCL_KERNEL_CLONES __attribute__((flatten))
#endif

namespace fccl {
namespace {

template <class T>
constexpr bool kIs16 = std::is_same_v<T, half_t> || std::is_same_v<T, bfloat16_t>;

// Arithmetic happens in Wide<T>: float for the 16-bit floats, T otherwise.
template <class T>
using Wide = std::conditional_t<kIs16<T>, float, T>;

template <class T>
inline Wide<T> up(T x) {
  if constexpr (kIs16<T>)
    return toFloat(x);
  else
    return x;
}
template <class T>
inline T down(Wide<T> x) {
  if constexpr (std::is_same_v<T, half_t>)
    return toHalf(x);
  else if constexpr (std::is_same_v<T, bfloat16_t>)
    return toBfloat16(x);
  else
    return x;
}

// Integer sum/prod go through the unsigned type so overflow wraps instead of being UB.
struct Sum {
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      using U = std::make_unsigned_t<T>;
      return T(U(a) + U(b));
    } else {
      return down<T>(up(a) + up(b));
    }
  }
};
struct Prod {
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      using U = std::make_unsigned_t<T>;  // uint8 promotes to int: 255*255 still fits
      return T(U(a) * U(b));
    } else {
      return down<T>(up(a) * up(b));
    }
  }
};
template <class W>
inline bool isNan(W x) {
  if constexpr (std::is_floating_point_v<W>)
    return x != x;
  else
    return false;
}
// c ? a : b; on the 16-bit structs selecting the raw bits, as a select of whole structs is not
// vectorized by GCC 12.
template <class T>
inline T pick(bool c, T a, T b) {
  if constexpr (kIs16<T>)
    return T{uint16_t(c ? a.bits : b.bits)};
  else
    return c ? a : b;
}
// Max/min return one operand unchanged (no rounding); a NaN operand wins so it is not lost
// by the reduction. Written as compare+select, which maps to vcmpps/vblendvps.
struct Max {
  template <class T>
  static T apply(T a, T b) {
    return pick(up(a) > up(b) || isNan(up(a)), a, b);
  }
};
struct Min {
  template <class T>
  static T apply(T a, T b) {
    return pick(up(a) < up(b) || isNan(up(a)), a, b);
  }
};

#ifdef FCCL_HAVE_F16C_PATH
// float16 through F16C: the software conversions vectorize but cost ~25 ops per element and
// ran at ~6 GB/s; vcvtph2ps/vcvtps2ph (RNE, NaN quieted with payload kept, like toHalf) run at
// memory speed. Results are bit-identical to the portable path.
template <class Op>
__attribute__((target("avx"))) inline __m256 apply8(__m256 x, __m256 y) {
  if constexpr (std::is_same_v<Op, Sum>) return _mm256_add_ps(x, y);
  if constexpr (std::is_same_v<Op, Prod>) return _mm256_mul_ps(x, y);
  constexpr int kCmp = std::is_same_v<Op, Max> ? _CMP_GT_OQ : _CMP_LT_OQ;
  const __m256 takeX = _mm256_or_ps(_mm256_cmp_ps(x, y, kCmp), _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  return _mm256_blendv_ps(y, x, takeX);
}

template <class Op>
__attribute__((target("avx,f16c"), noinline)) void pairLoopF16C(half_t* out, const half_t* a, const half_t* b,
                                                                size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
    const __m256 y = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
    const __m128i r = _mm256_cvtps_ph(apply8<Op>(x, y), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), r);
  }
  for (; i < n; ++i) out[i] = Op::apply(a[i], b[i]);
}

// bfloat16 through AVX2: unpacking with zero words makes the float bits in place and packus
// undoes the unpack's in-lane order, so no cross-lane shuffles (GCC's own vectorization of
// the portable loop widens and permutes, ~3x slower). Rounding as toBfloat16.
template <class Op>
__attribute__((target("avx2"), noinline)) void pairLoopBf16Avx2(bfloat16_t* out, const bfloat16_t* a,
                                                                const bfloat16_t* b, size_t n) {
  const __m256i zero = _mm256_setzero_si256(), bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1),
                quiet = _mm256_set1_epi32(0x40);
  auto round = [&](__m256 f) __attribute__((target("avx2"))) {
    const __m256i x = _mm256_castps_si256(f), hi = _mm256_srli_epi32(x, 16);
    const __m256i r =
        _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(x, bias), _mm256_and_si256(hi, one)), 16);
    const __m256 nan = _mm256_cmp_ps(f, f, _CMP_UNORD_Q);
    return _mm256_blendv_epi8(r, _mm256_or_si256(hi, quiet), _mm256_castps_si256(nan));
  };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    const __m256 lo = apply8<Op>(_mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, va)),
                                 _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, vb)));
    const __m256 hi = apply8<Op>(_mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, va)),
                                 _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, vb)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_packus_epi32(round(lo), round(hi)));
  }
  for (; i < n; ++i) out[i] = Op::apply(a[i], b[i]);
}

// CPU features, read once (immutable after the first call).
bool cpuHasF16C() {
  static const bool has = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  return has;
}
bool cpuHasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

// out[i] = a[i] op b[i]. out may equal a or b exactly (distance-0 dependence, which ivdep
// allows); without ivdep GCC's runtime overlap check sends the in-place case to scalar code.
template <class Op, class T>
inline void pairLoop(T* out, const T* a, const T* b, size_t n) {
#ifdef FCCL_HAVE_F16C_PATH
  if constexpr (std::is_same_v<T, half_t>) {
    if (cpuHasF16C()) return pairLoopF16C<Op>(out, a, b, n);
  }
  if constexpr (std::is_same_v<T, bfloat16_t>) {
    if (cpuHasAvx2()) return pairLoopBf16Avx2<Op>(out, a, b, n);
  }
#endif
#pragma GCC ivdep
  for (size_t i = 0; i < n; ++i) out[i] = Op::apply(a[i], b[i]);
}

// Bytes of one fold tile: with the sources streaming through, it stays in a 32 KiB L1.
constexpr size_t kTileBytes = 8192;

template <class T>
bool aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % alignof(T) == 0;
}

template <class Op, class T>
void reduceTyped(void* dstv, const void* const* srcs, int n, size_t count) {
  if (count == 0 || n < 1) return;
  if (n == 1) {
    if (dstv != srcs[0]) std::memcpy(dstv, srcs[0], count * sizeof(T));
    return;
  }
  constexpr size_t kTile = kTileBytes / sizeof(T);
  alignas(64) T acc[kTile];
  bool allAligned = aligned<T>(dstv);
  for (int k = 0; k < n; ++k) allAligned = allAligned && aligned<T>(srcs[k]);
  if (!allAligned) {
    // Rare: element-misaligned pointers. Stage each tile through aligned buffers (memcpy
    // has no alignment needs); all sources of a tile are read before dst's tile is written.
    alignas(64) T in[kTile];
    char* dst = static_cast<char*>(dstv);
    for (size_t off = 0; off < count; off += kTile) {
      const size_t len = std::min(kTile, count - off), bytes = len * sizeof(T);
      std::memcpy(acc, static_cast<const char*>(srcs[0]) + off * sizeof(T), bytes);
      for (int k = 1; k < n; ++k) {
        std::memcpy(in, static_cast<const char*>(srcs[k]) + off * sizeof(T), bytes);
        pairLoop<Op>(acc, acc, in, len);
      }
      std::memcpy(dst + off * sizeof(T), acc, bytes);
    }
    return;
  }
  T* dst = static_cast<T*>(dstv);
  const T* s0 = static_cast<const T*>(srcs[0]);
  const T* last = static_cast<const T*>(srcs[n - 1]);
  if (n == 2) {
    pairLoop<Op>(dst, s0, last, count);
    return;
  }
  // n >= 3: fold the sources into acc tile by tile (one pass over memory), the last step
  // writing dst. dst may alias any source: its tile is written after every source's tile
  // was read.
  const T* s1 = static_cast<const T*>(srcs[1]);
  for (size_t off = 0; off < count; off += kTile) {
    const size_t len = std::min(kTile, count - off);
    pairLoop<Op>(acc, s0 + off, s1 + off, len);
    for (int k = 2; k < n - 1; ++k) pairLoop<Op>(acc, acc, static_cast<const T*>(srcs[k]) + off, len);
    pairLoop<Op>(dst + off, acc, last + off, len);
  }
}

// dst[i] = f(src[i]); dst == src allowed. Misaligned pointers are staged like above.
template <class T, class F>
inline void mapTyped(void* dstv, const void* srcv, size_t count, F f) {
  if (aligned<T>(dstv) && aligned<T>(srcv)) {
    T* dst = static_cast<T*>(dstv);
    const T* src = static_cast<const T*>(srcv);
#pragma GCC ivdep
    for (size_t i = 0; i < count; ++i) dst[i] = f(src[i]);
    return;
  }
  constexpr size_t kTile = kTileBytes / sizeof(T);
  alignas(64) T buf[kTile];
  for (size_t off = 0; off < count; off += kTile) {
    const size_t len = std::min(kTile, count - off), bytes = len * sizeof(T);
    std::memcpy(buf, static_cast<const char*>(srcv) + off * sizeof(T), bytes);
    for (size_t i = 0; i < len; ++i) buf[i] = f(buf[i]);
    std::memcpy(static_cast<char*>(dstv) + off * sizeof(T), buf, bytes);
  }
}

// Calls fn(T{}) with the storage type of `type`; false for an unknown type.
template <class Fn>
inline bool withType(fcclDataType_t type, Fn&& fn) {
  switch (type) {
    case fcclInt8:
      fn(int8_t{});
      return true;
    case fcclUint8:
      fn(uint8_t{});
      return true;
    case fcclInt32:
      fn(int32_t{});
      return true;
    case fcclUint32:
      fn(uint32_t{});
      return true;
    case fcclInt64:
      fn(int64_t{});
      return true;
    case fcclUint64:
      fn(uint64_t{});
      return true;
    case fcclFloat16:
      fn(half_t{});
      return true;
    case fcclFloat32:
      fn(float{});
      return true;
    case fcclFloat64:
      fn(double{});
      return true;
    case fcclBfloat16:
      fn(bfloat16_t{});
      return true;
    default:
      return false;
  }
}

}  // namespace

FCCL_KERNEL_CLONES void reduceN(fcclDataType_t type, fcclRedOp_t op, void* dst, const void* const* srcs,
                                int nsrcs, size_t count) {
  withType(type, [&](auto x) {
    using T = decltype(x);
    switch (op) {
      case fcclProd:
        reduceTyped<Prod, T>(dst, srcs, nsrcs, count);
        break;
      case fcclMax:
        reduceTyped<Max, T>(dst, srcs, nsrcs, count);
        break;
      case fcclMin:
        reduceTyped<Min, T>(dst, srcs, nsrcs, count);
        break;
      default:
        reduceTyped<Sum, T>(dst, srcs, nsrcs, count);
        break;  // sum, avg, premulsum
    }
  });
}

FCCL_KERNEL_CLONES void scale(fcclDataType_t type, void* dst, const void* src, const void* scalar,
                              size_t count) {
  withType(type, [&](auto x) {
    using T = decltype(x);
    T s;
    std::memcpy(&s, scalar, sizeof(T));
    mapTyped<T>(dst, src, count, [s](T v) { return Prod::apply(v, s); });
  });
}

FCCL_KERNEL_CLONES void divide(fcclDataType_t type, void* dst, const void* src, int divisor, size_t count) {
  if (divisor < 1) return;  // contract: divisor >= 1 (nranks); also rules out INT_MIN / -1
  withType(type, [&](auto x) {
    using T = decltype(x);
    if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
      // int64 quotient of a T always fits back in T since divisor >= 1.
      const int64_t d = divisor;
      mapTyped<T>(dst, src, count, [d](T v) { return T(int64_t(v) / d); });
    } else if constexpr (std::is_integral_v<T>) {
      const T d = T(divisor);
      if (uint64_t(d) != uint64_t(divisor)) {  // divisor exceeds the type (uint8): quotient 0
        mapTyped<T>(dst, src, count, [](T) { return T(0); });
      } else {
        mapTyped<T>(dst, src, count, [d](T v) { return T(v / d); });
      }
    } else {
      const Wide<T> d = Wide<T>(divisor);
      mapTyped<T>(dst, src, count, [d](T v) { return down<T>(up(v) / d); });
    }
  });
}

}  // namespace fccl
