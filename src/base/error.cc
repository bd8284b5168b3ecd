// error.cc - per-thread last error sentence (fcclGetLastError). Thread-local, not global:
// each rank thread sees the error of its own last call.
#include "src/base/error.h"
#include <cstdarg>
#include <cstdio>
#include "src/base/debug.h"

namespace fccl {
namespace {
thread_local char tlsLastError[1024] = "";

void record(const char* fmt, va_list ap) { vsnprintf(tlsLastError, sizeof(tlsLastError), fmt, ap); }
}  // namespace

fcclResult_t setError(fcclResult_t code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  record(fmt, ap);
  va_end(ap);
  logMessage(LogLevel::Warn, kLogAll, __FILE__, __LINE__, "%s", tlsLastError);
  return code;
}

fcclResult_t setErrorQuiet(fcclResult_t code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  record(fmt, ap);
  va_end(ap);
  return code;
}

const char* lastError() { return tlsLastError; }
void clearLastError() { tlsLastError[0] = '\0'; }

}  // namespace fccl
