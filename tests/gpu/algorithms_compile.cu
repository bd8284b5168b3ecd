// algorithms_compile.cu - every ring algorithm template of collectives/ instantiated in a
// kernel over the device primitives (collectives/prims_device.cuh), so the ordinary build
// proves, without a GPU, that the templates and the hook contract compile as device code.
// Built as an object library: compiling it is the test.
#include "collectives/all_gather_ring.h"
#include "collectives/allreduce_ring.h"
#include "collectives/broadcast_ring.h"
#include "collectives/hook_contract.h"
#include "collectives/prims_device.cuh"
#include "collectives/reduce_ring.h"
#include "collectives/reduce_scatter_ring.h"
#include "collectives/sliced_ring.h"

namespace fccl::dev {

enum class Which {
  AllReduce,
  ReduceScatter,
  AllGather,
  Broadcast,
  Reduce,
  ReduceScatterSliced,
  AllGatherSliced
};

template <class T, class Op>
__global__ void everyRing(DevComm comm, RingArgs a, Which which, int* result) {
  __shared__ int verdict;
  DevPrims<T, Op> p(comm, blockIdx.x, &verdict);
  IdentityHook hook;
  hook.reduced(ChunkDesc{0, 0, 0, 0}, nullptr);  // the contract's calls are device code too
  fcclResult_t r = fcclSuccess;
  switch (which) {
    case Which::AllReduce:
      r = allReduceRing(p, a);
      break;
    case Which::ReduceScatter:
      r = reduceScatterRing(p, a);
      break;
    case Which::AllGather:
      r = allGatherRing(p, a);
      break;
    case Which::Broadcast:
      r = broadcastRing(p, a);
      break;
    case Which::Reduce:
      r = reduceRing(p, a);
      break;
    case Which::ReduceScatterSliced:
      r = reduceScatterSlicedRing(p, a);
      break;
    case Which::AllGatherSliced:
      r = allGatherSlicedRing(p, a);
      break;
  }
  p.finish();
  if (threadIdx.x == 0) result[blockIdx.x] = r;
}

template __global__ void everyRing<float, OpSum>(DevComm, RingArgs, Which, int*);
template __global__ void everyRing<__half, OpMax>(DevComm, RingArgs, Which, int*);
template __global__ void everyRing<__nv_bfloat16, OpProd>(DevComm, RingArgs, Which, int*);
template __global__ void everyRing<int8_t, OpMin>(DevComm, RingArgs, Which, int*);

}  // namespace fccl::dev
