// argcheck.h - validation at the API edge: everything is checked before any buffer is
// touched, and a failure names the call, the argument and the rank.
#pragma once
#include "collectives/coll.h"
#include "src/comm.h"

namespace fccl {

// Checks comm (non-NULL, usable), stream, datatype, op, root/peer, count overflow and
// buffers for `t`, and fills in the derived fields (base op, avg divisor, premul scalar).
fcclResult_t checkTask(const char* api, fcclComm* comm, fcclStream_t stream, CollTask* t);
fcclResult_t checkComm(const char* api, const fcclComm* comm);

}  // namespace fccl
