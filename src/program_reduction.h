// program_reduction.h - a fused program's whole-tensor reductions (norm, sum, max, any
// non-finite) over a range of one rank's storage, in float64 as the reference computes them,
// with typed loops (several independent accumulators, so a pass runs at memory speed rather
// than at the add's latency; the sum's order, and so its last bits, differs from a strict
// left-to-right sum).
#pragma once
#include <cstdint>
#include "fusion/ir/ir.h"

namespace fccl {

// The partial of `op` (Norm: the sum of squares) over elements [begin, end) of `data`, whose
// element 0 is logical element `base`.
double reductionPartial(ir::Op op, ir::DType type, const void* data, int64_t base, int64_t begin,
                        int64_t end);
// How two partials combine (Norm and Sum add, MaxAll keeps the larger, AnyNonfinite ors).
double reductionCombine(ir::Op op, double a, double b);

}  // namespace fccl
