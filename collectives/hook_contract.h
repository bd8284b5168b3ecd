// hook_contract.h - the per-chunk hook points where fused computation runs inside a collective
// (DESIGN.md "Algorithms and hooks"). A hook type provides:
//   load(desc, dst, src)   : when a rank first reads its own input chunk; writes the transformed
//                            chunk to dst (a FIFO slot or scratch). Only called if kHasLoad.
//   reduced(desc, data)    : in place on a fully reduced chunk, on the rank that owns it.
//   gathered(desc, data)   : in place on a replicated chunk this rank received (all-gather phase).
//   ownOutputWritten()     : true when `reduced` also stored the chunk in the output buffer.
//   waitInput(desc)        : before a primitive first reads its own input chunk; returns when
//                            the chunk may be read (or an error). Only called if kHasInputWait.
// Apart from waitInput, a hook may not allocate, block or synchronize: it runs on whatever
// thread drives the collective, between two FIFO operations. The identity hook compiles to
// nothing. This header compiles as device code too (FCCL_HD); the host's own hooks (post-ops,
// run-time function pointers, ready tracking) are in hooks.h.
#pragma once
#include "collectives/ring.h"
#include "fccl.h"

namespace fccl {

struct IdentityHook {
  static constexpr bool kHasLoad = false;
  static constexpr bool kHasReduced = false;
  static constexpr bool kHasGathered = false;
  static constexpr bool kHasInputWait = false;
  FCCL_HD void load(const ChunkDesc&, void*, const void*) {}
  FCCL_HD void reduced(const ChunkDesc&, void*) {}
  FCCL_HD void gathered(const ChunkDesc&, void*) {}
  FCCL_HD fcclResult_t waitInput(const ChunkDesc&) { return fcclSuccess; }
  FCCL_HD bool ownOutputWritten() const { return false; }
};

}  // namespace fccl
