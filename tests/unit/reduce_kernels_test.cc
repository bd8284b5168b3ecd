// reduce_kernels_test.cc - reduceN/scale/divide and the half/bfloat16 conversions against an
// independent scalar reference (16-bit formats decoded/encoded with double arithmetic).
// Comparisons are exact: bitwise, except that any NaN matches any NaN.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "collectives/reduce_kernels.h"
#include "src/base/half.h"

namespace fccl {
namespace {

// ---- Reference 16-bit float formats, by value arithmetic in double --------------------------
struct Fmt {
  int expBits, mantBits;
  int bias() const { return (1 << (expBits - 1)) - 1; }
  uint32_t expMask() const { return ((1u << expBits) - 1) << mantBits; }
};
constexpr Fmt kHalf{5, 10}, kBf16{8, 7};

bool refIsNan(uint16_t b, Fmt f) {
  return (b & f.expMask()) == f.expMask() && (b & ((1u << f.mantBits) - 1)) != 0;
}

double refDecode(uint16_t b, Fmt f) {
  const int e = (b >> f.mantBits) & ((1 << f.expBits) - 1);
  const int m = b & ((1 << f.mantBits) - 1);
  double v;
  if (e == (1 << f.expBits) - 1)
    v = m ? NAN : INFINITY;
  else if (e == 0)
    v = std::ldexp(m, 1 - f.bias() - f.mantBits);
  else
    v = std::ldexp((1 << f.mantBits) + m, e - f.bias() - f.mantBits);
  return (b >> 15) ? -v : v;
}

// Nearest representable value, ties to even (nearbyint in the default rounding mode).
uint16_t refEncode(double x, Fmt f) {
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  if (std::isnan(x)) return sign | f.expMask() | (1u << (f.mantBits - 1));
  const double a = std::fabs(x);
  if (a == 0) return sign;
  int e;
  std::frexp(a, &e);  // a in [2^(e-1), 2^e)
  const int ulpExp = std::max(e - 1 - f.mantBits, 1 - f.bias() - f.mantBits);
  const double m = std::nearbyint(std::ldexp(a, -ulpExp));  // value = m * 2^ulpExp
  const double maxFinite = std::ldexp((2 << f.mantBits) - 1, f.bias() - f.mantBits);
  if (std::isinf(a) || std::ldexp(m, ulpExp) > maxFinite) return sign | f.expMask();
  if (ulpExp == 1 - f.bias() - f.mantBits && m <= (1 << f.mantBits)) {
    return sign | uint16_t(m);  // subnormal (m == 2^mantBits is the smallest normal, same bits)
  }
  std::frexp(std::ldexp(m, ulpExp), &e);  // rounding may have carried into the next binade
  const double frac = std::ldexp(std::ldexp(m, ulpExp), 1 - e) - 1.0;  // in [0, 1)
  return sign | uint16_t((e - 1 + f.bias()) << f.mantBits) | uint16_t(frac * (1 << f.mantBits));
}

// ---- Reference arithmetic on raw values ------------------------------------------------------
template <class T>
constexpr bool kIs16 = std::is_same_v<T, half_t> || std::is_same_v<T, bfloat16_t>;
template <class T>
constexpr Fmt fmtOf() {
  return std::is_same_v<T, half_t> ? kHalf : kBf16;
}

template <class T>
bool isNanVal(T v) {
  if constexpr (kIs16<T>)
    return refIsNan(v.bits, fmtOf<T>());
  else if constexpr (std::is_floating_point_v<T>)
    return std::isnan(v);
  else
    return false;
}
template <class T>
bool same(T a, T b) {
  if (isNanVal(a) || isNanVal(b)) return isNanVal(a) && isNanVal(b);
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// A 16-bit float as the float32 the spec computes in (exact: the formats embed in float).
template <class T>
float wide(T v) {
  if constexpr (kIs16<T>)
    return float(refDecode(v.bits, fmtOf<T>()));
  else
    return float(v);
}
template <class T>
T narrow(float x) {
  return T{refEncode(double(x), fmtOf<T>())};
}

template <class T>
T refOp(fcclRedOp_t op, T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    // Wrap modulo 2^64, then truncate (C++20 conversion is modular).
    if (op == fcclSum) return T(uint64_t(a) + uint64_t(b));
    if (op == fcclProd) return T(uint64_t(a) * uint64_t(b));
    if (op == fcclMax) return a > b ? a : b;
    return a < b ? a : b;
  } else {
    if (op == fcclMax || op == fcclMin) {
      if (isNanVal(a) || isNanVal(b)) return isNanVal(a) ? a : b;  // NaN propagates
      double x, y;
      if constexpr (kIs16<T>)
        x = refDecode(a.bits, fmtOf<T>()), y = refDecode(b.bits, fmtOf<T>());
      else
        x = a, y = b;
      return (op == fcclMax ? x > y : x < y) ? a : b;
    }
    if constexpr (std::is_same_v<T, double> || std::is_same_v<T, float>) {
      return op == fcclSum ? T(a + b) : T(a * b);
    } else {
      const float r = op == fcclSum ? wide(a) + wide(b) : wide(a) * wide(b);
      return narrow<T>(r);
    }
  }
}

// ---- Inputs ----------------------------------------------------------------------------------
template <class T>
T randomValue(std::mt19937_64& rng, size_t i) {
  const uint64_t r = rng();
  if constexpr (std::is_integral_v<T>) {
    return T(r);  // full range: sums and products wrap
  } else {
    // Moderate magnitudes so sums round in interesting ways; specials sprinkled in.
    static const float kSpecial[] = {NAN, INFINITY, -INFINITY, -0.0f, 0.0f, 5.96e-8f, 65504.0f, 1e-40f};
    float v = float(int64_t(r % 200001) - 100000) / 997.0f;
    if (i % 61 == 13) v = kSpecial[(r >> 32) % 8];
    if constexpr (kIs16<T>)
      return narrow<T>(v);
    else
      return T(v);
  }
}

enum class Place {
  kOut,
  kInFirst,
  kInLast,
  kElemOffset,
  kByteOffset
};

template <class T>
void checkReduce(fcclDataType_t type, fcclRedOp_t op, int nsrcs, size_t count, Place place,
                 std::mt19937_64& rng) {
  constexpr size_t kPad = 16;
  const size_t shift = place == Place::kElemOffset ? sizeof(T) : place == Place::kByteOffset ? 1 : 0;
  std::vector<std::vector<unsigned char>> bufs(nsrcs + 1,
                                               std::vector<unsigned char>((count + 2) * sizeof(T) + kPad));
  std::vector<std::vector<T>> vals(nsrcs, std::vector<T>(count));
  std::vector<const void*> srcs(nsrcs);
  for (int k = 0; k < nsrcs; ++k) {
    for (size_t i = 0; i < count; ++i) vals[k][i] = randomValue<T>(rng, i + k);
    // A 1-element or 1-byte offset from the vector's (16-byte aligned) storage.
    unsigned char* p = bufs[k].data() + shift;
    // count may be 0: an empty vector's data() is null, which memcpy must not get (UBSan).
    if (count != 0) std::memcpy(p, vals[k].data(), count * sizeof(T));
    srcs[k] = p;
  }
  unsigned char* dst = bufs[nsrcs].data() + shift;
  if (place == Place::kInFirst) dst = const_cast<unsigned char*>(static_cast<const unsigned char*>(srcs[0]));
  if (place == Place::kInLast)
    dst = const_cast<unsigned char*>(static_cast<const unsigned char*>(srcs[nsrcs - 1]));
  std::memset(dst + count * sizeof(T), 0xA5, sizeof(T));  // guard past the end

  reduceN(type, op, dst, srcs.data(), nsrcs, count);

  for (size_t i = 0; i < count; ++i) {
    T want = vals[0][i];
    for (int k = 1; k < nsrcs; ++k) want = refOp(op, want, vals[k][i]);  // left-to-right fold
    T got;
    std::memcpy(&got, dst + i * sizeof(T), sizeof(T));
    if (!same(got, want)) {
      uint64_t g = 0, w = 0;
      std::memcpy(&g, &got, sizeof(T));
      std::memcpy(&w, &want, sizeof(T));
      FAIL() << dtypeName(type) << " " << redOpName(op) << " nsrcs=" << nsrcs << " count=" << count
             << " place=" << int(place) << " i=" << i << ": got 0x" << std::hex << g << " want 0x" << w;
    }
  }
  for (size_t b = 0; b < sizeof(T); ++b) ASSERT_EQ(dst[count * sizeof(T) + b], 0xA5) << "wrote past the end";
}

template <class Fn>
void forEachType(Fn fn) {
  fn(fcclInt8, int8_t{});
  fn(fcclUint8, uint8_t{});
  fn(fcclInt32, int32_t{});
  fn(fcclUint32, uint32_t{});
  fn(fcclInt64, int64_t{});
  fn(fcclUint64, uint64_t{});
  fn(fcclFloat16, half_t{});
  fn(fcclFloat32, float{});
  fn(fcclFloat64, double{});
  fn(fcclBfloat16, bfloat16_t{});
}

// ---- Tests -----------------------------------------------------------------------------------
TEST(HalfTest, KnownBitPatterns) {
  static_assert(toHalf(1.0f).bits == 0x3C00);  // constexpr-friendly
  static_assert(toBfloat16(1.0f).bits == 0x3F80);
  EXPECT_EQ(toHalf(65504.0f).bits, 0x7BFF);
  EXPECT_EQ(toHalf(65519.99f).bits, 0x7BFF);
  EXPECT_EQ(toHalf(65520.0f).bits, 0x7C00);  // halfway to 2^16 rounds to even: inf
  EXPECT_EQ(toHalf(1e10f).bits, 0x7C00);
  EXPECT_EQ(toHalf(-INFINITY).bits, 0xFC00);
  EXPECT_EQ(toHalf(std::ldexp(1.0f, -24)).bits, 0x0001);
  EXPECT_EQ(toHalf(std::ldexp(1.0f, -25)).bits, 0x0000);  // tie to even (0)
  EXPECT_EQ(toHalf(std::ldexp(3.0f, -25)).bits, 0x0002);  // 1.5 ulp: tie to even (2)
  EXPECT_EQ(toHalf(std::ldexp(1.0f, -14)).bits, 0x0400);
  EXPECT_EQ(toHalf(1.0f + std::ldexp(1.0f, -11)).bits, 0x3C00);  // tie, even is down
  EXPECT_EQ(toHalf(1.0f + std::ldexp(3.0f, -11)).bits, 0x3C02);  // tie, even is up
  EXPECT_EQ(toHalf(-0.0f).bits, 0x8000);
  EXPECT_TRUE(refIsNan(toHalf(NAN).bits, kHalf));
  EXPECT_TRUE(refIsNan(toHalf(-NAN).bits, kHalf));
  EXPECT_EQ(toFloat(half_t{0x0001}), std::ldexp(1.0f, -24));
  EXPECT_EQ(toFloat(half_t{0x7BFF}), 65504.0f);
  EXPECT_TRUE(std::signbit(toFloat(half_t{0x8000})));
  EXPECT_TRUE(std::isnan(toFloat(half_t{0x7C01})));
  EXPECT_EQ(toBfloat16(1.0f + std::ldexp(1.0f, -8)).bits, 0x3F80);  // tie, even is down
  EXPECT_EQ(toBfloat16(1.0f + std::ldexp(3.0f, -8)).bits, 0x3F82);  // tie, even is up
  EXPECT_EQ(toBfloat16(3.4e38f).bits, 0x7F80);                      // rounds past max: inf
  EXPECT_EQ(toBfloat16(-0.0f).bits, 0x8000);
  EXPECT_TRUE(refIsNan(toBfloat16(NAN).bits, kBf16));
  // A NaN whose payload lives only in the low 16 bits must stay NaN, not become inf.
  EXPECT_TRUE(refIsNan(toBfloat16(std::bit_cast<float>(0x7F800001u)).bits, kBf16));
  EXPECT_TRUE(refIsNan(toHalf(std::bit_cast<float>(0x7F800001u)).bits, kHalf));
}

TEST(HalfTest, AllBitPatternsDecodeAndRoundTrip) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    for (Fmt f : {kHalf, kBf16}) {
      const bool h = f.mantBits == 10;
      const float got = h ? toFloat(half_t{uint16_t(b)}) : toFloat(bfloat16_t{uint16_t(b)});
      const double want = refDecode(uint16_t(b), f);
      if (std::isnan(want)) {
        ASSERT_TRUE(std::isnan(got)) << b;
        continue;
      }
      ASSERT_EQ(std::bit_cast<uint64_t>(double(got)), std::bit_cast<uint64_t>(want)) << b;
      ASSERT_EQ(h ? toHalf(got).bits : toBfloat16(got).bits, b);
      // The midpoint to the next value up (exact in float) rounds to the even neighbour.
      if ((b & 0x7fff) < (f.expMask() & 0x7fff)) {
        const double next = refDecode(uint16_t(b + 1), f);
        if (std::isnan(next)) continue;
        const float mid = float((want + next) / 2);
        const uint16_t even = (b & 1) ? uint16_t(b + 1) : uint16_t(b);
        ASSERT_EQ(h ? toHalf(mid).bits : toBfloat16(mid).bits, even) << b;
      }
    }
  }
}

