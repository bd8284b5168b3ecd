// peer_monitor.h - the core's answers to a wait's slow-path questions (src/base/wait.h
// PeerWatch): has a peer process exited, does a peer's call board show another call at this
// sequence number, or a failure, an abort, a departure. One per communicator
// (fcclComm::monitor), filled at init; the waits of every operation point to it.
//  - Liveness, every ~50 ms of a slow wait: the awaited peer plus a window of the others (the
//    rank we wait for may itself be stuck behind a dead one). A dead peer sticks (deadPeer):
//    every later wait of the communicator ends at its first slow pause.
//  - Call boards (src/callboard.h), at the same period: ranks whose calls differ fail with both
//    calls named; a peer that failed or left ends the wait with its reason (failedPeer).
//  - The awaited peer's transport, at the same period: a peer it lost (a closed connection)
//    ends the wait with the transport's reason.
#pragma once
#include <atomic>
#include <cstdint>
#include "src/base/wait.h"

namespace fccl {

struct CallBoard;
class TransportComm;

class PeerMonitor final : public PeerWatch {
 public:
  // peerPids[r]: the pid of rank r when it is another process on this host, else 0 (ourselves,
  // a thread of this process, another host); null: no liveness checks. deadPeer / failedPeer:
  // 1 + the rank found dead / whose board stopped a wait (0: none). boards: [rank] or null.
  const int* peerPids = nullptr;
  int nranks = 0;
  std::atomic<int>* deadPeer = nullptr;
  CallBoard* const* boards = nullptr;
  std::atomic<int>* failedPeer = nullptr;
  TransportComm* const* linkOf = nullptr;  // [rank] the transport connecting it, or null

  fcclResult_t known(const WaitContext& w) const override;
  fcclResult_t check(const WaitContext& w, uint32_t* cursor) const override;
  void onTimeout(const WaitContext& w) const override;
  fcclResult_t mismatch(const WaitContext& w, int peer, const char* what) const override;

 private:
  fcclResult_t checkAlive(const WaitContext& w, uint32_t* cursor) const;
  fcclResult_t deadPeerError(const WaitContext& w, int dead) const;
  fcclResult_t checkBoards(const WaitContext& w) const;
  bool boardAccountsFor(const WaitContext& w, int peer) const;
  fcclResult_t checkLink(const WaitContext& w) const;
};

}  // namespace fccl
