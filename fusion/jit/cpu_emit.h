// cpu_emit.h - emits one self-contained C++ translation unit (only <cstdint>, <cmath>, <cstring>)
// that runs a lowered pointwise form (fusion/lowered/pointwise_form.h: every type, rounding,
// integer and NaN rule, dropout, which values are computed once per call) - the same form the
// tile VM runs, so the two agree bit for bit. The unit exports two C entries (kJitRunSymbol,
// kJitScalarsSymbol) taking a JitArgs; cpu_jit.h compiles it with the system compiler and loads it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fusion/ir/ir.h"
#include "fusion/lowered/pointwise_form.h"

namespace fccl::fusion::jit {

// The argument block of the emitted entries; the emitted unit declares the same layout as
// `struct FcclJitArgs` (cpu_emit.cc's prelude), so keep the two in step. `tensors` has the layout
// of fusion::Bindings::tensors' elements (data, base) and `scalars` is Bindings::scalars, so the
// wrapper passes a Bindings' arrays as they are.
struct JitTensor {
  void* data;
  long long base;  // logical index of data[0]
};
struct JitArgs {
  const JitTensor* tensors;
  long long ntensors;
  const double* scalars;
  long long nscalars;
  int rank, nranks;
};
// void fccl_jit_run(const FcclJitArgs* a, long long begin, long long end): logical [begin, end).
// void fccl_jit_scalars(const FcclJitArgs* a, double* scalars): scalar results into scalars[var].
// void fccl_jit_run_ring(const FcclJitArgs* a, long long begin, long long end, const void* own,
//                        void* forward, int divisor): only in a unit emitted with a RingFusion.
using JitRunFn = void (*)(const JitArgs*, long long, long long);
using JitScalarsFn = void (*)(const JitArgs*, double*);
using JitRunRingFn = void (*)(const JitArgs*, long long, long long, const void*, void*, int);
inline constexpr const char* kJitRunSymbol = "fccl_jit_run";
inline constexpr const char* kJitScalarsSymbol = "fccl_jit_scalars";
inline constexpr const char* kJitRunRingSymbol = "fccl_jit_run_ring";

// A fused step's kernel run on the ring's own buffers (the final reduce step of an allreduce
// ring, collectives/hooks.h FnHook::fnReduceTo): fccl_jit_run_ring reads `reducedVar` as the
// received partial (its binding) plus this rank's own chunk (`own`), divided by `divisor` when
// it is above 1 (fcclAvg), and stores `forwardVar` both to its binding and to `forward` (the
// outgoing FIFO slot). The reduced chunk is never stored and the forwarded one never copied:
// the loop reads each input and writes each output once, as CoCoNeT's fused kernels do.
// Rounding is reduceN's and divide()'s (a + b, then / divisor, in the element type), so the
// results equal the unfused path's bit for bit. Emitted only for f32 / f64 reduced values, a
// reducedVar the step never stores and a forwardVar it stores (EmittedUnit::hasRing).
struct RingFusion {
  int32_t reducedVar = -1;
  int32_t forwardVar = -1;
};

struct EmittedUnit {
  std::string source;         // the translation unit
  int32_t maxScalarVar = -1;  // largest var index the entries read from or write to `scalars`
  bool hasScalarResults = false;
  bool hasRing = false;  // the unit exports kJitRunRingSymbol
};

// The unit for form f; false + *error for a form with node slots (only CUDA reads those). With
// `ring` (both vars >= 0) the unit also exports the ring entry where the form allows it.
bool emitCpuUnit(const lowered::PointwiseForm& f, EmittedUnit* out, std::string* error);
bool emitCpuUnit(const lowered::PointwiseForm& f, const RingFusion& ring, EmittedUnit* out,
                 std::string* error);
// lowered::buildForm(p, stmts) (its errors: collectives, whole-tensor reductions, unchecked
// programs, an op undefined on its type), then the above.
bool emitCpuUnit(const ir::Program& p, const std::vector<int32_t>& stmts, EmittedUnit* out,
                 std::string* error);

// The fixed head of every unit (cpu_prelude.cc): includes, FcclJitArgs, conversion helpers and
// fusion/ir/dropout.h verbatim.
std::string cpuPrelude();

}  // namespace fccl::fusion::jit
