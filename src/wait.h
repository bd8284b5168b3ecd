// wait.h - every wait in fccl is bounded and abortable. A wait polls `ready` a few thousand
// times (cheap when the peer runs on another core), then yields, then sleeps in short
// naps, because ranks often outnumber cores (8 ranks on 2 cores). The clock and the abort
// flag are checked every few polls; a timeout returns fcclSystemError / fcclRemoteError with a
// sentence naming the rank, the operation, its sequence number and what it waited for. A peer
// process that exited (or is a zombie) ends the wait with fcclRemoteError naming it.
#pragma once
#include <atomic>
#include <cstdint>
#include "fccl.h"

namespace fccl {

struct CallBoard;

struct WaitContext {
  const std::atomic<int>* abortFlag = nullptr;  // nonzero: stop waiting (fcclCommAbort, dead peer)
  int64_t timeoutMs = 0;                        // <= 0: use env().timeoutMs
  int rank = -1;                                // the waiting rank
  const char* opName = "";                      // "AllReduce", "bootstrap", ...
  uint64_t opSeq = 0;                           // the operation's sequence number on the comm
  int peer = -1;                                // the rank waited for (-1: several or unknown)
  const char* what = "";                        // "data from peer", "free slot at peer", ...
  uint64_t spinLimit = 0;                       // busy polls before yielding (0: FCCL_SPIN_COUNT)
  // Dead-peer detection, in the slow path only, every ~50 ms: the awaited peer, plus a window of
  // the others (the rank we wait for may itself be stuck behind a dead one). peerPids[r]: the
  // pid of rank r when it is another process on this host, else 0 (ourselves, a thread of this
  // process, another host). deadPeer: 1 + the rank found dead (0: none); once set, every wait
  // of the communicator ends at its first slow pause with fcclRemoteError.
  const int* peerPids = nullptr;
  int nranks = 0;
  std::atomic<int>* deadPeer = nullptr;
  // The ranks' call boards (src/callboard.h), read at the same period: a peer whose call at
  // opSeq differs (compareCalls: opSeq numbers a collective, not a p2p batch), or that failed,
  // aborted or left, ends the wait. failedPeer: 1 + the peer whose board stopped us.
  CallBoard* const* boards = nullptr;
  bool compareCalls = false;
  std::atomic<int>* failedPeer = nullptr;
};

class Waiter {
 public:
  explicit Waiter(const WaitContext& ctx);
  // Call once per failed poll of the condition. fcclSuccess: poll again. Otherwise the
  // wait is over (timeout or abort) and lastError() holds the sentence.
  inline fcclResult_t pause() {
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
  fcclResult_t checkPeers();
  fcclResult_t checkPeersAlive();
  const WaitContext& ctx_;
  uint64_t polls_ = 0;
  uint64_t spinLimit_;
  int64_t deadlineNs_ = 0;
  int64_t nextLivenessNs_ = 0;
  uint32_t livenessCursor_ = 0;
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
