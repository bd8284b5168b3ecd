// dtypes.cc - element types for the tests; see dtypes.h. The half conversion follows the
// bit layout (1 sign, 5 exponent, 10 mantissa) directly, so it shares no code with the
// library's kernels and catches a wrong rounding there.
#include "dtypes.h"

#include <cmath>
#include <cstdio>
#include <cstring>

namespace fccltest {

const fcclDataType_t kAllDtypes[kNumDtypes] = {fcclInt8,    fcclUint8,  fcclInt32,   fcclUint32,
                                               fcclInt64,   fcclUint64, fcclFloat16, fcclBfloat16,
                                               fcclFloat32, fcclFloat64};

static const DtypeInfo kInfo[kNumDtypes] = {
    {fcclInt8, "int8", 1, false, true},      {fcclUint8, "uint8", 1, false, false},
    {fcclInt32, "int32", 4, false, true},    {fcclUint32, "uint32", 4, false, false},
    {fcclInt64, "int64", 8, false, true},    {fcclUint64, "uint64", 8, false, false},
    {fcclFloat16, "float16", 2, true, true}, {fcclFloat32, "float32", 4, true, true},
    {fcclFloat64, "float64", 8, true, true}, {fcclBfloat16, "bfloat16", 2, true, true},
};

const DtypeInfo& dtypeInfo(fcclDataType_t dt) { return kInfo[(int)dt]; }  // enum order

const char* opName(fcclRedOp_t op) {
  switch (op) {
    case fcclSum:
      return "sum";
    case fcclProd:
      return "prod";
    case fcclMax:
      return "max";
    case fcclMin:
      return "min";
    case fcclAvg:
      return "avg";
    default:
      return "premulsum";
  }
}

uint16_t floatToHalf(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
  int exp = (int)(absx >> 23) - 127 + 15;  // biased half exponent
  uint32_t mant = absx & 0x7fffffu;
  if (exp >= 31) return (uint16_t)(sign | 0x7c00u);
  if (exp >= 1) {
    uint32_t h = ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry may reach infinity: right
    return (uint16_t)(sign | h);
  }
  // Subnormal half: units of 2^-24; value = m * 2^(exp-14) units with the implicit bit.
  int shift = 14 - exp;
  if (shift > 24) return (uint16_t)sign;
  uint32_t m = mant | 0x800000u;
  uint32_t h = m >> shift;
  uint32_t rem = m & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (h & 1u))) ++h;  // may carry into the smallest normal
  return (uint16_t)(sign | h);
}

float halfToFloat(uint16_t h) {
  int exp = (h >> 10) & 0x1f;
  int mant = h & 0x3ff;
  float v;
  if (exp == 0)
    v = std::ldexp((float)mant, -24);
  else if (exp == 31)
    v = mant ? NAN : INFINITY;
  else
    v = std::ldexp((float)(1024 + mant), exp - 25);
  return (h & 0x8000) ? -v : v;
}

uint16_t floatToBf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

float bf16ToFloat(uint16_t b) {
  uint32_t x = (uint32_t)b << 16;
  float f;
  memcpy(&f, &x, 4);
  return f;
}

uint64_t maskBits(fcclDataType_t dt, uint64_t v) {
  size_t bits = dtypeInfo(dt).size * 8;
  return bits >= 64 ? v : (v & ((1ull << bits) - 1));
}

uint64_t loadBits(fcclDataType_t dt, const void* base, size_t i) {
  size_t sz = dtypeInfo(dt).size;
  uint64_t v = 0;
  memcpy(&v, static_cast<const char*>(base) + i * sz, sz);  // little endian
  return v;
}

int64_t loadInt(fcclDataType_t dt, const void* base, size_t i) {
  uint64_t v = loadBits(dt, base, i);
  size_t bits = dtypeInfo(dt).size * 8;
  if (dtypeInfo(dt).isSigned && bits < 64 && (v >> (bits - 1)) & 1) v |= ~0ull << bits;
  return (int64_t)v;
}

double loadDouble(fcclDataType_t dt, const void* base, size_t i) {
  const char* p = static_cast<const char*>(base);
  switch (dt) {
    case fcclFloat16:
      return halfToFloat((uint16_t)loadBits(dt, base, i));
    case fcclBfloat16:
      return bf16ToFloat((uint16_t)loadBits(dt, base, i));
    case fcclFloat32: {
      float f;
      memcpy(&f, p + i * 4, 4);
      return f;
    }
    case fcclFloat64: {
      double d;
      memcpy(&d, p + i * 8, 8);
      return d;
    }
    default:
      return dtypeInfo(dt).isSigned ? (double)loadInt(dt, base, i) : (double)loadBits(dt, base, i);
  }
}

void storeInt(fcclDataType_t dt, void* base, size_t i, uint64_t v) {
  size_t sz = dtypeInfo(dt).size;
  memcpy(static_cast<char*>(base) + i * sz, &v, sz);  // low bytes: the wrap
}

void storeDouble(fcclDataType_t dt, void* base, size_t i, double v) {
  char* p = static_cast<char*>(base);
  switch (dt) {
    case fcclFloat16: {
      uint16_t h = floatToHalf((float)v);
      memcpy(p + i * 2, &h, 2);
      return;
    }
    case fcclBfloat16: {
      uint16_t b = floatToBf16((float)v);
      memcpy(p + i * 2, &b, 2);
      return;
    }
    case fcclFloat32: {
      float f = (float)v;
      memcpy(p + i * 4, &f, 4);
      return;
    }
    case fcclFloat64:
      memcpy(p + i * 8, &v, 8);
      return;
    default:
      storeInt(dt, base, i, (uint64_t)(int64_t)v);
      return;
  }
}

std::string showElement(fcclDataType_t dt, const void* base, size_t i) {
  char buf[96];
  const DtypeInfo& info = dtypeInfo(dt);
  if (info.isFloat) {
    snprintf(buf, sizeof(buf), "%.17g (bits 0x%llx)", loadDouble(dt, base, i),
             (unsigned long long)loadBits(dt, base, i));
  } else if (info.isSigned) {
    snprintf(buf, sizeof(buf), "%lld", (long long)loadInt(dt, base, i));
  } else {
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)loadBits(dt, base, i));
  }
  return buf;
}

}  // namespace fccltest
