// pipeline_wire.h - the header fcclAllReduceSendSliced sends on ppComm before its slice, and
// the receiver's check of it (pipeline_api.cc), a pure function so tests/fuzz/fuzz_transport.cc
// drives the same code. Invariants: slice bounds never overflow, whatever count a header claims;
// a mismatched sender's slice is drained (so ppComm stays usable) only when its size is at most
// pipeDrainCap() - the larger of this call's buffer and 64 MiB - so a corrupt header never sizes
// an allocation beyond that.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include "collectives/reduce_kernels.h"
#include "fccl.h"

namespace fccl {

constexpr uint64_t kPipeMagic = 0x4643434c50495045ull;  // "FCCLPIPE"
constexpr size_t kPipeMinDrainCap = size_t(64) << 20;

// What the sender tells the receiver before the slice, so a mismatched pair of calls is a
// sentence instead of a wrong result (slice sizes alone do not always differ).
struct PipeHeader {
  uint64_t magic, count, type, tpSize, tpRank;
};

struct PipeRange {
  size_t begin, end;
};

// fcclSliceRange: S = ceil(count/n), [min(count, r*S), min(count, (r+1)*S)), for 0 <= r < n.
// r*S <= count + n never wraps for r < n; the end is taken as begin + min(S, count - begin).
inline PipeRange pipeSliceOf(size_t count, int rank, int n) {
  const size_t s = count / size_t(n) + (count % size_t(n) != 0);
  const size_t begin = std::min(count, size_t(rank) * s);
  return PipeRange{begin, begin + std::min(s, count - begin)};
}

inline size_t pipeDrainCap(size_t count, fcclDataType_t type) {
  return std::max(count * dtypeSize(type), kPipeMinDrainCap);
}

// The receiver's verdict on a header: its own call (count, type, tp rank and size) matches,
// the peer did not send a pipeline header at all, or it did for another call; then drainBytes
// is the size of the slice that follows it, or SIZE_MAX when that size is not computable from
// the header or above pipeDrainCap (the slice is then left on ppComm).
struct PipeCheck {
  enum Kind {
    kMatch,
    kNotPipe,
    kMismatch
  } kind;
  size_t drainBytes;
};

inline PipeCheck pipeCheckHeader(const PipeHeader& h, size_t count, fcclDataType_t type, int tpRank,
                                 int tpSize) {
  if (h.magic != kPipeMagic) return {PipeCheck::kNotPipe, SIZE_MAX};
  if (h.count == count && h.type == uint64_t(type) && h.tpSize == uint64_t(tpSize) &&
      h.tpRank == uint64_t(tpRank))
    return {PipeCheck::kMatch, 0};
  if (h.type >= uint64_t(fcclNumTypes) || h.tpSize == 0 || h.tpRank >= h.tpSize || h.tpSize > 0x7fffffff ||
      h.count > SIZE_MAX)
    return {PipeCheck::kMismatch, SIZE_MAX};
  const PipeRange theirs = pipeSliceOf(size_t(h.count), int(h.tpRank), int(h.tpSize));
  const size_t elem = dtypeSize(static_cast<fcclDataType_t>(h.type));
  const size_t elems = theirs.end - theirs.begin;
  if (elem == 0 || elems > pipeDrainCap(count, type) / elem) return {PipeCheck::kMismatch, SIZE_MAX};
  return {PipeCheck::kMismatch, elems * elem};
}

}  // namespace fccl
