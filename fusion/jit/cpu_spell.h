// cpu_spell.h - how the JIT's generated C++ spells types and conversions (internal to
// fusion/jit): C++ type names per compute type and storage type, and the lowered form's
// rounding conversions (a Cast, a Load, a Store: fusion/exec/pointwise_scalar.h's toStorage /
// fromStorage in the VM) as expressions over the prelude's helpers (cpu_prelude.cc).
#pragma once

#include <string>

#include "fusion/ir/ir.h"
#include "fusion/lowered/pointwise_form.h"

namespace fccl::fusion::jit {

const char* cppType(lowered::CT t);                 // "float", "i32", "u8", ...
const char* storageName(ir::DType t);               // element storage type: f16/bf16 -> "u16", bool -> "u8"
std::string name(const char* prefix, long long i);  // prefix + decimal i
std::string literal(double x);  // an exact C++ expression for x (hex float, inf/NaN builtins)
// Value x of compute type `from` as storage of `to`, rounded; and storage -> compute type.
std::string toStorage(lowered::CT from, ir::DType to, const std::string& x);
std::string fromStorage(ir::DType t, const std::string& s);

}  // namespace fccl::fusion::jit
