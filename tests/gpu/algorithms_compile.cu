// algorithms_compile.cu - every collective kernel body of collectives/device_kernels.cuh (each
// ring template over the device primitives) instantiated for a few element types and
// operators, so the ordinary build proves, without a GPU, that the templates and the hook
// contract compile as device code. Built as an object library: compiling it is the test.
#include "collectives/device_kernels.cuh"
#include "collectives/hook_contract.h"

namespace fccl::dev {

template <class T, class Op, DevColl K>
__global__ void everyCollective(DevCollArgs args) {
  IdentityHook hook;
  hook.reduced(ChunkDesc{0, 0, 0, 0}, nullptr);  // the host hook contract's calls are device code too
  collectiveBody<T, Op, K>(args);
}

#define FCCL_EVERY_COLLECTIVE(T, Op)                                                          \
  template __global__ void everyCollective<T, Op, DevColl::AllReduce>(DevCollArgs);           \
  template __global__ void everyCollective<T, Op, DevColl::ReduceScatter>(DevCollArgs);       \
  template __global__ void everyCollective<T, Op, DevColl::AllGather>(DevCollArgs);           \
  template __global__ void everyCollective<T, Op, DevColl::Broadcast>(DevCollArgs);           \
  template __global__ void everyCollective<T, Op, DevColl::Reduce>(DevCollArgs);              \
  template __global__ void everyCollective<T, Op, DevColl::ReduceScatterSliced>(DevCollArgs); \
  template __global__ void everyCollective<T, Op, DevColl::AllGatherSliced>(DevCollArgs);

FCCL_EVERY_COLLECTIVE(float, OpSum)
FCCL_EVERY_COLLECTIVE(__half, OpMax)
FCCL_EVERY_COLLECTIVE(__nv_bfloat16, OpProd)
FCCL_EVERY_COLLECTIVE(int8_t, OpMin)

}  // namespace fccl::dev