TEST(HalfTest, SampledFloatsMatchReference) {
  for (uint64_t x = 0; x < (1ull << 32); x += 997) {
    const float f = std::bit_cast<float>(uint32_t(x));
    for (Fmt fmt : {kHalf, kBf16}) {
      const uint16_t got = fmt.mantBits == 10 ? toHalf(f).bits : toBfloat16(f).bits;
      const uint16_t want = refEncode(double(f), fmt);
      if (refIsNan(want, fmt))
        ASSERT_TRUE(refIsNan(got, fmt)) << x;
      else
        ASSERT_EQ(got, want) << std::hex << x;
    }
  }
}

TEST(ReduceKernelsTest, Names) {
  EXPECT_EQ(dtypeSize(fcclInt8), 1u);
  EXPECT_EQ(dtypeSize(fcclFloat16), 2u);
  EXPECT_EQ(dtypeSize(fcclBfloat16), 2u);
  EXPECT_EQ(dtypeSize(fcclUint32), 4u);
  EXPECT_EQ(dtypeSize(fcclFloat64), 8u);
  EXPECT_EQ(dtypeSize(fcclNumTypes), 0u);
  EXPECT_STREQ(dtypeName(fcclHalf), "half");
  EXPECT_STREQ(dtypeName(fcclBfloat16), "bfloat16");
  EXPECT_STREQ(dtypeName(fcclUint64), "uint64");
  EXPECT_STREQ(dtypeName(fcclDataType_t(42)), "unknown");
  EXPECT_STREQ(redOpName(fcclSum), "sum");
  EXPECT_STREQ(redOpName(fcclAvg), "avg");
  EXPECT_STREQ(redOpName(fcclRedOp_t(fcclNumOps + 3)), "mulsum");
}

