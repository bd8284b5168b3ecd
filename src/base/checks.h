// checks.h - result-code propagation. Every internal call that can fail returns fcclResult_t;
// FCCL_CHECK returns it upward and logs file:line at INFO so a failure leaves a trail.
#pragma once
#include "fccl.h"
#include "src/base/debug.h"

#define FCCL_CHECK(call)                                                        \
  do {                                                                          \
    fcclResult_t res_ = (call);                                                 \
    if (res_ != fcclSuccess && res_ != fcclInProgress) {                        \
      FCCL_INFO(::fccl::kLogAll, "%s:%d -> %d", __FILE__, __LINE__, (int)res_); \
      return res_;                                                              \
    }                                                                           \
  } while (0)

#define FCCL_CHECK_GOTO(call, res, label)                                        \
  do {                                                                           \
    (res) = (call);                                                              \
    if ((res) != fcclSuccess && (res) != fcclInProgress) {                       \
      FCCL_INFO(::fccl::kLogAll, "%s:%d -> %d", __FILE__, __LINE__, (int)(res)); \
      goto label;                                                                \
    }                                                                            \
  } while (0)

// For POSIX calls returning -1/errno: turns failure into fcclSystemError with a sentence.
#define FCCL_SYSCHECK(call, what)                                                                         \
  do {                                                                                                    \
    if ((call) == -1) return ::fccl::setError(fcclSystemError, "%s failed: %s", (what), strerror(errno)); \
  } while (0)
