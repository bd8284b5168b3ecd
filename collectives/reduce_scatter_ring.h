// reduce_scatter_ring.h - ring reduce-scatter: block j of every rank travels the ring starting
// at rank j+1, accumulating one contribution per hop, and completes at rank j (where the
// reduced hook runs). Each element crosses each link once. nranks >= 2.
#pragma once
#include "collectives/ring.h"

namespace fccl {

template <class Prims>
FCCL_HD fcclResult_t reduceScatterRing(Prims& p, const RingArgs& a) {
  const int n = a.nranks;
  const size_t last = partEnd(a, a.count);
  for (size_t off = a.partBegin; off < last; off += a.chunkElems) {
    const size_t count = minSize(a.chunkElems, last - off);
    auto src = [&](int block) { return a.send + (size_t(block) * a.count + off) * a.elemSize; };
    int step = 0;
    // Our contribution to block r-1 starts the chain that ends at rank r-1.
    int block = ringMod(a.rank - 1, n);
    FCCL_ALGO_CHECK(p.send(src(block), ChunkDesc{off, count, step++, block}));
    for (int j = 2; j < n; ++j) {
      block = ringMod(a.rank - j, n);
      FCCL_ALGO_CHECK(p.recvReduceSend(src(block), ChunkDesc{off, count, step++, block}));
    }
    // Our own block arrives with everyone else's contribution: add ours, store the result.
    FCCL_ALGO_CHECK(
        p.recvReduceCopy(src(a.rank), a.recv + off * a.elemSize, ChunkDesc{off, count, step++, a.rank}));
  }
  return fcclSuccess;
}

}  // namespace fccl
