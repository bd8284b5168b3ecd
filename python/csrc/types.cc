// types.cc - dtype and ReduceOp mapping, argument checks, the gather-and-reduce fallback
// (types.h).
#include "types.h"

#include <c10/util/Exception.h>

namespace fccl_torch {

std::optional<fcclDataType_t> fcclTypeOf(at::ScalarType dtype) {
  switch (dtype) {
    case at::kChar:
      return fcclInt8;
    case at::kByte:
    case at::kBool:
      return fcclUint8;
    case at::kInt:
      return fcclInt32;
    case at::kUInt32:
      return fcclUint32;
    case at::kLong:
      return fcclInt64;
    case at::kUInt64:
      return fcclUint64;
    case at::kHalf:
      return fcclFloat16;
    case at::kFloat:
      return fcclFloat32;
    case at::kDouble:
      return fcclFloat64;
    case at::kBFloat16:
      return fcclBfloat16;
    default:
      return std::nullopt;
  }
}

Buf moveBuf(const at::Tensor& t) {
  if (auto type = fcclTypeOf(t.scalar_type())) return {t.data_ptr(), static_cast<size_t>(t.numel()), *type};
  return {t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size(), fcclUint8};
}

void checkTensor(const at::Tensor& t, const char* api) {
  TORCH_CHECK(t.defined(), "fccl ", api, ": undefined tensor");
  TORCH_CHECK(t.device().is_cpu(), "fccl ", api, ": tensor on ", t.device(),
              ": this build of fccl runs CPU tensors (device tensors need fccl's CUDA backend)");
  TORCH_CHECK(t.layout() == at::kStrided, "fccl ", api, ": only dense (strided) tensors are supported, got ",
              t.layout());
  TORCH_CHECK(t.is_non_overlapping_and_dense() && t.is_contiguous(t.suggest_memory_format()), "fccl ", api,
              ": tensors must be contiguous");
}

void checkContiguous(const at::Tensor& t, const char* api) {
  checkTensor(t, api);
  TORCH_CHECK(t.is_contiguous(), "fccl ", api, ": tensors must be contiguous");
}

void checkSameKind(const at::Tensor& a, const at::Tensor& b, const char* api) {
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), "fccl ", api, ": tensors of different dtypes (",
                   a.scalar_type(), " and ", b.scalar_type(), ")");
}

bool overlaps(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0) return false;
  auto pa = static_cast<const char*>(a.data_ptr()), pb = static_cast<const char*>(b.data_ptr());
  return pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

std::string opName(const c10d::ReduceOp& op) {
  switch (op.op_) {
    case c10d::ReduceOp::SUM:
      return "SUM";
    case c10d::ReduceOp::AVG:
      return "AVG";
    case c10d::ReduceOp::PRODUCT:
      return "PRODUCT";
    case c10d::ReduceOp::MIN:
      return "MIN";
    case c10d::ReduceOp::MAX:
      return "MAX";
    case c10d::ReduceOp::BAND:
      return "BAND";
    case c10d::ReduceOp::BOR:
      return "BOR";
    case c10d::ReduceOp::BXOR:
      return "BXOR";
    case c10d::ReduceOp::PREMUL_SUM:
      return "PREMUL_SUM";
    default:
      return "ReduceOp(" + std::to_string(static_cast<int>(op.op_)) + ")";
  }
}

namespace {

// PREMUL_SUM's factor: a double or a one-element tensor (c10d's PreMulSumSupplement).
void readPremul(const c10d::ReduceOp& op, Reduction* r, const char* api) {
  auto* s = dynamic_cast<c10d::PreMulSumSupplement*>(op.supplement_.get());
  TORCH_CHECK(s != nullptr, "fccl ", api, ": PREMUL_SUM without its factor (make it with ",
              "torch.distributed._make_nccl_premul_sum)");
  r->premul = true;
  if (s->tensor_factor.defined()) {
    TORCH_CHECK(s->tensor_factor.numel() == 1, "fccl ", api, ": PREMUL_SUM factor must have one element");
    TORCH_CHECK(s->tensor_factor.device().is_cpu(), "fccl ", api, ": PREMUL_SUM factor on ",
                s->tensor_factor.device(), ": this build of fccl runs CPU tensors");
    TORCH_CHECK(!s->tensor_factor.is_complex(), "fccl ", api,
                ": complex PREMUL_SUM factors are not supported");
    r->factorTensor = s->tensor_factor;
  } else {
    r->factor = s->double_factor;
  }
}

}  // namespace

double premulFactor(const Reduction& r) {
  return r.factorTensor.defined() ? r.factorTensor.item<double>() : r.factor;
}

