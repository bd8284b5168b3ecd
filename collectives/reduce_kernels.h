// reduce_kernels.h - elementwise reduction kernels on host buffers for every fccl dtype x op;
// every collective's arithmetic goes through here. Results are deterministic: a fold of n
// sources equals the left-to-right pairwise fold, each step rounded to the type.
#pragma once

#include <cstddef>

#include "fccl.h"
#include "src/base/dtype.h"

namespace fccl {

// dst[i] = srcs[0][i] op srcs[1][i] op ... op srcs[nsrcs-1][i] for i < count, folded left to
// right. op: fcclSum, fcclProd, fcclMax, fcclMin (fcclAvg and PreMulSum ops reduce as sum; their
// scaling is divide()/scale()). nsrcs >= 1 (1 = copy). dst may equal any srcs[k] exactly but must
// not partially overlap one. Any alignment (element-misaligned pointers take a staged path).
// half/bfloat16: each pairwise step is computed in float and rounded back to the type.
// Integers wrap. Float max/min propagate NaN (either operand NaN -> NaN).
// Unknown types: nothing is written (arguments are validated at the API edge).
void reduceN(fcclDataType_t type, fcclRedOp_t op, void* dst, const void* const* srcs, int nsrcs,
             size_t count);

// dst[i] = src[i] * *scalar, scalar a value of `type` (fcclRedOpCreatePreMulSum). dst == src ok.
void scale(fcclDataType_t type, void* dst, const void* src, const void* scalar, size_t count);

// dst[i] = src[i] / divisor (fcclAvg: sum, then divide by nranks). divisor >= 1. Integers
// truncate toward zero like C; half/bfloat16 divide in float and round once. dst == src ok.
void divide(fcclDataType_t type, void* dst, const void* src, int divisor, size_t count);

}  // namespace fccl
