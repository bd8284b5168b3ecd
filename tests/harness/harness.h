// harness.h - runs a test body on N ranks of fccl, as threads of this process or as forked
// processes (in the spirit of Gloo's base_test.h / multiproc_test.h), and bounds it in time.
// Invariants: every rank's failures are collected (GoogleTest assertions do not cross fork,
// so bodies use RCHECK/RVERIFY below); a rank that does not finish within the deadline is a
// failure naming that rank, never a stuck test. Threads that miss the deadline are detached
// (their shared state is reference counted), forked children are killed with SIGKILL.
#pragma once
#include <functional>
#include <string>
#include <thread>

#include "fccl.h"

namespace fccltest {

enum class Mode {
  Threads,
  Processes
};
const char* modeName(Mode mode);

struct RunResult {
  bool ok = true;
  std::string report;  // one line per failure, "rank r: file:line: message", plus hang lines
};

// A body that gets an initialized communicator (runRanks does fcclGetUniqueId, then per
// rank fcclCommInitRankConfig with config.timeoutMs = commTimeoutMs, the body, and
// fcclCommDestroy).
using Body = std::function<void(fcclComm_t comm, int rank, int nranks)>;
// A body that initializes (or deliberately fails to initialize) its own communicator.
// id comes from one fcclGetUniqueId in the calling process, taken before any fork.
using RawBody = std::function<void(const fcclUniqueId& id, int rank, int nranks)>;

constexpr int kDefaultTimeoutSec = 60;

// commTimeoutMs <= 0: three quarters of the case deadline, so the library's own bounded waits
// give up (with a sentence) before the harness has to declare a hang.
RunResult runRanks(int nranks, Mode mode, Body body, int timeoutSec = kDefaultTimeoutSec,
                   int commTimeoutMs = 0);
RunResult runRanksRaw(int nranks, Mode mode, RawBody body, int timeoutSec = kDefaultTimeoutSec);
// For a RawBody: fcclCommInitRankConfig with config.timeoutMs and config.commName; on failure
// records it (naming the result and the last error) and returns nullptr.
fcclComm_t initRankComm(const fcclUniqueId& id, int rank, int nranks, int timeoutMs,
                        const char* commName = "fccltest");

// ---- Failure recording (valid inside a body, and in threads started with rankThread) ----
// Records "rank r: file:line: message" for the calling rank. Past a cap per rank only a
// count is kept, so a sweep with one bad kernel does not print a million lines.
void recordFailure(const char* file, int line, const std::string& message);
bool rankFailed();  // this rank has recorded at least one failure
// Remembers what this rank is doing now (e.g. the case of a sweep); shown only for a rank
// that hangs or crashes, so the report names the case it was in.
void noteProgress(const std::string& what);
int currentRank();  // -1 outside a body

std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// "fcclInvalidArgument (4): <fcclGetLastError(comm)>"
std::string describeResult(fcclResult_t res, fcclComm_t comm);

// Starts a thread that records failures as the calling rank (two comms used concurrently).
struct RankContext;
RankContext* currentContext();
void setCurrentContext(RankContext* ctx);
template <class F>
std::thread rankThread(F f) {
  RankContext* ctx = currentContext();
  return std::thread([ctx, f]() mutable {
    setCurrentContext(ctx);
    f();
    setCurrentContext(nullptr);
  });
}

}  // namespace fccltest

// Fatal check: records the failure and returns from the enclosing void function.
#define RCHECK(cond, ...)                                                                \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      ::fccltest::recordFailure(__FILE__, __LINE__,                                      \
                                std::string("check failed: " #cond)                      \
                                    __VA_OPT__(+" - " + ::fccltest::strf(__VA_ARGS__))); \
      return;                                                                            \
    }                                                                                    \
  } while (0)

// Same, returning `ret` (for helpers that return bool).
#define RCHECK_RET(ret, cond, ...)                                                       \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      ::fccltest::recordFailure(__FILE__, __LINE__,                                      \
                                std::string("check failed: " #cond)                      \
                                    __VA_OPT__(+" - " + ::fccltest::strf(__VA_ARGS__))); \
      return ret;                                                                        \
    }                                                                                    \
  } while (0)

// Non-fatal: records and goes on (keeps ranks in lockstep after a wrong value).
#define RVERIFY(cond, ...)                                                               \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      ::fccltest::recordFailure(__FILE__, __LINE__,                                      \
                                std::string("check failed: " #cond)                      \
                                    __VA_OPT__(+" - " + ::fccltest::strf(__VA_ARGS__))); \
    }                                                                                    \
  } while (0)

// Fatal check that an fccl call returned fcclSuccess; the message carries the last error.
#define RCHECK_FCCL(call, comm)                                                                    \
  do {                                                                                             \
    fcclResult_t r_ = (call);                                                                      \
    if (r_ != fcclSuccess) {                                                                       \
      ::fccltest::recordFailure(__FILE__, __LINE__,                                                \
                                std::string(#call " -> ") + ::fccltest::describeResult(r_, comm)); \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

#define RCHECK_FCCL_RET(ret, call, comm)                                                           \
  do {                                                                                             \
    fcclResult_t r_ = (call);                                                                      \
    if (r_ != fcclSuccess) {                                                                       \
      ::fccltest::recordFailure(__FILE__, __LINE__,                                                \
                                std::string(#call " -> ") + ::fccltest::describeResult(r_, comm)); \
      return ret;                                                                                  \
    }                                                                                              \
  } while (0)

// In a TEST: fails the test with every rank's report.
#define EXPECT_RANKS_OK(result)           \
  do {                                    \
    ::fccltest::RunResult rr_ = (result); \
    EXPECT_TRUE(rr_.ok) << rr_.report;    \
  } while (0)
