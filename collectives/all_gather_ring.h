// all_gather_ring.h - ring all-gather: each rank's block travels n-1 hops around the ring and
// every rank keeps a copy as it passes. Each element crosses each link once. nranks >= 2.
#pragma once
#include "collectives/ring.h"

namespace fccl {

template <class Prims>
FCCL_HD fcclResult_t allGatherRing(Prims& p, const RingArgs& a) {
  const int n = a.nranks;
  const size_t last = partEnd(a, a.count);
  for (size_t off = a.partBegin; off < last; off += a.chunkElems) {
    const size_t count = minSize(a.chunkElems, last - off);
    auto dst = [&](int block) { return a.recv + (size_t(block) * a.count + off) * a.elemSize; };
    int step = 0;
    // Our block: into our output (unless in place) and off to next.
    FCCL_ALGO_CHECK(
        p.copySend(a.send + off * a.elemSize, dst(a.rank), ChunkDesc{off, count, step++, a.rank}));
    // n-2 blocks pass through us.
    for (int j = 1; j < n - 1; ++j) {
      int block = ringMod(a.rank - j, n);
      FCCL_ALGO_CHECK(p.recvCopySend(dst(block), ChunkDesc{off, count, step++, block}));
    }
    // The block of rank r+1 has gone all the way round and stops here.
    int block = ringMod(a.rank + 1, n);
    FCCL_ALGO_CHECK(p.recv(dst(block), ChunkDesc{off, count, step++, block}));
  }
  return fcclSuccess;
}

}  // namespace fccl
