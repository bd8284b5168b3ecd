// reduce_device.cuh - the device side of reduce_kernels.h: one functor per operator, applied
// element by element to 16-byte packs. Same semantics as the host kernels: integers wrap,
// half/bfloat16 compute each pairwise step in float and round back (the __h* intrinsics are
// correctly rounded), float max/min propagate NaN (a NaN operand wins).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>

namespace fccl::dev {

template <class T>
__device__ __forceinline__ bool isNan(T x) {
  return x != x;
}
__device__ __forceinline__ bool isNan(__half x) { return __hisnan(x); }
__device__ __forceinline__ bool isNan(__nv_bfloat16 x) { return __hisnan(x); }

struct OpSum {
  template <class T>
  __device__ __forceinline__ static T apply(T a, T b) {
    return T(a + b);
  }
  __device__ __forceinline__ static __half apply(__half a, __half b) { return __hadd(a, b); }
  __device__ __forceinline__ static __nv_bfloat16 apply(__nv_bfloat16 a, __nv_bfloat16 b) {
    return __hadd(a, b);
  }
};

struct OpProd {
  template <class T>
  __device__ __forceinline__ static T apply(T a, T b) {
    return T(a * b);
  }
  __device__ __forceinline__ static __half apply(__half a, __half b) { return __hmul(a, b); }
  __device__ __forceinline__ static __nv_bfloat16 apply(__nv_bfloat16 a, __nv_bfloat16 b) {
    return __hmul(a, b);
  }
};

// Comparison on the value; for floats a NaN operand is returned as is.
struct OpMax {
  template <class T>
  __device__ __forceinline__ static T apply(T a, T b) {
    if (isNan(a)) return a;
    if (isNan(b)) return b;
    return b > a ? b : a;
  }
};

struct OpMin {
  template <class T>
  __device__ __forceinline__ static T apply(T a, T b) {
    if (isNan(a)) return a;
    if (isNan(b)) return b;
    return b < a ? b : a;
  }
};

// 16 bytes of T, the unit every device primitive moves per thread and step.
template <class T>
union Pack {
  uint4 raw;
  T elem[16 / sizeof(T)];
};

template <class Op, class T>
__device__ __forceinline__ uint4 applyPack(uint4 a, uint4 b) {
  Pack<T> x, y;
  x.raw = a;
  y.raw = b;
#pragma unroll
  for (int k = 0; k < int(16 / sizeof(T)); ++k) x.elem[k] = Op::apply(x.elem[k], y.elem[k]);
  return x.raw;
}

}  // namespace fccl::dev
