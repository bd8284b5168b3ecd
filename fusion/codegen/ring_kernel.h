// ring_kernel.h - the CUDA source of the backend's collective kernels: the device headers
// (collectives/device_kernels.cuh and what it includes, embedded at build time, plus stand-ins
// for the two standard headers they use) and one extern "C" kernel that instantiates
// collectiveBody for a collective, an element type and an operator. The CUDA backend compiles
// one with NVRTC when it is first needed, for the device's architecture, instead of shipping
// every combination compiled ahead of time.
#pragma once
#include <string>
#include <vector>

#include "collectives/device_types.h"
#include "fccl.h"
#include "fusion/codegen/nvrtc_compile.h"

namespace fccl::fusion::codegen {

// The collectives of collectives/device_kernels.cuh.
using RingColl = dev::DevColl;
const char* ringCollName(RingColl c);  // "AllReduce", as DevColl spells it

struct RingKernelKey {
  RingColl coll;
  fcclDataType_t type;
  fcclRedOp_t op;       // sum, prod, max, min, or avg (a sum divided by DevCollArgs::avgDivisor)
  bool premul = false;  // PreMulSum: a sum of inputs scaled by DevCollArgs' scalar (op is ignored)
  dev::DevProto proto = dev::DevProto::Simple;
};

// The device type of an element type ("float", "__half"), nullptr where there is none; and an
// operator's functor in collectives/reduce_device.cuh ("OpSum"; Avg is OpSum), nullptr likewise.
const char* ringElementTypeName(fcclDataType_t t);
const char* ringOpFunctorName(fcclRedOp_t op);

// "fccl_AllReduce_float_sum" (LL protocol: "..._sum_ll"); "" for a type or operator fccl has no
// kernel for.
std::string ringKernelName(const RingKernelKey& k);
// The translation unit (it includes the device headers by name); "" as above.
std::string ringKernelSource(const RingKernelKey& k);
// The embedded headers, for NVRTC.
const std::vector<NvrtcHeader>& deviceHeaders();
// ringKernelSource compiled for arch ("sm_90": a cubin; "compute_90": PTX).
bool compileRingKernel(const RingKernelKey& k, const std::string& arch, std::string* image, std::string* log);

// The point-to-point kernel (one for every type: it moves bytes), "fccl_p2p", taking a
// dev::DevP2pArgs: CTA b runs task b (collectives/device_kernels.cuh p2pBody).
const char* p2pKernelName();
std::string p2pKernelSource();
bool compileP2pKernel(const std::string& arch, std::string* image, std::string* log);

// Threads per CTA of every collective kernel.
constexpr int kRingKernelThreads = dev::kDevThreads;

}  // namespace fccl::fusion::codegen