TEST(ReduceKernelsTest, EveryTypeOpArityCountPlacement) {
  std::mt19937_64 rng(12345);
  forEachType([&](fcclDataType_t type, auto tag) {
    using T = decltype(tag);
    for (fcclRedOp_t op : {fcclSum, fcclProd, fcclMax, fcclMin})
      for (int nsrcs : {1, 2, 3, 5, 8})
        for (size_t count : {0, 1, 7, 31, 1023, 65537})
          for (Place p :
               {Place::kOut, Place::kInFirst, Place::kInLast, Place::kElemOffset, Place::kByteOffset}) {
            checkReduce<T>(type, op, nsrcs, count, p, rng);
            if (::testing::Test::HasFatalFailure()) return;
          }
  });
}

TEST(ReduceKernelsTest, IntegerWraparound) {
  int8_t a[2] = {100, -128}, b[2] = {100, -1}, d[2];
  const void* s[2] = {a, b};
  reduceN(fcclInt8, fcclSum, d, s, 2, 2);
  EXPECT_EQ(d[0], -56);
  EXPECT_EQ(d[1], 127);
  reduceN(fcclInt8, fcclProd, d, s, 2, 2);
  EXPECT_EQ(d[0], 16);  // 10000 mod 256
  EXPECT_EQ(d[1], -128);
  int64_t x = INT64_MAX, y = 1, z;
  const void* s64[2] = {&x, &y};
  reduceN(fcclInt64, fcclSum, &z, s64, 2, 1);
  EXPECT_EQ(z, INT64_MIN);
  uint32_t u = 0xFFFFFFFFu, v = 0xFFFFFFFFu, w;
  const void* s32[2] = {&u, &v};
  reduceN(fcclUint32, fcclProd, &w, s32, 2, 1);
  EXPECT_EQ(w, 1u);
}

