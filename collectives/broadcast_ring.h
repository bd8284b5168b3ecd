// broadcast_ring.h - pipelined chain broadcast along the ring from the root: each chunk is
// forwarded as soon as it arrives, so large messages cost about one message time, not n-1.
#pragma once
#include "collectives/ring.h"

namespace fccl {

template <class Prims>
FCCL_HD fcclResult_t broadcastRing(Prims& p, const RingArgs& a) {
  const int n = a.nranks;
  const int pos = ringMod(a.rank - a.root, n);  // 0 = root, n-1 = end of the chain
  const size_t last = partEnd(a, a.count);
  for (size_t off = a.partBegin; off < last; off += a.chunkElems) {
    const ChunkDesc d{off, minSize(a.chunkElems, last - off), 0, a.root};
    char* dst = a.recv + off * a.elemSize;
    if (pos == 0) {
      FCCL_ALGO_CHECK(p.copySend(a.send + off * a.elemSize, dst, d));
    } else if (pos < n - 1) {
      FCCL_ALGO_CHECK(p.recvCopySend(dst, d));
    } else {
      FCCL_ALGO_CHECK(p.recv(dst, d));
    }
  }
  return fcclSuccess;
}

}  // namespace fccl
