// ring.h - what every ring algorithm needs to know about its place in the ring, and the
// chunking rule they share. Nothing here knows transports or backends, and everything here
// compiles as host and as device code (FCCL_HD): the same algorithm templates drive the host
// primitives (prims_host.h) and the CUDA ones (prims_device.cuh). So no logging, exceptions or
// library calls in them: errors are result codes (FCCL_ALGO_CHECK), minima are minSize.
#pragma once
#include <cstddef>
#include <cstdint>
#include "fccl.h"

#if defined(__CUDACC__)
#define FCCL_HD __host__ __device__
#else
#define FCCL_HD
#endif

// Inside an algorithm: propagate a primitive's failure. The primitive already recorded why
// (host: setError's sentence; device: the comm's error word), so nothing is logged here.
#define FCCL_ALGO_CHECK(call)                     \
  do {                                            \
    fcclResult_t algoRes_ = (call);               \
    if (algoRes_ != fcclSuccess) return algoRes_; \
  } while (0)

namespace fccl {

struct ChunkDesc {
  size_t offset;  // first element of the chunk within the logical tensor (block-relative for RS/AG)
  size_t count;   // elements
  int step;       // step of the algorithm (0 = first send)
  int block;      // which rank's block the chunk belongs to
};

struct RingArgs {
  int rank;
  int nranks;
  size_t count;  // AllReduce/Broadcast/Reduce: elements; ReduceScatter/AllGather: per-rank block
  size_t elemSize;
  size_t chunkElems;  // at most one FIFO slot
  int root;           // Broadcast / Reduce
  const char* send;
  char* recv;
  // This executor's share of the algorithm's loop: offsets [partBegin, partEnd) within a block
  // (or slice). The host runs the whole range; a CUDA kernel gives each channel (CTA) one part,
  // so channels never share a chunk and each keeps its own FIFO steps.
  size_t partBegin = 0;
  size_t partEnd = SIZE_MAX;
};

FCCL_HD inline int ringMod(int x, int n) { return ((x % n) + n) % n; }
FCCL_HD inline size_t minSize(size_t a, size_t b) { return a < b ? a : b; }

// The end of this executor's loop over offsets [0, total) of a block or slice.
FCCL_HD inline size_t partEnd(const RingArgs& a, size_t total) { return minSize(total, a.partEnd); }

}  // namespace fccl
