// cpu_emit.h - emits one self-contained C++ translation unit (only <cstdint>, <cmath>, <cstring>)
// that runs a list of pointwise statements of a checked program with exactly the semantics of
// the tile VM (fusion/exec/pointwise.h: compute types, rounding, integer and NaN rules, dropout,
// scalar hoisting). The unit exports two C entries (kJitRunSymbol, kJitScalarsSymbol) taking a
// JitArgs; cpu_jit.h compiles it with the system compiler and loads it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fusion/ir/ir.h"

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
using JitRunFn = void (*)(const JitArgs*, long long, long long);
using JitScalarsFn = void (*)(const JitArgs*, double*);
inline constexpr const char* kJitRunSymbol = "fccl_jit_run";
inline constexpr const char* kJitScalarsSymbol = "fccl_jit_scalars";

struct EmittedUnit {
  std::string source;         // the translation unit
  int32_t maxScalarVar = -1;  // largest var index the entries read from or write to `scalars`
  bool hasScalarResults = false;
};

// The unit for `stmts` (indices into p.stmts; the same contract as PointwiseKernel::compile).
// false + *error for anything the tile VM would reject (collectives, whole-tensor reductions,
// unchecked programs, an op undefined on its type).
bool emitCpuUnit(const ir::Program& p, const std::vector<int32_t>& stmts, EmittedUnit* out,
                 std::string* error);

// The fixed head of every unit (cpu_prelude.cc): includes, FcclJitArgs, conversion helpers and
// fusion/ir/dropout.h verbatim.
std::string cpuPrelude();

}  // namespace fccl::fusion::jit
