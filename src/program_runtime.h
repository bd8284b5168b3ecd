// program_runtime.h - executes a lowered program (schedule.h) on one rank of a communicator: resolves
// the user's bindings (names -> buffers, counts -> shape symbols), gives buffered temporaries
// storage, and runs the steps in order - Pointwise steps with the tile evaluator, collectives
// on the communicator, Fused steps as one ring whose reduced hook runs the pointwise work on
// each reduced chunk of this rank's slice. A Runtime is built once per (program, communicator)
// and launched many times; it is used by one thread at a time, like the communicator.
#pragma once
#include <memory>
#include <string>
#include <vector>
#include "fccl.h"
#include "fusion/exec/pointwise.h"
#include "fusion/exec/schedule.h"
#include "fusion/jit/cpu_jit.h"

struct fcclComm;

namespace fccl::fusion {

class Runtime {
 public:
  // Compiles a tile kernel for every Pointwise and Fused step. false + *error if a step cannot
  // run (an internal error of the pipeline: the lowered program is checked already).
  static bool create(Schedule schedule, std::unique_ptr<Runtime>* out, std::string* error);

  // One launch on `comm` (fcclProgramLaunch's arguments). Errors name the binding or the step.
  fcclResult_t launch(fcclComm* comm, const fcclTensorBinding_t* tensors, int ntensors,
                      const fcclScalarBinding_t* scalars, int nscalars, double* scalarResults);

  const Schedule& schedule() const { return schedule_; }

 private:
  struct Storage;  // per launch: bindings, symbol values, temporary buffers
  fcclResult_t bind(fcclComm* comm, const fcclTensorBinding_t* tensors, int ntensors,
                    const fcclScalarBinding_t* scalars, int nscalars, Storage* st);
  fcclResult_t runPointwise(const Step& step, const PointwiseKernel& k, const jit::CpuJitKernel* jk,
                            Storage& st);
  fcclResult_t runCollective(fcclComm* comm, const Step& step, Storage& st);
  fcclResult_t runFused(fcclComm* comm, const Step& step, const PointwiseKernel& k,
                        const jit::CpuJitKernel* jk, Storage& st);
  fcclResult_t runReduction(fcclComm* comm, const Step& step, Storage& st);
  // The overlap pass's pair: producer step i on a helper thread, marking chunks ready in the
  // ring's consumption order, while collective step i+1 consumes them.
  bool canOverlap(fcclComm* comm, size_t i, const Storage& st) const;
  fcclResult_t runOverlapped(fcclComm* comm, size_t i, Storage& st);

  Schedule schedule_;
  std::vector<PointwiseKernel> kernels_;  // [step]; empty for steps without pointwise work
  // [step]: the same work compiled to native code (FCCL_JIT); null where the VM runs it.
  std::vector<std::unique_ptr<jit::CpuJitKernel>> jit_;
  bool overlapLogged_ = false;  // the overlap INFO line is printed once per program
  // Identifies the lowered program on the call board (src/callboard.h): ranks launching
  // different programs, or the same one compiled with different schedules, disagree here.
  uint64_t programHash_ = 0;
};

}  // namespace fccl::fusion
