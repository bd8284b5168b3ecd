// allreduce_ring.h - ring allreduce: a reduce-scatter pass then an all-gather pass, chunk by
// chunk, so that each element crosses each link twice whatever the rank count (bandwidth
// optimal). Rank r owns the contiguous slice [r*S, min(count, (r+1)*S)), S = ceil(count/n),
// the same partition as a `sliced` tensor of the fusion IR (fusion/ir/ir.h sliceRange): the
// reduced hook therefore runs on exactly the elements whose sliced state this rank keeps.
// nranks >= 2.
#pragma once
#include "collectives/ring.h"

namespace fccl {

template <class Prims>
FCCL_HD fcclResult_t allReduceRing(Prims& p, const RingArgs& a) {
  const int n = a.nranks;
  const size_t slice = (a.count + n - 1) / n;
  // Each loop moves one chunk of every rank's slice; the tail of the last slices may be empty.
  const size_t last = partEnd(a, slice);
  for (size_t off = a.partBegin; off < last; off += a.chunkElems) {
    const size_t len = minSize(a.chunkElems, last - off);
    auto desc = [&](int j, int step) {
      size_t begin = minSize(a.count, size_t(j) * slice + off);
      size_t end = minSize(a.count, size_t(j) * slice + off + len);
      return ChunkDesc{begin, end - begin, step, j};
    };
    auto at = [&](const char* buf, const ChunkDesc& d) { return buf + d.offset * a.elemSize; };
    auto atw = [&](char* buf, const ChunkDesc& d) { return buf + d.offset * a.elemSize; };
    int step = 0;
    // Reduce-scatter: our contribution to slice r-1 starts its trip around the ring.
    ChunkDesc d = desc(ringMod(a.rank - 1, n), step++);
    FCCL_ALGO_CHECK(p.send(at(a.send, d), d));
    // n-2 steps: add our contribution to the partial sum and pass it on.
    for (int j = 2; j < n; ++j) {
      d = desc(ringMod(a.rank - j, n), step++);
      FCCL_ALGO_CHECK(p.recvReduceSend(at(a.send, d), d));
    }
    // Our slice's chunk is now complete here: final value (reduced hook), stored and sent on.
    d = desc(a.rank, step++);
    FCCL_ALGO_CHECK(p.recvReduceCopySend(at(a.send, d), atw(a.recv, d), d));
    // All-gather: n-2 steps of forwarding finished chunks.
    for (int j = 1; j < n - 1; ++j) {
      d = desc(ringMod(a.rank - j, n), step++);
      FCCL_ALGO_CHECK(p.recvCopySend(atw(a.recv, d), d));
    }
    // The chunk of slice r+1 arrives from prev and goes no further.
    d = desc(ringMod(a.rank + 1, n), step++);
    FCCL_ALGO_CHECK(p.recv(atw(a.recv, d), d));
  }
  return fcclSuccess;
}

}  // namespace fccl
