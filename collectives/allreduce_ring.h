// allreduce_ring.h - ring allreduce: a reduce-scatter pass then an all-gather pass, chunk by
// chunk, so that each element crosses each link twice whatever the rank count (bandwidth
// optimal). Rank r ends the reduce-scatter pass owning block r, which is where the reduced
// hook runs (on 1/n of the data). nranks >= 2.
#pragma once
#include "collectives/ring.h"

namespace fccl {

template <class Prims>
fcclResult_t allReduceRing(Prims& p, const RingArgs& a) {
  const int n = a.nranks;
  const size_t loopElems = a.chunkElems * n;
  for (size_t base = 0; base < a.count; base += loopElems) {
    const size_t remaining = std::min(loopElems, a.count - base);
    const size_t share = ringShare(remaining, n, a.elemSize, a.chunkElems);
    // Block j of this loop: [base + j*share, ...), possibly empty at the tail.
    auto desc = [&](int j, int step) {
      size_t start = std::min(remaining, size_t(j) * share);
      size_t count = std::min(share, remaining - start);
      return ChunkDesc{base + start, count, step, j};
    };
    auto at = [&](const char* buf, const ChunkDesc& d) { return buf + d.offset * a.elemSize; };
    auto atw = [&](char* buf, const ChunkDesc& d) { return buf + d.offset * a.elemSize; };
    int step = 0;
    // Reduce-scatter: our own block r-1 starts its trip around the ring.
    ChunkDesc d = desc(ringMod(a.rank - 1, n), step++);
    FCCL_CHECK(p.send(at(a.send, d), d));
    // n-2 steps: add our contribution to the partial sum and pass it on.
    for (int j = 2; j < n; ++j) {
      d = desc(ringMod(a.rank - j, n), step++);
      FCCL_CHECK(p.recvReduceSend(at(a.send, d), d));
    }
    // Block r is now complete here: final value (reduced hook), stored and sent on.
    d = desc(a.rank, step++);
    FCCL_CHECK(p.recvReduceCopySend(at(a.send, d), atw(a.recv, d), d));
    // All-gather: n-2 steps of forwarding finished blocks.
    for (int j = 1; j < n - 1; ++j) {
      d = desc(ringMod(a.rank - j, n), step++);
      FCCL_CHECK(p.recvCopySend(atw(a.recv, d), d));
    }
    // The last block arrives from prev and goes no further.
    d = desc(ringMod(a.rank + 1, n), step++);
    FCCL_CHECK(p.recv(atw(a.recv, d), d));
  }
  return fcclSuccess;
}

}  // namespace fccl
