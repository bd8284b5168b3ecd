// callboard.cc - packing calls into board words, the seqlock around each record, the checks a
// slow wait runs on its peers' boards, and the sentences they produce.
#include "src/callboard.h"
#include <algorithm>
#include <cstdio>
#include <cstring>
#include "collectives/reduce_kernels.h"
#include "src/debug.h"
#include "src/error.h"
#include "src/tuner.h"

namespace fccl {

namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;
// The state word while its text is being written: readers still see Running. Claimed by a CAS,
// since fcclCommAbort may write from another thread than the one running a call.
constexpr uint32_t kStateWriting = 0xff;

const char* baseOpName(int op) {
  static const char* names[] = {"sum", "prod", "max", "min"};
  return op >= 0 && op < 4 ? names[op] : "op?";
}

void unpack(const uint64_t w[6], uint64_t seq, CallDesc* d) {
  d->seq = seq;
  d->count = w[0];
  d->programHash = w[1];
  d->kind = CollKind(w[2] & 0xff);
  d->type = fcclDataType_t((w[2] >> 8) & 0xff);
  d->op = uint8_t(w[2] >> 16);
  d->opFlags = uint8_t(w[2] >> 24);
  d->algo = uint8_t(w[2] >> 32);
  d->root = int32_t(uint32_t(w[3]));
  memcpy(d->program, &w[4], 16);
  d->program[16] = '\0';
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
bool firstDivergence(const WaitContext& w, int peer, CallDesc* mine, CallDesc* theirs) {
  if (w.boards == nullptr || w.boards[peer] == nullptr || w.boards[w.rank] == nullptr) return false;
  const uint64_t oldest = w.opSeq >= kCallRecords ? w.opSeq - kCallRecords + 1 : 1;
  for (uint64_t seq = oldest; seq <= w.opSeq; ++seq)
    if (boardRead(w.boards[w.rank], seq, mine) && boardRead(w.boards[peer], seq, theirs) &&
        !sameCall(*mine, *theirs))
      return true;
  return false;
}

fcclResult_t mismatchError(const WaitContext& w, int peer, const CallDesc& mine, const CallDesc& theirs) {
  return setError(fcclInvalidUsage, "rank %d called %s but rank %d called %s%s", w.rank,
                  callString(mine).c_str(), peer, callString(theirs).c_str(),
                  difference(mine, theirs).c_str());
}

uint32_t loadState(const CallBoard* b, int* origin) {
  uint32_t s = b->state.load(std::memory_order_acquire);
  if (s == kStateWriting) s = uint32_t(BoardState::Running);
  if (origin != nullptr) *origin = int(s >> 8) - 1;
  return s & 0xff;
}

}  // namespace

const char* boardStateName(BoardState s) {
  switch (s) {
    case BoardState::Running:
      return "running";
    case BoardState::Failed:
      return "failed";
    case BoardState::Aborted:
      return "aborted";
    case BoardState::Closed:
      return "closed";
    case BoardState::Destroyed:
      return "destroyed";
  }
  return "unknown";
}

std::string callString(const CallDesc& d) {
  char buf[192];
  int n = snprintf(buf, sizeof(buf), "%s #%llu (count %llu, %s", collName(d.kind), (unsigned long long)d.seq,
                   (unsigned long long)d.count, dtypeName(d.type));
  if (callReduces(d.kind))
    n += snprintf(buf + n, sizeof(buf) - n, ", %s%s", (d.opFlags & kOpAvg) ? "avg" : baseOpName(d.op),
                  (d.opFlags & kOpPreMul) ? " with premul" : "");
  if (d.root >= 0) n += snprintf(buf + n, sizeof(buf) - n, ", root %d", d.root);
  n += snprintf(buf + n, sizeof(buf) - n, ", %s", algoName(Algo(d.algo)));
  if (d.programHash != 0) n += snprintf(buf + n, sizeof(buf) - n, ", program %s", d.program);
  snprintf(buf + n, sizeof(buf) - n, ")");
  return buf;
}

void boardSetState(CallBoard* b, BoardState s, int origin, const std::string& text) {
  uint32_t running = uint32_t(BoardState::Running);
  if (b == nullptr || !b->state.compare_exchange_strong(running, kStateWriting)) return;
  // The text goes first; the state's release store publishes it.
  char buf[kCallTextWords * 8] = {};
  snprintf(buf, sizeof(buf), "%s", text.c_str());
  for (int i = 0; i < kCallTextWords; ++i) {
    uint64_t w;
    memcpy(&w, buf + 8 * i, 8);
    b->text[i].store(w, kRelaxed);
  }
  b->state.store(uint32_t(s) | uint32_t(origin + 1) << 8, std::memory_order_release);
}

bool boardRead(const CallBoard* b, uint64_t seq, CallDesc* out) {
  if (b == nullptr) return false;
  const CallRecordWords& r = b->calls[seq % kCallRecords];
  if (r.end.load(std::memory_order_acquire) != seq) return false;
  uint64_t w[6];
  for (int i = 0; i < 6; ++i) w[i] = r.word[i].load(kRelaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (r.begin.load(kRelaxed) != seq) return false;
  unpack(w, seq, out);
  return true;
}

BoardState boardState(const CallBoard* b, int* origin, std::string* text) {
  uint32_t s = loadState(b, origin);
  if (text != nullptr && s != uint32_t(BoardState::Running)) {
    char buf[kCallTextWords * 8 + 1];
    for (int i = 0; i < kCallTextWords; ++i) {
      uint64_t w = b->text[i].load(kRelaxed);
      memcpy(buf + 8 * i, &w, 8);
    }
    buf[kCallTextWords * 8] = '\0';
    *text = buf;
  }
  return BoardState(s);
}

fcclResult_t boardCheckPeers(const WaitContext& w) {
  if (w.boards == nullptr) return fcclSuccess;
  for (int p = 0; p < w.nranks; ++p) {
    const CallBoard* b = w.boards[p];
    if (p == w.rank || b == nullptr) continue;
    CallDesc mine, theirs;
    if (w.compareCalls && firstDivergence(w, p, &mine, &theirs)) return mismatchError(w, p, mine, theirs);
    // A point-to-point wait depends on its one peer; a collective on every peer that has not
    // finished it (one that has owes this rank nothing more for it, whatever it did next).
    if (w.compareCalls ? b->doneSeq.load(std::memory_order_acquire) >= w.opSeq : p != w.peer) continue;
    int origin = -1;
    std::string text;
    BoardState s = boardState(b, &origin, &text);
    if (s == BoardState::Running) continue;
    if (w.failedPeer != nullptr) {
      int expected = 0;
      w.failedPeer->compare_exchange_strong(expected, p + 1);
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

bool boardAccountsFor(const WaitContext& w, int peer) {
  if (w.boards == nullptr || w.boards[peer] == nullptr) return false;
  const CallBoard* b = w.boards[peer];
  if (boardState(b, nullptr, nullptr) != BoardState::Running) return true;
  return w.compareCalls && b->doneSeq.load(std::memory_order_acquire) >= w.opSeq;
}

fcclResult_t callMismatchError(const WaitContext& w, int peer, const char* what) {
  CallDesc mine, theirs;
  if (firstDivergence(w, peer, &mine, &theirs)) return mismatchError(w, peer, mine, theirs);
  // The peer's record of this sequence number is gone or never was: it is at another call.
  const bool haveMine = w.boards != nullptr && boardRead(w.boards[w.rank], w.opSeq, &mine);
  return setError(
      fcclInvalidUsage,
      "rank %d: %s #%llu: %s from rank %d belongs to another call (%s): the ranks called different "
      "collectives or a different number of them",
      w.rank, haveMine ? callString(mine).c_str() : w.opName, (unsigned long long)w.opSeq, what, peer,
      w.boards != nullptr ? "its latest calls are logged at FCCL_DEBUG=INFO" : "no call board");
}

void boardDump(const WaitContext& w) {
  if (w.boards == nullptr || !logEnabled(LogLevel::Info, kLogColl)) return;
  FCCL_INFO(kLogColl, "rank %d: %s #%llu: in-flight operations per rank:", w.rank, w.opName,
            (unsigned long long)w.opSeq);
  for (int p = 0; p < w.nranks; ++p) {
    const CallBoard* b = w.boards[p];
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
