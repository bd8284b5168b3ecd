// wait.h - every wait in fccl is bounded and abortable. A wait polls `ready` a few thousand
// times (cheap when the peer runs on another core), then yields, then sleeps in short
// naps, because ranks often outnumber cores (8 ranks on 2 cores). The clock and the abort
// flag are checked every few polls; a timeout returns fcclSystemError / fcclRemoteError with a
// sentence naming the rank, the operation, its sequence number and what it waited for.
// What the peers are doing (a process that exited, a call board showing another call or a
// failure) is the core's knowledge: the wait asks it through WaitContext::watch.
#pragma once
#include <atomic>
#include <cstdint>
#include "fccl.h"

namespace fccl {

struct WaitContext;

// The slow-path questions a wait asks about its peers, answered by the layer that knows them
// (the communicator's PeerMonitor, src/peer_monitor.h). fcclSuccess: keep waiting; anything
// else ends the wait with that error (lastError() set).
class PeerWatch {
 public:
  virtual ~PeerWatch() = default;
  // Every slow pause: a failure the communicator already knows (a peer found dead). Cheap.
  virtual fcclResult_t known(const WaitContext& w) const = 0;
  // Every ~50 ms of a slow wait: the peers' processes and call boards. *cursor is the wait's
  // own round-robin position over the peers it is not waiting for directly.
  virtual fcclResult_t check(const WaitContext& w, uint32_t* cursor) const = 0;
  // After a timeout's error is set: what every rank was doing (FCCL_DEBUG=INFO).
  virtual void onTimeout(const WaitContext& w) const = 0;
  // Data from `peer` carried another call's tag: the error, naming both calls if it can.
  virtual fcclResult_t mismatch(const WaitContext& w, int peer, const char* what) const = 0;
};

// Work the waiting thread may do itself rather than wait for a helper thread to do it (the
// socket transport's lanes): on a core shared by the rank and its helpers, every hand-off is a
// context switch, and a small message crosses four of them. Called on each poll of a wait.
class WaitDriver {
 public:
  virtual ~WaitDriver() = default;
  // Moves what can move now without blocking; true if anything moved.
  virtual bool drive() const = 0;
};

struct WaitContext {
  const std::atomic<int>* abortFlag = nullptr;  // nonzero: stop waiting (fcclCommAbort, dead peer)
  int64_t timeoutMs = 0;                        // <= 0: use env().timeoutMs
  int rank = -1;                                // the waiting rank
  const char* opName = "";                      // "AllReduce", "bootstrap", ...
  uint64_t opSeq = 0;                           // the operation's sequence number on the comm
  int peer = -1;                                // the rank waited for (-1: several or unknown)
  const char* what = "";                        // "data from peer", "free slot at peer", ...
  uint64_t spinLimit = 0;                       // busy polls before yielding (0: FCCL_SPIN_COUNT)
  // opSeq numbers a collective every rank makes (so the peers' calls at opSeq must match), not
  // a p2p batch between some of them.
  bool compareCalls = false;
  const PeerWatch* watch = nullptr;    // null: no peer checks (bootstrap, unit tests)
  const WaitDriver* driver = nullptr;  // null: nothing to drive (no helper-thread transport)
};

// A chunk or publication from `peer` belongs to another call: w.watch's sentence, or a plain one.
fcclResult_t callMismatch(const WaitContext& w, int peer, const char* what);

class Waiter {
 public:
  explicit Waiter(const WaitContext& ctx);
  // Call once per failed poll of the condition. fcclSuccess: poll again. Otherwise the
  // wait is over (timeout or abort) and lastError() holds the sentence.
  inline fcclResult_t pause() {
    // Data moved by this thread: poll the condition again at once (yet every 1024th time go on
    // below, so the abort flag and the deadline are still looked at).
    if (ctx_.driver != nullptr && ctx_.driver->drive() && (++drives_ & 1023) != 0) return fcclSuccess;
    if (++polls_ < spinLimit_) {
      cpuRelax();
      return fcclSuccess;
    }
    return slowPause();
  }

 private:
  static inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  fcclResult_t slowPause();
  const WaitContext& ctx_;
  uint64_t polls_ = 0;
  uint64_t spinLimit_;
  int64_t deadlineNs_ = 0;
  int64_t nextCheckNs_ = 0;
  uint32_t checkCursor_ = 0;  // the watch's round-robin position
  uint32_t drives_ = 0;       // polls on which the driver moved data
};

// Polls ready() until it returns true, pausing between polls. When the wait ends in an error,
// ready() is polled once more: what we waited for may have arrived after the last poll, just
// before the peer that sent it exited or failed (or the deadline passed), and then it counts.
template <class Ready>
inline fcclResult_t waitUntil(const WaitContext& ctx, Ready&& ready) {
  if (ready()) return fcclSuccess;
  Waiter w(ctx);
  while (!ready()) {
    fcclResult_t r = w.pause();
    if (r != fcclSuccess) return ready() ? fcclSuccess : r;
  }
  return fcclSuccess;
}

int64_t nowNs();

}  // namespace fccl
