// ring.h - what every ring algorithm needs to know about its place in the ring, and the
// chunking rule they share. Nothing here knows transports or backends.
#pragma once
#include <algorithm>
#include <cstddef>
#include "collectives/hooks.h"
#include "src/checks.h"

namespace fccl {

struct RingArgs {
  int rank;
  int nranks;
  size_t count;       // AllReduce/Broadcast/Reduce: elements; ReduceScatter/AllGather: per-rank block
  size_t elemSize;
  size_t chunkElems;  // at most one FIFO slot
  int root;           // Broadcast / Reduce
  const char* send;
  char* recv;
};

inline int ringMod(int x, int n) { return ((x % n) + n) % n; }

// Elements per rank-block of one ring loop over `remaining` elements: an even share, rounded
// up to a cache line so every chunk but the last starts aligned, capped at one slot.
inline size_t ringShare(size_t remaining, int nranks, size_t elemSize, size_t chunkElems) {
  size_t line = std::max<size_t>(1, 64 / elemSize);
  size_t share = (remaining + nranks - 1) / nranks;
  share = (share + line - 1) / line * line;
  return std::min(share, chunkElems);
}

}  // namespace fccl
