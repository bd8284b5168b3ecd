// direct.h - the memory of the latency ("direct") algorithm (direct.cc): each rank owns one
// area that its peers read in place (a transport's `direct` capability, transports/transport.h).
// Layout: a control line, then two slots used alternately by operation sequence number, each
// a 16-byte header followed directly by the payload, so a small message and its flag share one
// cache line (one miss for the reader).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include "transports/transport.h"

namespace fccl {

struct DirectSlotHeader {
  std::atomic<uint64_t> seq;  // the direct-operation number whose data is in the slot
  uint32_t bytes;
  uint32_t tag;
};
static_assert(sizeof(DirectSlotHeader) == 16, "payload starts 16 bytes into the slot");
struct alignas(64) DirectCtrl {
  std::atomic<uint64_t> doneSeq;  // the last direct operation this rank finished reading for
};

struct DirectView {
  DirectCtrl* ctrl = nullptr;
  DirectSlotHeader* header[2] = {nullptr, nullptr};
  char* data[2] = {nullptr, nullptr};
};

// Bytes of one rank's area for publications of up to directBytes.
inline size_t directSlotBytes(size_t directBytes) {
  return (sizeof(DirectSlotHeader) + directBytes + 63) / 64 * 64;
}
inline size_t directAreaBytes(size_t directBytes) {
  return sizeof(DirectCtrl) + 2 * directSlotBytes(directBytes);
}

// The view of an area laid out for directBytes (a.base 64-byte aligned; null area: null view).
inline DirectView directView(const SharedArea& a, size_t directBytes) {
  DirectView v;
  if (a.base == nullptr || a.bytes < directAreaBytes(directBytes)) return v;
  v.ctrl = reinterpret_cast<DirectCtrl*>(a.base);
  for (int k = 0; k < 2; ++k) {
    char* slot = a.base + sizeof(DirectCtrl) + k * directSlotBytes(directBytes);
    v.header[k] = reinterpret_cast<DirectSlotHeader*>(slot);
    v.data[k] = slot + sizeof(DirectSlotHeader);
  }
  return v;
}

}  // namespace fccl
