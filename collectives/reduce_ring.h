// reduce_ring.h - pipelined chain reduce along the ring, ending at the root: the chain starts
// at root+1, each rank adds its contribution, the root adds its own and stores the result
// (reduced hook there).
#pragma once
#include "collectives/ring.h"

namespace fccl {

template <class Prims>
fcclResult_t reduceRing(Prims& p, const RingArgs& a) {
  const int n = a.nranks;
  const int pos = ringMod(a.rank - a.root - 1, n);  // 0 = root+1 starts, n-1 = root
  for (size_t off = 0; off < a.count; off += a.chunkElems) {
    const ChunkDesc d{off, std::min(a.chunkElems, a.count - off), pos, a.root};
    const char* src = a.send + off * a.elemSize;
    if (pos == 0) {
      FCCL_CHECK(p.send(src, d));
    } else if (pos < n - 1) {
      FCCL_CHECK(p.recvReduceSend(src, d));
    } else {
      FCCL_CHECK(p.recvReduceCopy(src, a.recv + off * a.elemSize, d));
    }
  }
  return fcclSuccess;
}

}  // namespace fccl
