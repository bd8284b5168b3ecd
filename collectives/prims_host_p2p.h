// prims_host_p2p.h - the host primitives of the point-to-point batch (p2p.h): one slot of a
// message at a time, to or from any peer, on the FIFOs of every connection. Every slot carries
// the whole message's size, so a receive of the wrong size is an error, not a truncation.
#pragma once
#include <algorithm>
#include <cstring>
#include <memory>
#include "collectives/coll.h"
#include "collectives/p2p.h"
#include "src/base/error.h"
#include "src/base/wait.h"
#include "transports/fifo.h"

namespace fccl {

class HostP2pPrims {
 public:
  static constexpr uint32_t kTag = 0x50325000u;  // "P2P"; p2p matching needs no sequence number

  HostP2pPrims(Connections* conns, int rank, WaitContext& wait) : conns_(conns), rank_(rank), wait_(wait) {}

  bool trySend(int peer, const char* src, size_t bytes, uint64_t msgBytes, size_t* moved) {
    SendConn& c = conns_->send[peer];
    char* slot;
    if (!c.tryAcquire(&slot)) return false;
    *moved = std::min(c.slotBytes(), bytes);
    memcpy(slot, src, *moved);
    c.post(uint32_t(*moved), kTag, msgBytes);
    return true;
  }

  fcclResult_t tryRecv(int peer, char* dst, size_t room, uint64_t msgBytes, size_t* moved) {
    RecvConn& c = conns_->recv[peer];
    const char* data;
    const SlotMeta* slotMeta;
    *moved = 0;
    if (!c.tryPeek(&data, &slotMeta)) return fcclSuccess;
    // One read of the metadata the peer wrote: the bytes checked are the bytes copied.
    const SlotMeta meta = *slotMeta;
    if (meta.tag != kTag || meta.msgBytes != msgBytes || meta.bytes > room)
      return setError(
          fcclInvalidUsage,
          "rank %d: fcclRecv of %llu bytes from rank %d, but rank %d sent %llu bytes (tag %08x)%s", rank_,
          (unsigned long long)msgBytes, peer, peer, (unsigned long long)meta.msgBytes, meta.tag,
          meta.tag != kTag ? ": it is running a collective, not a send" : "");
    // A sender fills every slot but a message's last (never empty); more than a slot holds
    // would read past it.
    if (meta.bytes == 0 || meta.bytes > c.slotBytes())
      return setError(
          fcclInternalError,
          "rank %d: fcclRecv from rank %d: a FIFO slot claims %u bytes, but a slot holds 1 to %zu "
          "(corrupted metadata)",
          rank_, peer, meta.bytes, c.slotBytes());
    memcpy(dst, data, meta.bytes);
    c.release();
    *moved = meta.bytes;
    return fcclSuccess;
  }

  fcclResult_t localCopy(const P2pTransfer& recv, const P2pTransfer& send) {
    if (send.bytes != recv.bytes)
      return setError(fcclInvalidUsage,
                      "rank %d: fcclSend of %zu bytes to itself met an fcclRecv of %zu bytes", rank_,
                      send.bytes, recv.bytes);
    if (recv.buf != send.buf) memmove(recv.buf, send.buf, send.bytes);
    return fcclSuccess;
  }

  fcclResult_t unmatchedSelf() const {
    return setError(fcclInvalidUsage,
                    "rank %d: a send to itself has no matching receive in the same group (or vice versa)",
                    rank_);
  }

  // Nothing moved this round: pause (spin, yield, nap; bounded and abortable), waiting on `peer`.
  fcclResult_t stalled(int peer, bool receiving) {
    if (!waiter_) {
      wait_.peer = peer;
      wait_.what = receiving ? "data to receive" : "a free slot to send into";
      waiter_ = std::make_unique<Waiter>(wait_);
    }
    return waiter_->pause();
  }
  void progressed() { waiter_.reset(); }

 private:
  Connections* conns_;
  const int rank_;
  WaitContext& wait_;
  std::unique_ptr<Waiter> waiter_;  // alive while progress stalls
};

}  // namespace fccl
