// program_device.cc - a fused program's launch on a device communicator (program_runtime.h):
// the bound tensors are device pointers, and every step becomes device work on the caller's
// stream in step order, as fusion/codegen/device_program.h planned it: scalar statements on the
// host (the step's VM or JIT, exactly as for host buffers; every scalar a device program can
// compute depends on scalars only, whole-tensor reductions being refused), Pointwise steps as one
// elementwise kernel, Fused steps as one ring allreduce kernel running the step in its reduced
// hook, Collective steps as the device collectives. Like a collective, the launch returns once
// the work is enqueued; scalar results are known on return (computed on the host).
#include <string>

#include "src/base/checks.h"
#include "src/base/debug.h"
#include "src/base/error.h"
#include "src/comm.h"
#include "src/cuda/device_comm.h"
#include "src/program_runtime.h"

namespace fccl::fusion {

fcclResult_t Runtime::planDevice() {
  const ir::Program& p = schedule_.program;
  if (!devicePlanned_) {
    devicePlanned_ = true;
    // The program's hash in the kernel names: another program of the same name gets other
    // kernels (the executor caches kernels by name).
    char tag[17];
    snprintf(tag, sizeof tag, "%016llx", (unsigned long long)programHash_);
    std::string why;
    if (!codegen::planDeviceProgram(schedule_, tag, &deviceSteps_, &why)) {
      deviceRefusal_ = why;
    } else {
      deviceSources_.resize(deviceSteps_.size());
      for (size_t k = 0; k < deviceSteps_.size() && deviceRefusal_.empty(); ++k) {
        const codegen::DeviceStepKind kind = deviceSteps_[k].kind;
        if (kind != codegen::DeviceStepKind::Pointwise && kind != codegen::DeviceStepKind::FusedRing)
          continue;
        std::string err;
        deviceSources_[k] = codegen::deviceStepSource(schedule_, k, deviceSteps_[k], &err);
        if (deviceSources_[k].empty()) deviceRefusal_ = "step " + std::to_string(k) + ": " + err;
      }
    }
    for (size_t k = 0; k < deviceSteps_.size() && deviceRefusal_.empty(); ++k)
      FCCL_INFO(kLogFusion, "program %s step %zu (%s): on device buffers, %s %s", p.name.c_str(), k,
                stepKindName(schedule_.steps[k].kind), codegen::deviceStepKindName(deviceSteps_[k].kind),
                deviceSteps_[k].kernel.c_str());
  }
  if (!deviceRefusal_.empty())
    return setError(fcclInvalidUsage, "fcclProgramLaunch: program %s cannot run on device buffers yet: %s",
                    p.name.c_str(), deviceRefusal_.c_str());
  return fcclSuccess;
}

fcclResult_t Runtime::launchDevice(fcclComm* comm, Storage& st, fcclStream_t stream) {
  const ir::Program& p = schedule_.program;
  FCCL_CHECK(deviceCheckStream("fcclProgramLaunch", comm, stream));
  // Every bound tensor where this rank's kernels can read it, before anything is enqueued.
  for (size_t v = 0; v < p.vars.size(); ++v)
    if (!p.vars[v].isScalar() && st.counts[v] > 0)
      FCCL_CHECK(deviceCheckBuffer("fcclProgramLaunch", comm, p.vars[v].name.c_str(), st.b.tensors[v].data));
  st.stream = stream;
  const ProgramOnBoard mark(comm, programHash_, p.name.c_str());
  for (size_t i = 0; i < schedule_.steps.size(); ++i) {
    const Step& s = schedule_.steps[i];
    const codegen::DeviceStep& d = deviceSteps_[i];
    switch (d.kind) {
      case codegen::DeviceStepKind::HostScalars:
        kernel(i).runScalars(st.b, &st.b.scalars);
        break;
      case codegen::DeviceStepKind::Pointwise: {
        kernel(i).runScalars(st.b, &st.b.scalars);  // the kernel gets them as arguments
        const ir::SliceRange r = stepRange(p, s, st.counts, st.rank, st.nranks);
        std::vector<uint64_t> args = codegen::packHookArgs(p, st.b, st.rank, st.nranks);
        FCCL_CHECK(
            deviceLaunchHookKernel(comm, stream, d.kernel, deviceSources_[i], args, nullptr, r.begin, r.end));
        break;
      }
      case codegen::DeviceStepKind::FusedRing: {
        const int64_t n = st.counts[s.input];
        const int g = s.gather[0];
        if (st.counts[g] != n)
          return setError(
              fcclInvalidArgument,
              "fcclProgramLaunch: rank %d: program %s step %zu: %s has %lld elements and %s %lld; "
              "the fused ring needs them equal",
              comm->rank, p.name.c_str(), i, p.vars[s.input].name.c_str(), (long long)n,
              p.vars[g].name.c_str(), (long long)st.counts[g]);
        std::vector<uint64_t> args = codegen::packHookArgs(p, st.b, st.rank, st.nranks);
        if (comm->nranks == 1) {  // the whole input is the reduced chunk (Avg divides by 1)
          FCCL_CHECK(deviceLaunchHookKernel(comm, stream, d.alone, deviceSources_[i], args,
                                            st.b.tensors[s.input].data, 0, n));
          break;
        }
        CollTask t = reductionTask(p.vars[s.input].dtype, s.redop, comm->nranks);
        t.kind = CollKind::AllReduce;
        t.count = size_t(n);
        t.send = st.b.tensors[s.input].data;
        t.recv = st.b.tensors[g].data;
        t.stream = stream;
        FCCL_CHECK(deviceLaunchFusedRing(comm, t, d.kernel, deviceSources_[i], args));
        break;
      }
      case codegen::DeviceStepKind::Collective:
        FCCL_CHECK(runCollective(comm, s, st));
        break;
    }
  }
  return fcclSuccess;
}

}  // namespace fccl::fusion
