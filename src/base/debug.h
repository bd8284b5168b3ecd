// debug.h - fccl's one log sink: levels (FCCL_DEBUG), a subsystem mask (FCCL_DEBUG_SUBSYS),
// every line prefixed "host:pid:tid [rank] fccl LEVEL". TRACE compiles out unless FCCL_TRACE is defined.
#pragma once
#include <cstdint>
#include <string>

namespace fccl {

enum class LogLevel : int {
  None = 0,
  Version = 1,
  Warn = 2,
  Info = 3,
  Trace = 4
};

// Subsystems, as FCCL_DEBUG_SUBSYS names them (INIT,COLL,P2P,SHM,NET,BOOTSTRAP,TUNING,ENV,FUSION,ALL).
enum LogSubsys : uint64_t {
  kLogInit = 1u << 0,
  kLogColl = 1u << 1,
  kLogP2p = 1u << 2,
  kLogShm = 1u << 3,
  kLogNet = 1u << 4,
  kLogBootstrap = 1u << 5,
  kLogTuning = 1u << 6,
  kLogEnv = 1u << 7,
  kLogFusion = 1u << 8,
  kLogAll = ~uint64_t(0),
};

// FCCL_DEBUG_SUBSYS's syntax: a comma list of the names above (any case), optionally after ^
// (all but those). false, *mask untouched, when a name is unknown or empty.
bool logParseSubsys(const std::string& text, uint64_t* mask);

LogLevel logLevel();
bool logEnabled(LogLevel level, uint64_t subsys);
void logMessage(LogLevel level, uint64_t subsys, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 5, 6)));
// "fccl version X.Y.Z" once per process when FCCL_DEBUG is VERSION (only that line) or INFO/TRACE.
void logVersionOnce();
// The rank shown in this thread's log prefix (-1: none). Set at each API entry.
void logSetRank(int rank);

}  // namespace fccl

#define FCCL_WARN(...) \
  ::fccl::logMessage(::fccl::LogLevel::Warn, ::fccl::kLogAll, __FILE__, __LINE__, __VA_ARGS__)
#define FCCL_INFO(subsys, ...)                                                               \
  do {                                                                                       \
    if (::fccl::logEnabled(::fccl::LogLevel::Info, (subsys)))                                \
      ::fccl::logMessage(::fccl::LogLevel::Info, (subsys), __FILE__, __LINE__, __VA_ARGS__); \
  } while (0)
#ifdef FCCL_TRACE
#define FCCL_TRACE_LOG(subsys, ...) \
  ::fccl::logMessage(::fccl::LogLevel::Trace, (subsys), __FILE__, __LINE__, __VA_ARGS__)
#else
#define FCCL_TRACE_LOG(subsys, ...) \
  do {                              \
  } while (0)
#endif
