// reduce_ring.h - pipelined chain reduce along the ring, ending at the root: the chain starts
// at root+1, each rank adds its contribution, the root adds its own and stores the result
// (reduced hook there).
#pragma once
#include "collectives/ring.h"

namespace fccl {

template <class Prims>
FCCL_HD fcclResult_t reduceRing(Prims& p, const RingArgs& a) {
  const int n = a.nranks;
  const int pos = ringMod(a.rank - a.root - 1, n);  // 0 = root+1 starts, n-1 = root
  const size_t last = partEnd(a, a.count);
  for (size_t off = a.partBegin; off < last; off += a.chunkElems) {
    const ChunkDesc d{off, minSize(a.chunkElems, last - off), pos, a.root};
    const char* src = a.send + off * a.elemSize;
    if (pos == 0) {
      FCCL_ALGO_CHECK(p.send(src, d));
    } else if (pos < n - 1) {
      FCCL_ALGO_CHECK(p.recvReduceSend(src, d));
    } else {
      FCCL_ALGO_CHECK(p.recvReduceCopy(src, a.recv + off * a.elemSize, d));
    }
  }
  return fcclSuccess;
}

}  // namespace fccl
