// callboard.cc - packing calls into board words, the seqlock around each record, the checks a
// slow wait runs on its peers' boards, and the sentences they produce.
#include "src/callboard.h"
#include <algorithm>
#include <cstdio>
#include <cstring>
#include "collectives/reduce_kernels.h"
#include "src/base/debug.h"
#include "src/base/error.h"
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

}  // namespace fccl
