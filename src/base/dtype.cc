// dtype.cc - see dtype.h.
#include "src/base/dtype.h"

namespace fccl {

size_t dtypeSize(fcclDataType_t t) {
  static const size_t kSizes[fcclNumTypes] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
  return (t >= 0 && t < fcclNumTypes) ? kSizes[t] : 0;
}

const char* dtypeName(fcclDataType_t t) {
  static const char* const kNames[fcclNumTypes] = {"int8",   "uint8", "int32", "uint32", "int64",
                                                   "uint64", "half",  "float", "double", "bfloat16"};
  return (t >= 0 && t < fcclNumTypes) ? kNames[t] : "unknown";
}

const char* redOpName(fcclRedOp_t op) {
  static const char* const kNames[fcclNumOps] = {"sum", "prod", "max", "min", "avg"};
  if (op >= 0 && op < fcclNumOps) return kNames[op];
  return (op >= fcclNumOps && op < fcclMaxRedOp) ? "mulsum" : "unknown";
}

}  // namespace fccl
