// error.h - the sentence behind fcclGetLastError. setError records it for the calling
// thread (and logs it at WARN) and returns the code, so call sites read
//   return setError(fcclInvalidArgument, "fcclAllReduce: recvbuff is NULL");
#pragma once
#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include "fccl.h"

namespace fccl {

fcclResult_t setError(fcclResult_t code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// Same, without the WARN line (for expected conditions the caller reports itself).
fcclResult_t setErrorQuiet(fcclResult_t code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
const char* lastError();
void clearLastError();

// The one guard of an exported call: f's result, and no C++ exception across the C API
// (std::bad_alloc becomes fcclSystemError, anything else fcclInternalError, both named).
template <class F>
fcclResult_t apiGuard(const char* api, F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return setError(fcclSystemError, "%s: out of memory", api);
  } catch (const std::exception& e) {
    return setError(fcclInternalError, "%s: unexpected internal exception: %s", api, e.what());
  } catch (...) {
    return setError(fcclInternalError, "%s: unexpected internal exception", api);
  }
}

}  // namespace fccl
