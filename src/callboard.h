// callboard.h - what each rank tells its peers about its calls, through its own shared segment
// (its transport's `status` area, transports/transport.h). Before a collective moves any data the rank
// publishes the call (kind, count, type, op, root, algorithm, program); it records when it finished; and it
// keeps a lifecycle state (running, failed, aborted, closed, destroyed) with the sentence that
// explains the first failure. Waits read their peers' boards in their slow path only (every
// ~50 ms, beside the liveness check: src/peer_monitor.h), so the fast path pays one cache line
// of stores per call:
//  - ranks whose calls differ at the same sequence number fail with both calls named, whatever
//    algorithm each picked (direct and ring ranks would otherwise wait on different memory);
//  - a peer that failed, aborted or left ends the wait with its reason instead of a timeout;
//  - a timeout logs every rank's last call and state at INFO.
// The wire tag (callTag) hashes the whole call, so mismatches within one algorithm are caught
// at the first chunk and never combined silently.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include "collectives/coll.h"
#include "transports/transport.h"

namespace fccl {

// What a rank tells its peers about itself, in its own status area: a lifecycle state with the
// sentence of its first failure, the last collective it finished, and its last few calls. Words
// only, so peers may read while the owner writes (each record is a seqlock: begin, fields, end).
constexpr int kCallRecords = 4;  // calls kept, indexed by sequence number
constexpr int kCallTextWords = 24;
struct CallRecordWords {
  std::atomic<uint64_t> begin;    // sequence number, written first
  std::atomic<uint64_t> word[6];  // the call (src/callboard.cc packs it)
  std::atomic<uint64_t> end;      // sequence number, written last
};
struct alignas(64) CallBoard {
  std::atomic<uint32_t> state;                 // CallBoardState
  std::atomic<uint64_t> doneSeq;               // the last collective this rank finished
  std::atomic<uint64_t> text[kCallTextWords];  // why it failed or closed (written before state)
  alignas(64) CallRecordWords calls[kCallRecords];
};

enum class BoardState : uint32_t {
  Running = 0,
  Failed,     // an operation failed on this rank; the text says why
  Aborted,    // fcclCommAbort
  Closed,     // the rank closed its connections (FCCL_FAULT_INJECT close)
  Destroyed,  // fcclCommDestroy
};
const char* boardStateName(BoardState s);

// One collective call as every rank must make it.
struct CallDesc {
  uint64_t seq = 0;  // the collective's sequence number on the communicator
  uint64_t count = 0;
  uint64_t programHash = 0;  // fused program issuing it (0: a direct API call)
  CollKind kind = CollKind::AllReduce;
  fcclDataType_t type = fcclFloat32;
  uint8_t op = 0;       // base op (sum / prod / max / min)
  uint8_t opFlags = 0;  // kOpAvg | kOpPreMul
  uint8_t algo = 0;     // tuner.h Algo
  int32_t root = -1;    // -1: the collective has no root
  char program[17] = {};
};

// A call as the board stores it: 6 words, built straight from the task on the hot path (the
// readable CallDesc is unpacked from them only when a report needs it).
struct CallWords {
  uint64_t w[6];
};
constexpr uint8_t kOpAvg = 1, kOpPreMul = 2;

// The hot path (every collective) is inline below: pack, tag, publish, finish.
inline bool callHasRoot(CollKind k) { return k == CollKind::Reduce || k == CollKind::Broadcast; }
inline bool callReduces(CollKind k) {
  return k == CollKind::AllReduce || k == CollKind::Reduce || k == CollKind::ReduceScatter ||
         k == CollKind::ReduceScatterSliced;
}

inline CallWords packCall(const CollTask& t, int algo, uint64_t programHash, const char* programName) {
  // The fields that must agree across ranks; what a collective does not use is 0 (op and flags
  // without a reduction, root without a root).
  const bool red = callReduces(t.kind);
  const uint64_t op = red ? uint64_t(t.op) : 0;
  const uint64_t flags =
      red ? uint64_t((t.avgDivisor > 1 ? kOpAvg : 0) | (t.premulScalar ? kOpPreMul : 0)) : 0;
  const int32_t root = callHasRoot(t.kind) ? t.root : -1;
  CallWords c;
  c.w[0] = t.count;
  c.w[1] = programHash;
  c.w[2] = uint64_t(uint8_t(t.kind)) | uint64_t(uint8_t(t.type)) << 8 | op << 16 | flags << 24 |
           uint64_t(uint8_t(algo)) << 32;
  c.w[3] = uint64_t(uint32_t(root));
  c.w[4] = c.w[5] = 0;
  if (programName != nullptr) memcpy(&c.w[4], programName, strnlen(programName, 16));
  return c;
}

// 32-bit tag for the wire: a hash of the whole call with its sequence number. Multiply-xorshift
// over the words that must agree: a field that differs changes the tag but with probability
// 2^-32 (one multiply per word: collectives are hot).
inline uint32_t callTag(const CallWords& c, uint64_t seq) {
  uint64_t h = seq * 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 4; ++i) {
    h = (h ^ c.w[i]) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
  }
  return uint32_t(h ^ (h >> 32));
}

// "AllReduce #5 (count 1000, float32, sum, ring)"
std::string callString(const CallDesc& d);

// Owner side (b may be null: a communicator without boards).
inline void boardPublish(CallBoard* b, uint64_t seq, const CallWords& c) {
  if (b == nullptr) return;
  CallRecordWords& r = b->calls[seq % kCallRecords];
  // Seqlock: begin, fields, end. A reader that sees end == begin == seq read a whole record.
  r.begin.store(seq, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (int i = 0; i < 6; ++i) r.word[i].store(c.w[i], std::memory_order_relaxed);
  r.end.store(seq, std::memory_order_release);
}
inline void boardFinish(CallBoard* b, uint64_t seq) {
  if (b != nullptr) b->doneSeq.store(seq, std::memory_order_release);
}
// Moves a running board to a final state; the first final state wins. origin: the rank whose
// failure this is (itself, or the peer whose failure stopped it), text: that rank's sentence.
void boardSetState(CallBoard* b, BoardState s, int origin, const std::string& text);

// Reader side. false if the record of `seq` is gone (overwritten) or being written.
bool boardRead(const CallBoard* b, uint64_t seq, CallDesc* out);
BoardState boardState(const CallBoard* b, int* origin, std::string* text);

}  // namespace fccl
