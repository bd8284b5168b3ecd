// cpu_spell.h - how the JIT's generated C++ spells types and conversions (internal to
// fusion/jit): C++ type names per compute type and storage type, and the exact rounding
// conversions of fusion/exec/pointwise_ops.cc (toStorage/fromStorage) as expressions over the
// prelude's helpers (cpu_prelude.cc).
#pragma once

#include <string>

#include "fusion/exec/pointwise_ops.h"
#include "fusion/ir/ir.h"

namespace fccl::fusion::jit {

const char* ctName(pw::CT t);          // "float", "i32", "u8", ...
const char* storageName(ir::DType t);  // element storage type: f16/bf16 -> "u16", bool -> "u8"
inline bool isFloatCT(pw::CT t) { return t == pw::CT::F32 || t == pw::CT::F64; }
inline bool isIntCT(pw::CT t) { return t == pw::CT::I32 || t == pw::CT::I64; }
std::string name(const char* prefix, long long i);  // prefix + decimal i
std::string literal(double x);  // an exact C++ expression for x (hex float, inf/NaN builtins)
// Value x of compute type `from` as storage of `to`, rounded; and storage -> compute type.
std::string toStorage(pw::CT from, ir::DType to, const std::string& x);
std::string fromStorage(ir::DType t, const std::string& s);

}  // namespace fccl::fusion::jit
