// dtypes.h - the test suite's own view of fccl's element types, independent of the library:
// sizes, names, float16/bfloat16 conversions (round to nearest even, written here from the
// IEEE 754 / bfloat16 definitions) and element load/store through raw memory (any alignment).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "fccl.h"

namespace fccltest {

struct DtypeInfo {
  fcclDataType_t dt;
  const char* name;
  size_t size;
  bool isFloat;
  bool isSigned;
};

constexpr int kNumDtypes = 10;
extern const fcclDataType_t kAllDtypes[kNumDtypes];
const DtypeInfo& dtypeInfo(fcclDataType_t dt);
const char* opName(fcclRedOp_t op);

// Half and bfloat16, round to nearest even; NaN stays NaN, overflow gives infinity.
uint16_t floatToHalf(float f);
float halfToFloat(uint16_t h);
uint16_t floatToBf16(float f);
float bf16ToFloat(uint16_t b);

// Element i of a buffer of type dt. Integers: the two's complement bits, zero-extended into
// 64 bits (loadBits) or sign-extended for signed types (loadInt). Floats: exact as double.
uint64_t loadBits(fcclDataType_t dt, const void* base, size_t i);
int64_t loadInt(fcclDataType_t dt, const void* base, size_t i);
double loadDouble(fcclDataType_t dt, const void* base, size_t i);
// Integers: truncated to the type's width (wraps). Floats: rounded to nearest even (float16
// and bfloat16 round through float; exact for every value the tests store).
void storeInt(fcclDataType_t dt, void* base, size_t i, uint64_t v);
void storeDouble(fcclDataType_t dt, void* base, size_t i, double v);
// Keeps the low bits of v that fit the type (the integer wrap).
uint64_t maskBits(fcclDataType_t dt, uint64_t v);
// Human-readable value of element i (for failure messages).
std::string showElement(fcclDataType_t dt, const void* base, size_t i);

}  // namespace fccltest
