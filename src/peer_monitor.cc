// peer_monitor.cc - see peer_monitor.h. The sentences name the waiting rank, its operation
// and sequence number, and the peer that stopped it.
#include "src/peer_monitor.h"
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include "src/base/debug.h"
#include "src/base/error.h"
#include "src/callboard.h"
#include "transports/transport.h"

namespace fccl {

namespace {

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

bool sameCall(const CallDesc& a, const CallDesc& b) {
  return a.count == b.count && a.programHash == b.programHash && a.kind == b.kind && a.type == b.type &&
         a.op == b.op && a.opFlags == b.opFlags && a.algo == b.algo && a.root == b.root;
}

// Why two calls at the same sequence number differ, for the sentence.
std::string difference(const CallDesc& mine, const CallDesc& theirs) {
  if (sameCall(mine, theirs)) return "";
  const bool callsEqual = mine.count == theirs.count && mine.programHash == theirs.programHash &&
                          mine.kind == theirs.kind && mine.type == theirs.type && mine.op == theirs.op &&
                          mine.opFlags == theirs.opFlags && mine.root == theirs.root;
  if (callsEqual)
    return ": the same call with different algorithms (FCCL_ALGO or FCCL_DIRECT_MAX_BYTES differ between "
           "ranks, or only one of them used fcclAllReduceOverlap)";
  return ": the ranks called different collectives, counts, datatypes, ops, roots or programs";
}

// The earliest of the last few calls where `peer`'s board and ours disagree (a mismatch that
// nobody waited on, e.g. two ranks that both took themselves for the root, shows up only later).
bool firstDivergence(const WaitContext& w, CallBoard* const* boards, int peer, CallDesc* mine,
                     CallDesc* theirs) {
  if (boards == nullptr || boards[peer] == nullptr || boards[w.rank] == nullptr) return false;
  const uint64_t oldest = w.opSeq >= kCallRecords ? w.opSeq - kCallRecords + 1 : 1;
  for (uint64_t seq = oldest; seq <= w.opSeq; ++seq)
    if (boardRead(boards[w.rank], seq, mine) && boardRead(boards[peer], seq, theirs) &&
        !sameCall(*mine, *theirs))
      return true;
  return false;
}

fcclResult_t mismatchError(const WaitContext& w, int peer, const CallDesc& mine, const CallDesc& theirs) {
  return setError(fcclInvalidUsage, "rank %d called %s but rank %d called %s%s", w.rank,
                  callString(mine).c_str(), peer, callString(theirs).c_str(),
                  difference(mine, theirs).c_str());
}

}  // namespace

fcclResult_t PeerMonitor::known(const WaitContext& w) const {
  if (deadPeer == nullptr || peerPids == nullptr) return fcclSuccess;
  const int dead = deadPeer->load(std::memory_order_relaxed) - 1;
  return dead < 0 ? fcclSuccess : deadPeerError(w, dead);
}

fcclResult_t PeerMonitor::check(const WaitContext& w, uint32_t* cursor) const {
  if (deadPeer != nullptr && peerPids != nullptr) {
    fcclResult_t r = checkAlive(w, cursor);
    if (r != fcclSuccess) return r;
  }
  fcclResult_t r = checkLink(w);
  return r != fcclSuccess ? r : checkBoards(w);
}

fcclResult_t PeerMonitor::checkLink(const WaitContext& w) const {
  if (linkOf == nullptr || w.peer < 0 || w.peer >= nranks || linkOf[w.peer] == nullptr) return fcclSuccess;
  std::string why;
  if (!linkOf[w.peer]->peerLost(w.peer, &why)) return fcclSuccess;
  return setError(fcclRemoteError, "rank %d: %s #%llu: lost rank %d while waiting for %s: %s", w.rank,
                  w.opName, (unsigned long long)w.opSeq, w.peer, w.what, why.c_str());
}

fcclResult_t PeerMonitor::checkAlive(const WaitContext& w, uint32_t* cursor) const {
  int dead = deadPeer->load(std::memory_order_relaxed) - 1;
  if (dead < 0) {
    // The awaited peer first, then a window of the others, round-robin across checks: a rank
    // blocked on a live peer that is itself stuck behind the dead one must still notice.
    // A process that exited after leaving a final state on its board (destroyed, failed,
    // aborted, closed) or after finishing this collective is not dead: the board check reports
    // the first with its reason, the second owes us nothing (boardAccountsFor).
    auto deadRank = [&](int r) {
      return peerPids[r] > 0 && processExited(peerPids[r]) && !boardAccountsFor(w, r);
    };
    if (w.peer >= 0 && w.peer < nranks && deadRank(w.peer)) dead = w.peer;
    for (int k = 0; k < kLivenessWindow && k < nranks && dead < 0; ++k) {
      const int r = (*cursor)++ % nranks;
      if (r != w.peer && deadRank(r)) dead = r;
    }
    if (dead < 0) return fcclSuccess;
    int expected = 0;
    deadPeer->compare_exchange_strong(expected, dead + 1);
  }
  return deadPeerError(w, dead);
}

fcclResult_t PeerMonitor::deadPeerError(const WaitContext& w, int dead) const {
  return setError(fcclRemoteError,
                  "rank %d: %s #%llu: peer rank %d (pid %d) exited while we waited for %s%s%s", w.rank,
                  w.opName, (unsigned long long)w.opSeq, dead, peerPids[dead], w.what,
                  w.peer >= 0 ? " of rank " : "", w.peer >= 0 ? std::to_string(w.peer).c_str() : "");
}

fcclResult_t PeerMonitor::checkBoards(const WaitContext& w) const {
  if (boards == nullptr) return fcclSuccess;
  for (int p = 0; p < nranks; ++p) {
    const CallBoard* b = boards[p];
    if (p == w.rank || b == nullptr) continue;
    CallDesc mine, theirs;
    if (w.compareCalls && firstDivergence(w, boards, p, &mine, &theirs))
      return mismatchError(w, p, mine, theirs);
    // A point-to-point wait depends on its one peer; a collective on every peer that has not
    // finished it (one that has owes this rank nothing more for it, whatever it did next).
    if (w.compareCalls ? b->doneSeq.load(std::memory_order_acquire) >= w.opSeq : p != w.peer) continue;
    int origin = -1;
    std::string text;
    BoardState s = boardState(b, &origin, &text);
    if (s == BoardState::Running) continue;
    if (failedPeer != nullptr) {
      int expected = 0;
      failedPeer->compare_exchange_strong(expected, p + 1);
    }
    // The text names its rank ("rank 3 called fcclCommAbort ...", "rank 3: AllReduce #7 timed out ...").
    if (origin == p || origin < 0)
      return setError(fcclRemoteError, "rank %d: %s #%llu stopped (rank %d %s): %s", w.rank, w.opName,
                      (unsigned long long)w.opSeq, p, boardStateName(s), text.c_str());
    return setError(fcclRemoteError, "rank %d: %s #%llu stopped (rank %d stopped because of rank %d): %s",
                    w.rank, w.opName, (unsigned long long)w.opSeq, p, origin, text.c_str());
  }
  return fcclSuccess;
}

bool PeerMonitor::boardAccountsFor(const WaitContext& w, int peer) const {
  if (boards == nullptr || boards[peer] == nullptr) return false;
  const CallBoard* b = boards[peer];
  if (boardState(b, nullptr, nullptr) != BoardState::Running) return true;
  return w.compareCalls && b->doneSeq.load(std::memory_order_acquire) >= w.opSeq;
}

fcclResult_t PeerMonitor::mismatch(const WaitContext& w, int peer, const char* what) const {
  CallDesc mine, theirs;
  if (firstDivergence(w, boards, peer, &mine, &theirs)) return mismatchError(w, peer, mine, theirs);
  // The peer's record of this sequence number is gone or never was: it is at another call.
  const bool haveMine = boards != nullptr && boardRead(boards[w.rank], w.opSeq, &mine);
  return setError(
      fcclInvalidUsage,
      "rank %d: %s #%llu: %s from rank %d belongs to another call (%s): the ranks called different "
      "collectives or a different number of them",
      w.rank, haveMine ? callString(mine).c_str() : w.opName, (unsigned long long)w.opSeq, what, peer,
      boards != nullptr ? "its latest calls are logged at FCCL_DEBUG=INFO" : "no call board");
}

void PeerMonitor::onTimeout(const WaitContext& w) const {
  if (boards == nullptr || !logEnabled(LogLevel::Info, kLogColl)) return;
  FCCL_INFO(kLogColl, "rank %d: %s #%llu: in-flight operations per rank:", w.rank, w.opName,
            (unsigned long long)w.opSeq);
  for (int p = 0; p < nranks; ++p) {
    const CallBoard* b = boards[p];
    if (b == nullptr) continue;
    int origin = -1;
    std::string text;
    BoardState s = boardState(b, &origin, &text);
    uint64_t done = b->doneSeq.load(std::memory_order_acquire);
    // The newest record on the board is the call the rank is in (or last made).
    CallDesc last;
    bool have = false;
    for (uint64_t seq = done + kCallRecords; seq + kCallRecords > done && seq > 0 && !have; --seq)
      have = boardRead(b, seq, &last);
    FCCL_INFO(kLogColl, "  rank %d: %s, finished through #%llu, last call %s%s%s", p, boardStateName(s),
              (unsigned long long)done, have ? callString(last).c_str() : "none on the board",
              s != BoardState::Running ? ": " : "", s != BoardState::Running ? text.c_str() : "");
  }
}

}  // namespace fccl
