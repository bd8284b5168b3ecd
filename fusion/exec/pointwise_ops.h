// pointwise_ops.h - the tile VM's instruction set (internal to fusion/exec): one tight loop per
// op x compute type x operand form, picked once at compile time and called once per tile.
// Invariants: a kernel writes out[0, n) from operands a, b, c (vectors of n values or uniform
// single values, as its form says); out never partially overlaps an operand (it may equal one,
// element i is read before it is written); no kernel allocates, locks or keeps state.
#pragma once

#include <cstdint>

#include "fusion/ir/ir.h"

namespace fccl::fusion::pw {

// Elements per tile: 512 values of at most 8 bytes = 4 KiB per register, so a typical
// statement's live registers (3-6) plus the streamed operands stay in a 32 KiB L1.
constexpr int kTile = 512;
constexpr int kSlotBytes = kTile * 8 + 320;  // + 5 lines: registers not 4 KiB apart (4K aliasing)

// How a value is held while computing: f16/bf16 widen to float (F32), bool is a 0/1 byte.
enum class CT : uint8_t {
  F64,
  F32,
  I32,
  I64,
  B8
};
CT computeType(ir::DType t);  // Untyped -> F64 (callers reject Untyped first)
int ctBytes(CT t);
// The dtype whose compute form is `ct` with no extra rounding (f16/bf16 compute as F32).
inline ir::DType ctDType(CT ct) {
  switch (ct) {
    case CT::F64:
      return ir::DType::F64;
    case CT::F32:
      return ir::DType::F32;
    case CT::I32:
      return ir::DType::I32;
    case CT::I64:
      return ir::DType::I64;
    case CT::B8:
      return ir::DType::Bool;
  }
  return ir::DType::F64;
}
// f64, f32, i32, i64: stored exactly as computed (no widening on load, no rounding on store).
inline bool storedAsComputed(ir::DType t) {
  return t == ir::DType::F64 || t == ir::DType::F32 || t == ir::DType::I32 || t == ir::DType::I64;
}

// out[0, n) = op(a, b, c); `first` is the logical index of element 0 (Dropout's counter).
using Kernel = void (*)(void* out, const void* a, const void* b, const void* c, int n, int64_t first);

enum class Form : uint8_t {
  VV,
  VU,
  UV
};  // binary operands: vector (n values) or uniform (1)

// Every picker returns nullptr when the op does not exist for that type.
Kernel unaryKernel(ir::Op op, CT t);           // Neg Not Sqrt Rsqrt Exp Log Abs IsFinite
Kernel binaryKernel(ir::Op op, CT t, Form f);  // arithmetic, Pow (same-type exponent),
                                               // Min Max, comparisons (-> B8), And Or
Kernel selectKernel(CT t);                     // (cond: B8 vector, a, b: vectors)
Kernel dropoutKernel(CT t);                    // (x: vector, p: uniform double, seed: uniform i64)
Kernel castKernel(CT from, ir::DType to);      // compute(from) -> compute(to), rounded to `to`
Kernel loadKernel(ir::DType stored);           // storage of `stored` -> its compute type
Kernel storeKernel(CT from, ir::DType stored, bool uniformSource);  // -> storage, rounded
// A superinstruction: outer(inner(a, b), c) (innerLeft) or outer(c, inner(a, b)), for float
// and double +, -, *, / (the bulk of optimizer updates); `innerForm` says which of a, b is
// uniform, `otherUniform` whether c is. Same rounding as the two kernels run one after the other.
Kernel fusedKernel(ir::Op inner, ir::Op outer, CT t, Form innerForm, bool innerLeft, bool otherUniform);
Kernel copyKernel(CT t);  // out[i] = a[i]
Kernel fillKernel(CT t);  // out[i] = *a

// A double (a scalar binding or literal) as a value of dtype t in its compute type, rounded
// to t (f16: to the nearest half, then widened), written to out (ctBytes(computeType(t))).
void scalarToCompute(double v, ir::DType t, void* out);
// The inverse for scalar results: the compute-type value at `in` as a double.
double computeToDouble(const void* in, CT t);

}  // namespace fccl::fusion::pw
