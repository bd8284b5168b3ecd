// cpu_jit.h - CpuJitKernel: a step's lowered pointwise form as native code. compile() emits a
// C++ unit (cpu_emit.h), compiles it with the system compiler into a private on-disk cache keyed
// by a hash of (unit, compiler, flags, CPU), and loads it; run()/runScalars() call the loaded
// code. Same contract and results as PointwiseKernel (fusion/exec/pointwise.h); when compile()
// fails the caller runs the VM instead. Thread-compatible like the VM: run() is const and may run
// on many threads at once on disjoint ranges; compile() of one kernel from many threads or
// processes at once is safe (the cache renames finished files into place atomically).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fusion/exec/pointwise.h"
#include "fusion/jit/cpu_emit.h"

namespace fccl::fusion::jit {

struct JitOptions {
  std::string compiler = "c++";  // FCCL_JIT_CXX: a path or a name searched in PATH; run as argv[0]
  std::string cacheDir;          // FCCL_JIT_CACHE (resolved by env.cc); must be set
  int timeoutMs = 120000;        // a compiler run taking longer is killed and compile() fails
};

class CpuJitKernel {
 public:
  explicit CpuJitKernel(JitOptions options = {}) : opts_(std::move(options)) {}

  // As PointwiseKernel::compile. false + *error (what failed: no compiler, the compiler's
  // log, an unusable cache directory, dlopen) and the kernel stays unusable.
  bool compile(const lowered::PointwiseForm& f, std::string* error);
  // With the ring entry as well where the form allows it (cpu_emit.h RingFusion; hasRing()).
  bool compile(const lowered::PointwiseForm& f, const RingFusion& ring, std::string* error);
  bool compile(const ir::Program& p, const std::vector<int32_t>& stmts, std::string* error);

  // As PointwiseKernel::run / runScalars; compile() must have succeeded.
  void run(int64_t begin, int64_t end, const Bindings& b) const;
  void runScalars(const Bindings& b, std::vector<double>* scalars) const;
  // The ring entry (cpu_emit.h RingFusion): b binds the reduced var to the received partial;
  // `own` and `forward` point at element `begin`'s place in this rank's chunk and in the slot.
  bool hasRing() const { return runRing_ != nullptr; }
  void runRing(int64_t begin, int64_t end, const Bindings& b, const void* own, void* forward,
               int divisor) const;

  bool ready() const { return run_ != nullptr; }
  // For logs and tests: whether compile() found the code ready (loaded already in this process,
  // or in the on-disk cache) without running the compiler; its wall time; the shared object.
  bool cacheHit() const { return cacheHit_; }
  double compileSeconds() const { return seconds_; }
  const std::string& library() const { return library_; }

  // The compiler flags: IEEE semantics (no -ffast-math; -ffp-contract=off so no FMA changes a
  // rounding) with the host's full vector width (-march=native; the CPU is part of the key).
  static const std::vector<std::string>& flags();

 private:
  JitOptions opts_;
  JitRunFn run_ = nullptr;
  JitScalarsFn scalars_ = nullptr;
  JitRunRingFn runRing_ = nullptr;
  int32_t maxScalarVar_ = -1;
  bool hasScalarResults_ = false;
  bool cacheHit_ = false;
  double seconds_ = 0;
  std::string library_;
};

}  // namespace fccl::fusion::jit
