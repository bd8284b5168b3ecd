// wait.cc - the slow half of Waiter: after spinLimit_ busy polls, yield; after a while,
// nap 50 us at a time so oversubscribed ranks leave the core to the rank they wait for.
// Deadline and abort are checked on every slow pause (every poll past the spin limit); the
// peers (WaitContext::watch) every kCheckPeriodNs.
#include "src/base/wait.h"
#include <sched.h>
#include <time.h>
#include <string>
#include "src/base/env.h"
#include "src/base/error.h"

namespace fccl {

namespace {

constexpr int64_t kCheckPeriodNs = 50 * 1000000;

}  // namespace

int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Waiter::Waiter(const WaitContext& ctx)
    : ctx_(ctx), spinLimit_(ctx.spinLimit > 0 ? ctx.spinLimit : uint64_t(env().spinCount)) {}

fcclResult_t Waiter::slowPause() {
  int64_t now = nowNs();
  if (deadlineNs_ == 0) {
    int64_t timeoutMs = ctx_.timeoutMs > 0 ? ctx_.timeoutMs : env().timeoutMs;
    deadlineNs_ = now + timeoutMs * 1000000;
  }
  if (ctx_.abortFlag != nullptr && ctx_.abortFlag->load(std::memory_order_relaxed) != 0) {
    return setErrorQuiet(fcclRemoteError, "rank %d: %s #%llu aborted while waiting for %s%s%s", ctx_.rank,
                         ctx_.opName, (unsigned long long)ctx_.opSeq, ctx_.what,
                         ctx_.peer >= 0 ? " of rank " : "",
                         ctx_.peer >= 0 ? std::to_string(ctx_.peer).c_str() : "");
  }
  if (ctx_.watch != nullptr) {
    fcclResult_t r = ctx_.watch->known(ctx_);
    if (r != fcclSuccess) return r;
  }
  if (nextCheckNs_ == 0) {
    nextCheckNs_ = now + kCheckPeriodNs;  // short waits never pay for the checks
  } else if (now >= nextCheckNs_ && ctx_.watch != nullptr) {
    nextCheckNs_ = now + kCheckPeriodNs;
    fcclResult_t r = ctx_.watch->check(ctx_, &checkCursor_);
    if (r != fcclSuccess) return r;
  }
  if (now > deadlineNs_) {
    int64_t timeoutMs = ctx_.timeoutMs > 0 ? ctx_.timeoutMs : env().timeoutMs;
    fcclResult_t r =
        setError(fcclSystemError, "rank %d: %s #%llu timed out after %lld ms waiting for %s%s%s", ctx_.rank,
                 ctx_.opName, (unsigned long long)ctx_.opSeq, (long long)timeoutMs, ctx_.what,
                 ctx_.peer >= 0 ? " of rank " : "", ctx_.peer >= 0 ? std::to_string(ctx_.peer).c_str() : "");
    if (ctx_.watch != nullptr) ctx_.watch->onTimeout(ctx_);
    return r;
  }
  // Yield for a while first (cheap when the other rank is runnable on this core), then nap.
  if (polls_ < spinLimit_ + 20000) {
    sched_yield();
  } else {
    timespec nap{0, 50000};
    nanosleep(&nap, nullptr);
  }
  return fcclSuccess;
}

fcclResult_t callMismatch(const WaitContext& w, int peer, const char* what) {
  if (w.watch != nullptr) return w.watch->mismatch(w, peer, what);
  return setError(fcclInvalidUsage, "rank %d: %s #%llu: %s from rank %d belongs to another call", w.rank,
                  w.opName, (unsigned long long)w.opSeq, what, peer);
}

}  // namespace fccl
