// device_program.h - how the CUDA backend runs each step of a lowered program (fusion/lowered/
// schedule.h) on device buffers, and the CUDA source of each step's kernel. The decision needs
// no GPU (tested on every machine) and is made for the whole program before anything is
// enqueued, so a step the device cannot run fails the launch with nothing done - never a host
// fallback on device pointers. Scalars stay on the host: every scalar statement runs there (the
// Runtime's VM or JIT, as for host buffers) and the kernels get the values as arguments.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "fccl.h"
#include "fusion/exec/pointwise.h"
#include "fusion/lowered/schedule.h"

namespace fccl::fusion::codegen {

enum class DeviceStepKind : uint8_t {
  HostScalars,  // a Pointwise step of scalar statements only: computed on the host, no kernel
  Pointwise,    // scalar statements on the host, then one elementwise kernel
                // `kernel`(FcclHookArgs a, long long begin, long long end) over the step's range
  FusedRing,    // one allreduce ring kernel `kernel`(dev::DevCollArgs, FcclHookArgs) whose reduced
                // hook runs the step on each reduced element in registers and forwards the one
                // gathered variable's new value; one rank alone runs `alone`(FcclHookArgs,
                // const T* reduced, begin, end) over the whole input instead
  Collective,   // a plain collective: the device collectives (src/cuda/cuda_executor.cc)
};
const char* deviceStepKindName(DeviceStepKind k);

struct DeviceStep {
  DeviceStepKind kind = DeviceStepKind::HostScalars;
  std::string kernel;                 // Pointwise, FusedRing: the kernel's name in the step's source
  std::string alone;                  // FusedRing: the one-rank kernel (same source)
  fcclDataType_t type = fcclFloat32;  // FusedRing: the ring's element type (the input's)
  fcclRedOp_t op = fcclSum;           // FusedRing: the ring's operator (Avg: a sum divided first)
};

// Plans every step. `tag` makes the kernel names unique per lowered program (the runtime
// passes a hash of it: the executor caches kernels by name). false + *why ("step 2 (reduction):
// ...") for the first step the device cannot run yet; the caller names the program.
bool planDeviceProgram(const Schedule& s, const std::string& tag, std::vector<DeviceStep>* out,
                       std::string* why);

// The translation unit of step k (Pointwise or FusedRing as planned), compiled with the ring
// kernels' headers (ring_kernel.h deviceHeaders()); "" + *error otherwise.
std::string deviceStepSource(const Schedule& s, size_t k, const DeviceStep& d, std::string* error = nullptr);

// FcclHookArgs (cuda_emit.h) for program p as the kernels take it by value, in 8-byte words:
// ptr[slots], base[slots], scalar[slots] (floats as double bits, integers and bool as int64),
// result (null: the device path never reads scalar results back), then nranks and rank (two
// ints in one word). Tensors from b.tensors (a null pointer for scalars), scalars from b.scalars.
std::vector<uint64_t> packHookArgs(const ir::Program& p, const Bindings& b, int rank, int nranks);

}  // namespace fccl::fusion::codegen