Reduction resolveReduction(const at::Tensor& t, const c10d::ReduceOp& op, const char* api) {
  using R = c10d::ReduceOp;
  Reduction r;
  r.view = t;
  const at::ScalarType dtype = t.scalar_type();
  const bool isBool = dtype == at::kBool, isComplex = at::isComplexType(dtype);
  const bool isFloat = at::isFloatingType(dtype),
             isBitwise = op.op_ == R::BAND || op.op_ == R::BOR || op.op_ == R::BXOR;
  TORCH_CHECK_VALUE(op.op_ <= R::PREMUL_SUM, "fccl ", api, ": unknown ", opName(op));
  TORCH_CHECK_TYPE(!(isBitwise && (isFloat || isComplex)), "fccl ", api, ": ReduceOp.", opName(op),
                   " needs an integer or bool tensor, got ", dtype);
  TORCH_CHECK_TYPE(!(isComplex && (op.op_ == R::MIN || op.op_ == R::MAX)), "fccl ", api, ": ReduceOp.",
                   opName(op), " is not defined for complex tensors (", dtype, ")");
  TORCH_CHECK_TYPE(!(isBool && (op.op_ == R::AVG || op.op_ == R::PREMUL_SUM)), "fccl ", api, ": ReduceOp.",
                   opName(op), " is not defined for bool tensors");
  if (op.op_ == R::PREMUL_SUM) {
    readPremul(op, &r, api);
    TORCH_CHECK_TYPE(isFloat || isComplex, "fccl ", api, ": PREMUL_SUM needs a floating point tensor, got ",
                     dtype);
  }

  if (isBool) {
    // bool as bytes of 0/1: "any" is max, "all" is min; XOR needs the fallback.
    r.type = fcclUint8;
    if (op.op_ == R::SUM || op.op_ == R::MAX || op.op_ == R::BOR) {
      r.native = true;
      r.op = fcclMax;
    } else if (op.op_ == R::PRODUCT || op.op_ == R::MIN || op.op_ == R::BAND) {
      r.native = true;
      r.op = fcclMin;
    }
    return r;
  }
  if (isComplex) {
    // Sums of complex numbers are sums of their real and imaginary parts.
    if (op.op_ == R::SUM || op.op_ == R::AVG || op.op_ == R::PREMUL_SUM) {
      r.view = at::view_as_real(t);
      auto type = fcclTypeOf(r.view.scalar_type());
      if (type) {
        r.native = true;
        r.type = *type;
        r.op = op.op_ == R::AVG ? fcclAvg : fcclSum;
      }
    }
    return r;
  }
  auto type = fcclTypeOf(dtype);
  if (!type || isBitwise) return r;  // int16 and the like, bitwise ops: the fallback
  r.native = true;
  r.type = *type;
  switch (op.op_) {
    case R::SUM:
    case R::PREMUL_SUM:
      r.op = fcclSum;
      break;
    case R::AVG:
      r.op = fcclAvg;
      break;
    case R::PRODUCT:
      r.op = fcclProd;
      break;
    case R::MIN:
      r.op = fcclMin;
      break;
    case R::MAX:
      r.op = fcclMax;
      break;
    default:
      r.native = false;
  }
  return r;
}

at::Tensor reduceLocally(const at::Tensor& stacked, const c10d::ReduceOp& op, const Reduction& r) {
  using R = c10d::ReduceOp;
  const int64_t n = stacked.size(0);
  const bool premul = op.op_ == R::PREMUL_SUM;
  const double factor = premul ? premulFactor(r) : 1.0;
  at::Tensor acc = premul ? stacked[0] * factor : stacked[0].clone();
  for (int64_t i = 1; i < n; ++i) {
    const at::Tensor x = stacked[i];
    switch (op.op_) {
      case R::SUM:
      case R::AVG:
        acc.add_(x);
        break;
      case R::PREMUL_SUM:
        acc.add_(x * factor);
        break;
      case R::PRODUCT:
        acc.mul_(x);
        break;
      case R::MIN:
        acc = at::minimum(acc, x);
        break;
      case R::MAX:
        acc = at::maximum(acc, x);
        break;
      case R::BAND:
        acc.bitwise_and_(x);
        break;
      case R::BOR:
        acc.bitwise_or_(x);
        break;
      case R::BXOR:
        acc.bitwise_xor_(x);
        break;
      default:
        TORCH_CHECK(false, "fccl: unknown ", opName(op));
    }
  }
  if (op.op_ == R::AVG) {
    if (at::isIntegralType(acc.scalar_type(), /*includeBool=*/false)) {
      acc = acc.div(n, "trunc");
    } else {
      acc.div_(n);
    }
  }
  return acc;
}

}  // namespace fccl_torch
