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
  size_t count;  // AllReduce/Broadcast/Reduce: elements; ReduceScatter/AllGather: per-rank block
  size_t elemSize;
  size_t chunkElems;  // at most one FIFO slot
  int root;           // Broadcast / Reduce
  const char* send;
  char* recv;
};

inline int ringMod(int x, int n) { return ((x % n) + n) % n; }

}  // namespace fccl
