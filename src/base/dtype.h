// dtype.h - the tables of fccl's element types and reduction operators (fccl.h's enums): size
// and the names nccl-tests and the logs print. Every layer uses them.
#pragma once

#include <cstddef>

#include "fccl.h"

namespace fccl {

size_t dtypeSize(fcclDataType_t t);       // 0 for an unknown type
const char* dtypeName(fcclDataType_t t);  // nccl-tests names ("float", "bfloat16", ...); "unknown"
const char* redOpName(fcclRedOp_t op);    // "sum","prod","max","min","avg"; "mulsum" for ops
                                          // from fcclRedOpCreatePreMulSum; else "unknown"

}  // namespace fccl
