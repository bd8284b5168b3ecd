// ring_kernel.h - the CUDA source of the backend's collective kernels: the device headers
// (collectives/device_kernels.cuh and what it includes, embedded at build time, plus stand-ins
// for the two standard headers they use) and one extern "C" kernel that instantiates
// collectiveBody for a collective, an element type and an operator. The CUDA backend compiles
// one with NVRTC when it is first needed, for the device's architecture, instead of shipping
// every combination compiled ahead of time.
#pragma once
#include <string>
#include <vector>

#include "fccl.h"
#include "fusion/codegen/nvrtc_compile.h"

namespace fccl::fusion::codegen {

// The collectives of collectives/device_kernels.cuh (dev::DevColl, by name).
enum class RingColl {
  AllReduce,
  ReduceScatter,
  AllGather,
  Broadcast,
  Reduce,
  ReduceScatterSliced,
  AllGatherSliced
};
const char* ringCollName(RingColl c);  // "AllReduce", as DevColl spells it

struct RingKernelKey {
  RingColl coll;
  fcclDataType_t type;
  fcclRedOp_t op;  // the base operator: sum, prod, max or min (avg reduces as sum)
};

// "fccl_AllReduce_float_sum"; "" for a type or operator fccl has no kernel for.
std::string ringKernelName(const RingKernelKey& k);
// The translation unit (it includes the device headers by name); "" as above.
std::string ringKernelSource(const RingKernelKey& k);
// The embedded headers, for NVRTC.
const std::vector<NvrtcHeader>& deviceHeaders();
// ringKernelSource compiled for arch ("sm_90": a cubin; "compute_90": PTX).
bool compileRingKernel(const RingKernelKey& k, const std::string& arch, std::string* image, std::string* log);

// Threads per CTA of every collective kernel (collectives/device_kernels.cuh kDevThreads; the
// header is CUDA, so the number is repeated here and compared by tests/fusion/ring_kernel_test.cc).
constexpr int kRingKernelThreads = 512;

}  // namespace fccl::fusion::codegen
