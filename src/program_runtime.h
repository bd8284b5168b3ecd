// program_runtime.h - runs a lowered program (fusion/lowered/schedule.h) on one rank of a
// communicator: checks the user's bindings (src/argcheck.h), gives buffered temporaries
// storage, and runs the steps in order - Pointwise steps with the step's compiled kernel (JIT or
// tile VM), collectives on the communicator, Fused steps as one ring whose reduced hook runs the
// pointwise work on each reduced chunk of this rank's slice (src/program_fused.cc, with the
// overlap pass's producer thread). A Runtime is built once per (program, communicator) and
// launched many times; it is used by one thread at a time, like the communicator.
#pragma once
#include <memory>
#include <string>
#include <vector>
#include "collectives/coll.h"
#include "fccl.h"
#include "fusion/codegen/device_program.h"
#include "fusion/exec/pointwise.h"
#include "fusion/jit/cpu_jit.h"
#include "fusion/lowered/schedule.h"

struct fcclComm;
struct fcclReady;

namespace fccl::fusion {

// A step's compiled pointwise work: the JIT's code where it compiled, else the tile VM.
struct StepKernel {
  const PointwiseKernel* vm = nullptr;
  const jit::CpuJitKernel* jit = nullptr;
  void run(int64_t begin, int64_t end, const Bindings& b) const {
    if (jit != nullptr)
      jit->run(begin, end, b);
    else
      vm->run(begin, end, b);
  }
  // A Fused step's JIT kernel with the ring entry (program_fused.cc; the VM has none).
  bool hasRing() const { return jit != nullptr && jit->hasRing(); }
  void runRing(int64_t begin, int64_t end, const Bindings& b, const void* own, void* forward,
               int divisor) const {
    jit->runRing(begin, end, b, own, forward, divisor);
  }
  void runScalars(const Bindings& b, std::vector<double>* scalars) const {
    if (jit != nullptr)
      jit->runScalars(b, scalars);
    else
      vm->runScalars(b, scalars);
  }
};

class Runtime {
 public:
  // Compiles every Pointwise and Fused step's kernel (the JIT where FCCL_JIT allows, the tile
  // VM always). false + *error if a step cannot run (an internal error of the pipeline: the
  // lowered program is checked already).
  static bool create(Schedule schedule, std::unique_ptr<Runtime>* out, std::string* error);

  // One launch on `comm` (fcclProgramLaunch's arguments). Errors name the binding or the step.
  // A device communicator's launch enqueues kernels on `stream` (src/cuda/program_device.cc).
  fcclResult_t launch(fcclComm* comm, const fcclTensorBinding_t* tensors, int ntensors,
                      const fcclScalarBinding_t* scalars, int nscalars, double* scalarResults,
                      fcclStream_t stream = nullptr);

  const Schedule& schedule() const { return schedule_; }

 private:
  // Per launch: the bindings (tensors and scalars by var), logical counts. The temporaries'
  // memory is the Runtime's (buffers_, scratch_), kept from launch to launch: fresh memory each
  // time cost a page fault per 4 KiB (LAMB at 64 MiB: 96 MiB of temporaries; 70 -> 25 ms a step).
  struct Storage {
    int rank = 0, nranks = 1;
    std::vector<int64_t> counts;  // [var] -> logical element count (1 for scalars)
    Bindings b;                   // tensors / scalars by var
    std::vector<char>* scratch;   // reduced chunks of a Fused step without a buffer (scratch_)
    fcclReady* ready = nullptr;   // overlap: the input of the running collective step
                                  // is ready only where the producer marked it
    void* stream = nullptr;       // a device communicator's CUDA stream (collective steps)
  };
  StepKernel kernel(size_t step) const { return {&kernels_[step], jit_[step].get()}; }

  fcclResult_t runPointwise(const Step& step, StepKernel k, Storage& st);
  fcclResult_t runCollective(fcclComm* comm, const Step& step, Storage& st);
  fcclResult_t runReduction(fcclComm* comm, const Step& step, Storage& st);
  // program_fused.cc: a Fused step, and the overlap pass's pair (producer step i on a helper
  // thread, marking chunks ready in the ring's consumption order, while collective step i+1
  // consumes them).
  fcclResult_t runFused(fcclComm* comm, const Step& step, StepKernel k, Storage& st);
  bool canOverlap(fcclComm* comm, size_t i, const Storage& st) const;
  // src/cuda/program_device.cc: the whole launch on a device communicator, every step as planned by
  // fusion/codegen/device_program.h (planned once; a refusal fails every launch).
  fcclResult_t launchDevice(fcclComm* comm, Storage& st, fcclStream_t stream);
  fcclResult_t planDevice();
  fcclResult_t runOverlapped(fcclComm* comm, size_t i, Storage& st);

  Schedule schedule_;
  std::vector<std::vector<char>> buffers_;  // [i]: storage of schedule_.buffers[i], grown as needed
  std::vector<char> scratch_;
  std::vector<PointwiseKernel> kernels_;  // [step]; empty for steps without pointwise work
  // [step]: the same work compiled to native code (FCCL_JIT); null where the VM runs it.
  std::vector<std::unique_ptr<jit::CpuJitKernel>> jit_;
  // The device plan: per step, its kernel and source; deviceRefusal_ says why it has none.
  bool devicePlanned_ = false;
  std::string deviceRefusal_;
  std::vector<codegen::DeviceStep> deviceSteps_;
  std::vector<std::string> deviceSources_;  // [step]; empty for steps without a kernel
  bool overlapLogged_ = false;              // the overlap INFO line is printed once per program
  // Identifies the lowered program on the call board (src/callboard.h): ranks launching
  // different programs, or the same one compiled with different schedules, disagree here.
  uint64_t programHash_ = 0;
};

// Shared by program_runtime.cc and program_fused.cc.
// While alive, the collectives run on `comm` carry this program on the call board (a launch).
class ProgramOnBoard {
 public:
  ProgramOnBoard(fcclComm* comm, uint64_t hash, const char* name);
  ~ProgramOnBoard();
  ProgramOnBoard(const ProgramOnBoard&) = delete;
  ProgramOnBoard& operator=(const ProgramOnBoard&) = delete;

 private:
  fcclComm* comm_;
};
// A collective task of `dtype` reducing with `op`; Avg is a sum divided on the final value (the
// internal sliced collectives do not go through argcheck, which does this for the C API).
CollTask reductionTask(ir::DType dtype, ir::RedOp op, int nranks);
// The logical range a step's statement list runs over: its first target's elements, or its slice.
ir::SliceRange stepRange(const ir::Program& p, const Step& s, const std::vector<int64_t>& counts, int rank,
                         int nranks);

}  // namespace fccl::fusion
