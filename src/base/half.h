// half.h - 16-bit float storage types (IEEE binary16 and bfloat16) and their conversions.
// Invariants: conversions to the 16-bit types round to nearest even, overflow gives inf and NaN
// stays a quiet NaN (payload's top bits kept, as F16C's vcvtps2ph does); widening is exact.
// Written branch-free with integer ops and selects so GCC vectorizes loops that call them.
#pragma once

#include <bit>
#include <cstdint>

namespace fccl {

namespace detail {
// c ? a : b as mask arithmetic. With plain ?: GCC sinks the float ops into the branches and,
// since float ops may trap (-ftrapping-math), then cannot if-convert and vectorize the loop.
constexpr uint32_t select(bool c, uint32_t a, uint32_t b) {
  const uint32_t m = 0u - uint32_t(c);
  return (a & m) | (b & ~m);
}
}  // namespace detail

struct half_t {
  uint16_t bits;
};
struct bfloat16_t {
  uint16_t bits;
};

constexpr float toFloat(half_t h) {
  // Move exponent+mantissa into float position and rebias; the special cases are selects.
  const uint32_t sign = uint32_t(h.bits & 0x8000u) << 16;
  const uint32_t em = uint32_t(h.bits & 0x7fffu) << 13;
  const uint32_t exp = em & 0x0f800000u;  // the half exponent field, shifted
  const uint32_t normal = em + ((127u - 15u) << 23);
  const uint32_t infnan = em + ((255u - 31u) << 23);
  // Subnormal: let the FPU normalize. 2^-14 * 0.m == (2^-14 * 1.m) - 2^-14, computed exactly.
  const float sub = std::bit_cast<float>(normal + (1u << 23)) - std::bit_cast<float>(113u << 23);
  const uint32_t mag = detail::select(exp == 0x0f800000u, infnan,
                                      detail::select(exp == 0, std::bit_cast<uint32_t>(sub), normal));
  return std::bit_cast<float>(mag | sign);
}

constexpr half_t toHalf(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t a = x & 0x7fffffffu;
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  // NaN: quiet it, keep the top payload bits. |f| >= 65536 (and inf): inf.
  const uint32_t nan = 0x7e00u | ((a >> 13) & 0x3ffu);
  // Below 2^-14 the result is subnormal: adding 0.5 (exponent 126) aligns the value so the
  // FPU's own round-to-nearest-even drops exactly the bits a half cannot hold.
  const float magic = std::bit_cast<float>(126u << 23);
  const uint32_t sub = std::bit_cast<uint32_t>(std::bit_cast<float>(a) + magic) - (126u << 23);
  // Normal: rebias, then add 0x0fff plus the lowest kept bit (ties to even); a carry out of
  // the mantissa bumps the exponent, up to inf for 65520 <= |f| < 65536.
  const uint32_t nrm = (a - ((127u - 15u) << 23) + 0x0fffu + ((a >> 13) & 1u)) >> 13;
  const uint32_t mag =
      detail::select(a > 0x7f800000u, nan,
                     detail::select(a >= (143u << 23), 0x7c00u, detail::select(a < (113u << 23), sub, nrm)));
  return half_t{uint16_t(mag | sign)};
}

constexpr float toFloat(bfloat16_t b) { return std::bit_cast<float>(uint32_t(b.bits) << 16); }

constexpr bfloat16_t toBfloat16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;  // ties to even; may reach inf
  const uint32_t nan = (x >> 16) | 0x40u;                           // quiet, sign and payload kept
  return bfloat16_t{uint16_t((x & 0x7fffffffu) > 0x7f800000u ? nan : rounded)};
}

}  // namespace fccl
