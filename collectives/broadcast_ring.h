// broadcast_ring.h - pipelined chain broadcast along the ring from the root: each chunk is
// forwarded as soon as it arrives, so large messages cost about one message time, not n-1.
#pragma once
#include "collectives/ring.h"

namespace fccl {

template <class Prims>
fcclResult_t broadcastRing(Prims& p, const RingArgs& a) {
  const int n = a.nranks;
  const int pos = ringMod(a.rank - a.root, n);  // 0 = root, n-1 = end of the chain
  for (size_t off = 0; off < a.count; off += a.chunkElems) {
    const ChunkDesc d{off, std::min(a.chunkElems, a.count - off), 0, a.root};
    char* dst = a.recv + off * a.elemSize;
    if (pos == 0) {
      FCCL_CHECK(p.copySend(a.send + off * a.elemSize, dst, d));
    } else if (pos < n - 1) {
      FCCL_CHECK(p.recvCopySend(dst, d));
    } else {
      FCCL_CHECK(p.recv(dst, d));
    }
  }
  return fcclSuccess;
}

}  // namespace fccl
