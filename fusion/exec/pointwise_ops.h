// pointwise_ops.h - the tile VM's instruction set (internal to fusion/exec): one tight loop per
// lowered op (fusion/lowered/pointwise_form.h, which defines what each computes) x compute type x
// operand form, picked once at compile time and called once per tile.
// Invariants: a kernel writes out[0, n) from operands a, b, c (vectors of n values or uniform
// single values, as its form says); out never partially overlaps an operand (it may equal one,
// element i is read before it is written); no kernel allocates, locks or keeps state.
#pragma once

#include <cstdint>

#include "fusion/ir/ir.h"
#include "fusion/lowered/pointwise_form.h"

namespace fccl::fusion::pw {

// Elements per tile: 512 values of at most 8 bytes = 4 KiB per register, so a typical
// statement's live registers (3-6) plus the streamed operands stay in a 32 KiB L1.
constexpr int kTile = 512;
constexpr int kSlotBytes = kTile * 8 + 320;  // + 5 lines: registers not 4 KiB apart (4K aliasing)

// Compute types are the lowered form's.
using lowered::computeType;
using lowered::CT;
using lowered::ctBytes;
using lowered::ctDType;
using lowered::storedAsComputed;

// out[0, n) = op(a, b, c); `first` is the logical index of element 0 (Dropout's counter).
using Kernel = void (*)(void* out, const void* a, const void* b, const void* c, int n, int64_t first);

enum class Form : uint8_t {
  VV,
  VU,
  UV
};  // binary operands: vector (n values) or uniform (1)

// Every picker returns nullptr when the op does not exist for that type.
Kernel unaryKernel(lowered::VOp op, CT t);           // Neg Not Sqrt Rsqrt Exp Log Abs IsFinite
Kernel binaryKernel(lowered::VOp op, CT t, Form f);  // arithmetic, Pow (same-type exponent),
                                                     // Min Max, comparisons (-> B8), And Or
Kernel selectKernel(CT t);                           // (cond: B8 vector, a, b: vectors)
Kernel dropoutKernel(CT t);                          // (x: vector, p: uniform double, seed: uniform i64)
Kernel castKernel(CT from, ir::DType to);            // compute(from) -> compute(to), rounded to `to`
Kernel loadKernel(ir::DType stored);                 // storage of `stored` -> its compute type
Kernel storeKernel(CT from, ir::DType stored, bool uniformSource);  // -> storage, rounded
// A superinstruction: outer(inner(a, b), c) (innerLeft) or outer(c, inner(a, b)), for float
// and double +, -, *, / (the bulk of optimizer updates); `innerForm` says which of a, b is
// uniform, `otherUniform` whether c is. Same rounding as the two kernels run one after the other.
Kernel fusedKernel(lowered::VOp inner, lowered::VOp outer, CT t, Form innerForm, bool innerLeft,
                   bool otherUniform);
Kernel copyKernel(CT t);  // out[i] = a[i]
Kernel fillKernel(CT t);  // out[i] = *a

// A double (a scalar binding or literal) as a value of dtype t in its compute type, rounded
// to t (f16: to the nearest half, then widened), written to out (ctBytes(computeType(t))).
void scalarToCompute(double v, ir::DType t, void* out);
// The inverse for scalar results: the compute-type value at `in` as a double.
double computeToDouble(const void* in, CT t);

}  // namespace fccl::fusion::pw
