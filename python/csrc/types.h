// types.h - torch tensors and ReduceOps as fccl sees them: the fccl datatype of a dtype, the
// buffer a collective moves, argument checks with messages naming the call, and how each
// (dtype, ReduceOp) pair is reduced: natively by fccl (bool as uint8 max/min, complex as pairs
// of reals for sums, PREMUL_SUM through fcclRedOpCreatePreMulSum), or - for what fccl has no
// kernel for (int16, bitwise ops, complex products) - by gathering every rank's tensor and
// reducing in rank order with torch, so every rank computes the same bits.
#pragma once

#include <ATen/ATen.h>
#include <fccl.h>
#include <torch/csrc/distributed/c10d/Types.hpp>

#include <optional>
#include <string>

namespace fccl_torch {

// fccl's datatype for dtype, or nullopt. bool maps to uint8 (bytes of 0/1).
std::optional<fcclDataType_t> fcclTypeOf(at::ScalarType dtype);

// A buffer as a collective moves it: fccl's own type when it has one (so a mismatch between
// ranks is reported with the type), else bytes.
struct Buf {
  void* ptr;
  size_t count;
  fcclDataType_t type;
};
Buf moveBuf(const at::Tensor& t);

// CPU, strided, dense and non-overlapping in its suggested memory format (reductions and
// broadcasts work on storage order, the same on every rank). Throws naming api.
void checkTensor(const at::Tensor& t, const char* api);
// checkTensor plus C-contiguous: where the position of each element matters (gathers, splits).
void checkContiguous(const at::Tensor& t, const char* api);
void checkSameKind(const at::Tensor& a, const at::Tensor& b, const char* api);
bool overlaps(const at::Tensor& a, const at::Tensor& b);

std::string opName(const c10d::ReduceOp& op);

// How a reduction of tensor t with op runs.
struct Reduction {
  bool native = false;  // false: gather every rank's tensor and reduceLocally
  at::Tensor view;      // what fccl reduces: t, or view_as_real(t) for complex
  fcclDataType_t type = fcclFloat32;
  fcclRedOp_t op = fcclSum;
  bool premul = false;  // op is fcclSum scaled by factor through a PreMulSum operator
  double factor = 1.0;
  at::Tensor factorTensor;  // PREMUL_SUM with a tensor factor: read when the call runs
};
// Throws (naming api) for a combination that has no meaning (MIN on complex, BAND on float).
Reduction resolveReduction(const at::Tensor& t, const c10d::ReduceOp& op, const char* api);

// The PREMUL_SUM factor of r as of now (its tensor's value if it has one).
double premulFactor(const Reduction& r);

// stacked: [nranks, ...] of every rank's tensor; returns the reduction over dim 0 in rank order
// with t's dtype (AVG of integers truncates, as fccl's integer average does).
at::Tensor reduceLocally(const at::Tensor& stacked, const c10d::ReduceOp& op, const Reduction& r);

}  // namespace fccl_torch