TEST(ReduceKernelsTest, FoldIsSequentialInTheType) {
  // 2048 + 1 + 1 in half: each step rounds (2049 -> 2048 ties to even), so the fold gives 2048
  // while float accumulation would give 2050. Ring and direct algorithms rely on this.
  const half_t a[1] = {toHalf(2048.0f)}, b[1] = {toHalf(1.0f)};
  const void* s[3] = {a, b, b};
  half_t d[1];
  reduceN(fcclHalf, fcclSum, d, s, 3, 1);
  EXPECT_EQ(d[0].bits, toHalf(2048.0f).bits);
  half_t r[1];
  reduceN(fcclHalf, fcclSum, r, s, 2, 1);
  const void* s2[2] = {r, b};
  reduceN(fcclHalf, fcclSum, r, s2, 2, 1);
  EXPECT_EQ(r[0].bits, d[0].bits);
}

TEST(ReduceKernelsTest, ScaleEveryType) {
  std::mt19937_64 rng(7);
  forEachType([&](fcclDataType_t type, auto tag) {
    using T = decltype(tag);
    for (size_t count : {0, 1, 31, 1023, 65537})
      for (size_t shift : {size_t(0), sizeof(T), size_t(1)})
        for (bool inPlace : {false, true}) {
          std::vector<T> in(count);
          for (size_t i = 0; i < count; ++i) in[i] = randomValue<T>(rng, i);
          const T scalar = randomValue<T>(rng, 1);
          std::vector<unsigned char> sb(count * sizeof(T) + 8), db(count * sizeof(T) + 8);
          unsigned char* src = sb.data() + shift;
          unsigned char* dst = inPlace ? src : db.data() + shift;
          if (count != 0) std::memcpy(src, in.data(), count * sizeof(T));  // null data() at 0
          scale(type, dst, src, &scalar, count);
          for (size_t i = 0; i < count; ++i) {
            T got;
            std::memcpy(&got, dst + i * sizeof(T), sizeof(T));
            ASSERT_TRUE(same(got, refOp(fcclProd, in[i], scalar))) << dtypeName(type) << " i=" << i;
          }
        }
  });
}

