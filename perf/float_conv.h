// float_conv.h - float16 / bfloat16 <-> float conversions for the perf tools' reference values.
// Written here, independently of the library, so expected results never come from fccl itself.
// float -> 16-bit rounds to nearest, ties to even; NaN stays NaN (quiet); overflow gives inf.
#ifndef FCCL_PERF_FLOAT_CONV_H_
#define FCCL_PERF_FLOAT_CONV_H_

#include <cstdint>
#include <cstring>

namespace fccl::perf {

inline uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
inline uint16_t floatToHalf(float f) {
  uint32_t x = floatBits(f);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) {  // inf or NaN
    return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x0200u | ((absx >> 13) & 0x3ffu) : 0u));
  }
  if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (absx < 0x38800000u) {                                    // below 2^-14: subnormal half or 0
    if (absx < 0x33000000u) return sign;                       // below 2^-25: rounds to 0
    // value = mant * 2^(e-150) with the implicit bit; the result counts units of 2^-24.
    uint32_t e = absx >> 23;
    uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 150 - 24 - e: how far to move the binary point
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
  }
  // Normal: rebias exponent (127 -> 15), keep 10 mantissa bits, round on the 13 dropped bits.
  uint32_t q = (absx - 0x38000000u) >> 13;
  uint32_t rem = absx & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++;  // a carry into the exponent is right
  return (uint16_t)(sign | q);
}

inline float halfToFloat(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu;
  uint32_t m = h & 0x3ffu;
  if (e == 0x1f) return bitsFloat(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    if (m == 0) return bitsFloat(sign);
    // Subnormal: m * 2^-24, exact in float.
    float v = (float)m * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return bitsFloat(sign | ((e + 112u) << 23) | (m << 13));
}

// bfloat16: the top 16 bits of a float, rounded to nearest even.
inline uint16_t floatToBf16(float f) {
  uint32_t x = floatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);  // quiet NaN
  uint32_t lsb = (x >> 16) & 1u;
  x += 0x7fffu + lsb;
  return (uint16_t)(x >> 16);
}

inline float bf16ToFloat(uint16_t b) { return bitsFloat((uint32_t)b << 16); }

}  // namespace fccl::perf

#endif  // FCCL_PERF_FLOAT_CONV_H_
