// fccl_types.h - the IR's element types and reduction operators as the C API's (fccl.h), for the
// runtime's collectives and the device program's ring kernels alike.
#pragma once
#include "fccl.h"
#include "fusion/ir/ir.h"

namespace fccl::ir {

// bool travels as fcclUint8 (no collective reduces it: the checker refuses that).
inline fcclDataType_t toFcclType(DType t) {
  switch (t) {
    case DType::F64:
      return fcclFloat64;
    case DType::F32:
      return fcclFloat32;
    case DType::F16:
      return fcclFloat16;
    case DType::BF16:
      return fcclBfloat16;
    case DType::I32:
      return fcclInt32;
    case DType::I64:
      return fcclInt64;
    default:
      return fcclUint8;
  }
}

inline fcclRedOp_t toFcclOp(RedOp op) {
  switch (op) {
    case RedOp::Sum:
      return fcclSum;
    case RedOp::Prod:
      return fcclProd;
    case RedOp::Min:
      return fcclMin;
    case RedOp::Max:
      return fcclMax;
    case RedOp::Avg:
      return fcclAvg;
  }
  return fcclSum;
}

}  // namespace fccl::ir
