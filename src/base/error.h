// error.h - the sentence behind fcclGetLastError. setError records it for the calling
// thread (and logs it at WARN) and returns the code, so call sites read
//   return setError(fcclInvalidArgument, "fcclAllReduce: recvbuff is NULL");
#pragma once
#include <cerrno>
#include <cstring>
#include "fccl.h"

namespace fccl {

fcclResult_t setError(fcclResult_t code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// Same, without the WARN line (for expected conditions the caller reports itself).
fcclResult_t setErrorQuiet(fcclResult_t code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
const char* lastError();
void clearLastError();

}  // namespace fccl
