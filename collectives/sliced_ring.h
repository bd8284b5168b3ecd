// sliced_ring.h - reduce-scatter and all-gather over the `sliced` partition of the fusion IR:
// rank r owns [r*S, min(count, (r+1)*S)), S = ceil(count/n) - the same partition and chunk
// schedule as allReduceRing's two halves, for any count (NCCL's ReduceScatter/AllGather need
// equal blocks). Used by fused programs: a reduce-scatter whose reduced hook updates sliced
// state, and the all-gather of the replicated results. nranks >= 2.
//   reduceScatterSlicedRing: send holds all `count` elements; recv is this rank's slice storage.
//   allGatherSlicedRing:     send is this rank's slice storage; recv holds all `count` elements
//                            (in place when send == recv + begin).
#pragma once
#include "collectives/ring.h"

namespace fccl {

// Chunk `off` (of length len, within the slice) of slice j.
struct SlicedChunks {
  size_t count, slice, off, len;
  FCCL_HD ChunkDesc at(int j, int step) const {
    size_t begin = minSize(count, size_t(j) * slice + off);
    size_t end = minSize(count, size_t(j) * slice + off + len);
    return ChunkDesc{begin, end - begin, step, j};
  }
};

template <class Prims>
FCCL_HD fcclResult_t reduceScatterSlicedRing(Prims& p, const RingArgs& a) {
  const int n = a.nranks;
  const size_t slice = (a.count + n - 1) / n;
  const size_t ownBegin = minSize(a.count, size_t(a.rank) * slice);
  const size_t last = partEnd(a, slice);
  for (size_t off = a.partBegin; off < last; off += a.chunkElems) {
    SlicedChunks c{a.count, slice, off, minSize(a.chunkElems, last - off)};
    auto src = [&](const ChunkDesc& d) { return a.send + d.offset * a.elemSize; };
    int step = 0;
    // Our contribution to slice r-1 starts the chain that completes at rank r-1.
    ChunkDesc d = c.at(ringMod(a.rank - 1, n), step++);
    FCCL_ALGO_CHECK(p.send(src(d), d));
    for (int j = 2; j < n; ++j) {
      d = c.at(ringMod(a.rank - j, n), step++);
      FCCL_ALGO_CHECK(p.recvReduceSend(src(d), d));
    }
    // Our slice arrives with every other contribution: add ours, store into slice storage.
    d = c.at(a.rank, step++);
    FCCL_ALGO_CHECK(
        p.recvReduceCopy(src(d), a.recv + (d.offset - minSize(d.offset, ownBegin)) * a.elemSize, d));
  }
  return fcclSuccess;
}

template <class Prims>
FCCL_HD fcclResult_t allGatherSlicedRing(Prims& p, const RingArgs& a) {
  const int n = a.nranks;
  const size_t slice = (a.count + n - 1) / n;
  const size_t ownBegin = minSize(a.count, size_t(a.rank) * slice);
  const size_t last = partEnd(a, slice);
  for (size_t off = a.partBegin; off < last; off += a.chunkElems) {
    SlicedChunks c{a.count, slice, off, minSize(a.chunkElems, last - off)};
    auto dst = [&](const ChunkDesc& d) { return a.recv + d.offset * a.elemSize; };
    int step = 0;
    // Our slice's chunk: into the full output (unless in place) and off to next.
    ChunkDesc d = c.at(a.rank, step++);
    FCCL_ALGO_CHECK(p.copySend(a.send + (d.offset - minSize(d.offset, ownBegin)) * a.elemSize, dst(d), d));
    // n-2 chunks of other slices pass through us.
    for (int j = 1; j < n - 1; ++j) {
      d = c.at(ringMod(a.rank - j, n), step++);
      FCCL_ALGO_CHECK(p.recvCopySend(dst(d), d));
    }
    // The chunk of slice r+1 has gone all the way round and stops here.
    d = c.at(ringMod(a.rank + 1, n), step++);
    FCCL_ALGO_CHECK(p.recv(dst(d), d));
  }
  return fcclSuccess;
}

}  // namespace fccl
