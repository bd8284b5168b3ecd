// fifo.h - a connector: a one-way FIFO of fixed-size slots from one rank to another, with
// monotonically increasing head (slots the receiver released) and tail (slots the sender
// posted) counters, as in NCCL. The memory lives wherever a transport puts it (shm: in the
// receiver's segment, mapped by both); the algorithm layer only sees SendConn / RecvConn.
//
// Ordering: the sender writes a slot's bytes and metadata, then publishes tail with a release
// store; the receiver reads tail with acquire, reads the slot, then releases head. Each
// counter sits on its own cache line so the two sides never write the same line.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include "fccl.h"
#include "src/base/wait.h"

namespace fccl {

constexpr int kMaxFifoSlots = 16;

// What travels with each slot besides the payload: its byte count, and a tag that names the
// operation (sequence number and kind) so mismatched calls across ranks are detected, not
// silently combined.
struct SlotMeta {
  uint32_t bytes;
  uint32_t tag;
  uint64_t msgBytes;  // p2p: the whole message's size (checked against the receive)
};

struct alignas(64) FifoCtrl {
  alignas(64) std::atomic<uint64_t> tail;  // written by the sender
  alignas(64) std::atomic<uint64_t> head;  // written by the receiver
  alignas(64) SlotMeta meta[kMaxFifoSlots];
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared-memory counters need lock-free atomics");

// Sender side. acquire() waits for a free slot; post() publishes it.
class SendConn {
 public:
  SendConn() = default;
  SendConn(FifoCtrl* ctrl, char* slots, int nslots, size_t slotBytes, int peer)
      : ctrl_(ctrl), slots_(slots), nslots_(nslots), slotBytes_(slotBytes), peer_(peer) {
    tail_ = ctrl->tail.load(std::memory_order_relaxed);
  }
  bool connected() const { return ctrl_ != nullptr; }
  size_t slotBytes() const { return slotBytes_; }
  int peer() const { return peer_; }

  bool tryAcquire(char** slot) {
    if (tail_ - headCache_ >= uint64_t(nslots_)) {
      headCache_ = ctrl_->head.load(std::memory_order_acquire);
      if (tail_ - headCache_ >= uint64_t(nslots_)) return false;
    }
    *slot = slots_ + (tail_ % nslots_) * slotBytes_;
    return true;
  }
  fcclResult_t acquire(char** slot, const WaitContext& ctx) {
    return waitUntil(ctx, [&] { return tryAcquire(slot); });
  }
  void post(uint32_t bytes, uint32_t tag, uint64_t msgBytes = 0) {
    SlotMeta& m = ctrl_->meta[tail_ % nslots_];
    m.bytes = bytes;
    m.tag = tag;
    m.msgBytes = msgBytes;
    ctrl_->tail.store(++tail_, std::memory_order_release);
  }

 private:
  FifoCtrl* ctrl_ = nullptr;
  char* slots_ = nullptr;
  int nslots_ = 0;
  size_t slotBytes_ = 0;
  int peer_ = -1;
  uint64_t tail_ = 0;
  uint64_t headCache_ = 0;
};

// Receiver side. tryPeek()/wait() expose the oldest posted slot; release() frees it.
class RecvConn {
 public:
  RecvConn() = default;
  RecvConn(FifoCtrl* ctrl, char* slots, int nslots, size_t slotBytes, int peer)
      : ctrl_(ctrl), slots_(slots), nslots_(nslots), slotBytes_(slotBytes), peer_(peer) {
    head_ = ctrl->head.load(std::memory_order_relaxed);
  }
  bool connected() const { return ctrl_ != nullptr; }
  size_t slotBytes() const { return slotBytes_; }
  int peer() const { return peer_; }

  bool tryPeek(const char** data, const SlotMeta** meta) {
    if (tailCache_ <= head_) {
      tailCache_ = ctrl_->tail.load(std::memory_order_acquire);
      if (tailCache_ <= head_) return false;
    }
    *data = slots_ + (head_ % nslots_) * slotBytes_;
    *meta = &ctrl_->meta[head_ % nslots_];
    return true;
  }
  fcclResult_t wait(const char** data, const SlotMeta** meta, const WaitContext& ctx) {
    return waitUntil(ctx, [&] { return tryPeek(data, meta); });
  }
  void release() { ctrl_->head.store(++head_, std::memory_order_release); }

 private:
  FifoCtrl* ctrl_ = nullptr;
  char* slots_ = nullptr;
  int nslots_ = 0;
  size_t slotBytes_ = 0;
  int peer_ = -1;
  uint64_t head_ = 0;
  uint64_t tailCache_ = 0;
};

}  // namespace fccl