template <class T>
T refDivide(T v, int d) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>)
    return T(int64_t(v) / d);  // C truncation
  else if constexpr (std::is_integral_v<T>)
    return T(uint64_t(v) / uint64_t(d));
  else if constexpr (std::is_same_v<T, double>)
    return v / double(d);
  else if constexpr (std::is_same_v<T, float>)
    return v / float(d);
  else
    return narrow<T>(wide(v) / float(d));
}

TEST(ReduceKernelsTest, DivideEveryType) {
  std::mt19937_64 rng(9);
  forEachType([&](fcclDataType_t type, auto tag) {
    using T = decltype(tag);
    for (int d : {1, 2, 3, 7, 8, 300})
      for (size_t shift : {size_t(0), size_t(1)}) {
        const size_t count = 4099;
        std::vector<T> in(count);
        for (size_t i = 0; i < count; ++i) in[i] = randomValue<T>(rng, i);
        if constexpr (std::is_integral_v<T>) in[0] = std::numeric_limits<T>::min(), in[1] = T(-7);
        std::vector<unsigned char> buf(count * sizeof(T) + 8);
        unsigned char* p = buf.data() + shift;
        std::memcpy(p, in.data(), count * sizeof(T));
        divide(type, p, p, d, count);  // in place
        for (size_t i = 0; i < count; ++i) {
          T got;
          std::memcpy(&got, p + i * sizeof(T), sizeof(T));
          ASSERT_TRUE(same(got, refDivide(in[i], d))) << dtypeName(type) << " d=" << d << " i=" << i;
        }
      }
  });
  int32_t v[3] = {-7, 7, -1}, out[3];
  divide(fcclInt32, out, v, 2, 3);
  EXPECT_EQ(out[0], -3);  // toward zero, not -4
  EXPECT_EQ(out[1], 3);
  EXPECT_EQ(out[2], 0);
}

// Bandwidth of the kernels (not a test): --gtest_also_run_disabled_tests --gtest_filter=*Bench*
// GB/s counts the bytes moved: nsrcs reads + 1 write.
TEST(ReduceKernelsTest, DISABLED_Bench) {
  const size_t bytes = 64u << 20;
  for (fcclDataType_t type : {fcclFloat32, fcclFloat16, fcclBfloat16, fcclFloat64, fcclInt32})
    for (int nsrcs : {2, 4}) {
      const size_t count = bytes / dtypeSize(type);
      std::vector<std::vector<unsigned char>> bufs(nsrcs + 1, std::vector<unsigned char>(bytes, 0x11));
      std::vector<const void*> srcs;
      for (int k = 0; k < nsrcs; ++k) srcs.push_back(bufs[k].data());
      for (bool inPlace : {false, true}) {
        void* dst = inPlace ? bufs[0].data() : bufs[nsrcs].data();
        double best = 1e9;
        for (int it = 0; it < 5; ++it) {
          const auto t0 = std::chrono::steady_clock::now();
          reduceN(type, fcclSum, dst, srcs.data(), nsrcs, count);
          best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        std::printf("%-8s sum nsrcs=%d %-9s %7.2f GB/s (%.2f ms)\n", dtypeName(type), nsrcs,
                    inPlace ? "in-place" : "out", double(bytes) * (nsrcs + 1) / best / 1e9, best * 1e3);
      }
    }
}

}  // namespace
}  // namespace fccl
