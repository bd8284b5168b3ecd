// argcheck.h - validation at the API edge: everything is checked before any buffer is
// touched, and a failure names the call, the argument and the rank. Collectives' tasks here;
// a fused program's bindings too (checkProgramArgs), against its lowered program.
#pragma once
#include <cstdint>
#include <vector>
#include "collectives/coll.h"
#include "fusion/ir/ir.h"
#include "src/comm.h"

namespace fccl::fusion {
struct Bindings;  // fusion/exec/pointwise.h
}

namespace fccl {

// Checks comm (non-NULL, usable), stream, datatype, op, root/peer, count overflow and
// buffers for `t`, and fills in the derived fields (base op, avg divisor, premul scalar).
fcclResult_t checkTask(const char* api, fcclComm* comm, fcclStream_t stream, CollTask* t);
fcclResult_t checkComm(const char* api, const fcclComm* comm);

// A fcclProgramLaunch's bindings against program p on comm: every declared tensor and scalar
// input bound exactly once by name, integer scalars given integers, shape symbols consistent
// with the bound counts, no NULL tensor with elements to hold. Fills *b (tensors as {data,
// base}: base is the slice begin of a sliced tensor, else 0; scalar inputs; rank and nranks)
// and *counts ([var] -> logical element count, 1 for scalars). Temporaries are left unbound.
fcclResult_t checkProgramArgs(const char* api, const fcclComm* comm, const ir::Program& p,
                              const fcclTensorBinding_t* tensors, int ntensors,
                              const fcclScalarBinding_t* scalars, int nscalars, fusion::Bindings* b,
                              std::vector<int64_t>* counts);
// Scalars the caller binds: `scalar` inputs and `inout` scalars (state such as a loss scale).
inline bool isProgramScalarInput(const ir::Var& v) {
  return v.kind == ir::VarKind::Scalar || (v.kind == ir::VarKind::InOut && v.isScalar());
}

}  // namespace fccl
