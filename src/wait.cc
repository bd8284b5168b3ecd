// wait.cc - the slow half of Waiter: after spinLimit_ busy polls, yield; after a while,
// nap 50 us at a time so oversubscribed ranks leave the core to the rank they wait for.
// Deadline and abort are checked on every slow pause (every poll past the spin limit); the
// liveness of the awaited peer process(es) and the peers' call boards every kLivenessPeriodNs.
#include "wait.h"
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include "callboard.h"
#include "env.h"
#include "error.h"

namespace fccl {

namespace {

constexpr int64_t kLivenessPeriodNs = 50 * 1000000;
constexpr int kLivenessWindow = 8;  // peers checked per period besides the awaited one

// A process of this host that no longer runs: gone (ESRCH), or a zombie its parent has not
// reaped yet (kill(pid, 0) still succeeds on it), read from /proc/<pid>/stat.
bool processExited(int pid) {
  if (kill(pid, 0) == -1) return errno == ESRCH;  // EPERM: exists, another user's
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // no /proc, or reaped just now: the next check's kill() tells
  char buf[512];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // "pid (comm) S ...": comm may hold spaces and parentheses; the state follows the last ')'.
  const char* paren = strrchr(buf, ')');
  if (paren == nullptr || paren[1] != ' ') return false;
  return paren[2] == 'Z' || paren[2] == 'X';
}

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
  if (ctx_.deadPeer != nullptr && ctx_.deadPeer->load(std::memory_order_relaxed) != 0 &&
      ctx_.peerPids != nullptr)
    return checkPeersAlive();
  if (nextLivenessNs_ == 0) {
    nextLivenessNs_ = now + kLivenessPeriodNs;  // short waits never pay for the checks
  } else if (now >= nextLivenessNs_) {
    nextLivenessNs_ = now + kLivenessPeriodNs;
    fcclResult_t r = checkPeers();
    if (r != fcclSuccess) return r;
  }
  if (now > deadlineNs_) {
    int64_t timeoutMs = ctx_.timeoutMs > 0 ? ctx_.timeoutMs : env().timeoutMs;
    fcclResult_t r =
        setError(fcclSystemError, "rank %d: %s #%llu timed out after %lld ms waiting for %s%s%s", ctx_.rank,
                 ctx_.opName, (unsigned long long)ctx_.opSeq, (long long)timeoutMs, ctx_.what,
                 ctx_.peer >= 0 ? " of rank " : "", ctx_.peer >= 0 ? std::to_string(ctx_.peer).c_str() : "");
    boardDump(ctx_);
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

fcclResult_t Waiter::checkPeers() {
  if (ctx_.deadPeer != nullptr && ctx_.peerPids != nullptr) {
    fcclResult_t r = checkPeersAlive();
    if (r != fcclSuccess) return r;
  }
  return boardCheckPeers(ctx_);
}

fcclResult_t Waiter::checkPeersAlive() {
  int dead = ctx_.deadPeer->load(std::memory_order_relaxed) - 1;
  if (dead < 0) {
    // The awaited peer first, then a window of the others, round-robin across checks: a rank
    // blocked on a live peer that is itself stuck behind the dead one must still notice.
    // A process that exited after leaving a final state on its board (destroyed, failed,
    // aborted, closed) or after finishing this collective is not dead: the board check reports
    // the first with its reason, the second owes us nothing (boardAccountsFor).
    auto deadRank = [&](int r) {
      return ctx_.peerPids[r] > 0 && processExited(ctx_.peerPids[r]) && !boardAccountsFor(ctx_, r);
    };
    if (ctx_.peer >= 0 && ctx_.peer < ctx_.nranks && deadRank(ctx_.peer)) dead = ctx_.peer;
    for (int k = 0; k < kLivenessWindow && k < ctx_.nranks && dead < 0; ++k) {
      const int r = livenessCursor_++ % ctx_.nranks;
      if (r != ctx_.peer && deadRank(r)) dead = r;
    }
    if (dead < 0) return fcclSuccess;
    int expected = 0;
    ctx_.deadPeer->compare_exchange_strong(expected, dead + 1);
  }
  return setError(fcclRemoteError,
                  "rank %d: %s #%llu: peer rank %d (pid %d) exited while we waited for %s%s%s", ctx_.rank,
                  ctx_.opName, (unsigned long long)ctx_.opSeq, dead, ctx_.peerPids[dead], ctx_.what,
                  ctx_.peer >= 0 ? " of rank " : "", ctx_.peer >= 0 ? std::to_string(ctx_.peer).c_str() : "");
}

}  // namespace fccl
