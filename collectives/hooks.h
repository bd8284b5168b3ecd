// hooks.h - the host's hooks (the contract and the identity hook: hook_contract.h): NCCL's
// post-ops (CollHook), a fused program's run-time reduced hook (FnHook), and the wait for a
// producer's chunks (ReadyHook). Host only: they call the host reduce kernels, function
// pointers and the waiter.
#pragma once
#include <cstddef>
#include <cstdio>
#include <cstring>
#include "collectives/hook_contract.h"
#include "collectives/ready.h"
#include "collectives/reduce_kernels.h"
#include "fccl.h"
#include "src/base/wait.h"

namespace fccl {

// The hook behind NCCL's own post-ops: PreMulSum scales each input as it is loaded, Avg
// divides the reduced sum by nranks (integers truncate, like NCCL's FuncSumPostDiv).
struct CollHook {
  static constexpr bool kHasLoad = true;
  static constexpr bool kHasReduced = true;
  static constexpr bool kHasGathered = false;
  static constexpr bool kHasInputWait = false;
  fcclDataType_t type;
  const void* scalar = nullptr;  // non-null: PreMulSum
  int divisor = 1;               // > 1: Avg

  void load(const ChunkDesc& d, void* dst, const void* src) {
    if (scalar != nullptr)
      scale(type, dst, src, scalar, d.count);
    else if (dst != src)
      memcpy(dst, src, d.count * dtypeSize(type));
  }
  void reduced(const ChunkDesc& d, void* data) {
    if (divisor > 1) divide(type, data, data, divisor, d.count);
  }
  void gathered(const ChunkDesc&, void*) {}
  fcclResult_t waitInput(const ChunkDesc&) { return fcclSuccess; }
  bool ownOutputWritten() const { return false; }
};

// A hook that calls back into code compiled at run time (the fusion executor): `reduced` gets
// each fully reduced chunk of this rank's slice (after Avg's division) and may rewrite it in
// place; for AllReduce the rewritten chunk is what the all-gather phase distributes and what
// lands in the output buffer. `user` is passed through untouched.
struct FnHook {
  static constexpr bool kHasLoad = false;
  static constexpr bool kHasReduced = true;
  static constexpr bool kHasGathered = false;
  static constexpr bool kHasInputWait = false;
  using ReducedFn = fcclResult_t (*)(void* user, const ChunkDesc& d, void* data);
  ReducedFn fn = nullptr;
  void* user = nullptr;
  fcclDataType_t type = fcclFloat32;
  int divisor = 1;
  fcclResult_t status = fcclSuccess;  // the first failure of fn; the collective still completes
  // fn already stored its result in the output buffer at the chunk's place (a fused program
  // writing its replicated result there), so the primitive skips that copy.
  bool writesOutput = false;

  // Optional, with writesOutput: the same hook out of place. The primitive then reduces into its
  // private scratch (`in`, cache-resident, never read by a peer) and fnTo writes the chunk that
  // is passed on straight into the FIFO slot (`out`), so the shared slot is written once instead
  // of twice (the reduction, then the hook's result). Profiled on the 64 MiB fused Adam step, 2
  // ranks: the reduction's CPU time per rank and step 4.9 -> 2.5 ms (perf/fused_perf).
  using ReducedToFn = fcclResult_t (*)(void* user, const ChunkDesc& d, void* in, void* out);
  ReducedToFn fnTo = nullptr;

  // Optional, with writesOutput, for a sum: the reduction itself inside the hook (the final
  // reduce step of an allreduce ring). fnReduceTo reads the received partial `in` and this
  // rank's own chunk `own`, and writes the chunk passed on into `out` (the FIFO slot): no
  // reduced chunk is stored anywhere. 64 MiB fused Adam step, 2 ranks, five A/B pairs of
  // fused_perf -n 50: 11.7-12.0 -> 10.4-10.8 ms (the JIT's ring entry, cpu_emit.h RingFusion).
  using ReduceToFn = fcclResult_t (*)(void* user, const ChunkDesc& d, const void* in, const void* own,
                                      void* out, int divisor);
  ReduceToFn fnReduceTo = nullptr;

  void load(const ChunkDesc&, void*, const void*) {}
  bool reducesPairTo() const { return fnReduceTo != nullptr && writesOutput; }
  void reducePairTo(const ChunkDesc& d, const void* in, const void* own, void* out) {
    if (status == fcclSuccess) status = fnReduceTo(user, d, in, own, out, divisor);
    if (status == fcclSuccess) return;
    // After a failure the collective still completes: pass the reduced values on.
    const void* srcs[2] = {in, own};
    reduceN(type, fcclSum, out, srcs, 2, d.count);
    if (divisor > 1) divide(type, out, out, divisor, d.count);
  }
  void reduced(const ChunkDesc& d, void* data) {
    if (divisor > 1) divide(type, data, data, divisor, d.count);
    if (status == fcclSuccess) status = fn(user, d, data);
  }
  bool reducesTo() const { return fnTo != nullptr && writesOutput; }
  void reducedTo(const ChunkDesc& d, void* in, void* out) {
    if (divisor > 1) divide(type, in, in, divisor, d.count);
    if (status == fcclSuccess) status = fnTo(user, d, in, out);
    // After a failure the collective still completes: pass the reduced values on, as in place.
    if (status != fcclSuccess) memcpy(out, in, d.count * dtypeSize(type));
  }
  void gathered(const ChunkDesc&, void*) {}
  fcclResult_t waitInput(const ChunkDesc&) { return fcclSuccess; }
  bool ownOutputWritten() const { return writesOutput; }
};

// fcclAllReduceOverlap: Base (IdentityHook or CollHook) plus a bounded, abortable wait until
// the producer has marked the input chunk ready. `wait` is the collective's wait context.
template <class Base>
struct ReadyHook : Base {
  static constexpr bool kHasInputWait = true;
  fcclReady* ready = nullptr;
  WaitContext wait;
  uint64_t seen = UINT64_MAX;  // ready->marks at the last slow check
  char what[96] = "";

  fcclResult_t waitInput(const ChunkDesc& d) {
    const size_t b = d.offset, e = d.offset + d.count;
    if (ready->covers(b, e, &seen)) return fcclSuccess;
    snprintf(what, sizeof(what), "input chunk [%zu, %zu) to be marked ready by the producer", b, e);
    wait.what = what;
    wait.peer = -1;
    return waitUntil(wait, [&] { return ready->covers(b, e, &seen); });
  }
};

}  // namespace fccl
