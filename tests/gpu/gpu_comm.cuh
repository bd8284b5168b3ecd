// gpu_comm.cuh - what the GPU checks share: n ranks of one process on one GPU (one stream and
// one DevComm each, FIFOs in device memory, abort flag and error word in host-mapped memory),
// the ring kernels over the device primitives (collectives/prims_device.cuh) with an optional
// reduced hook, bounded waits for a rank's stream, and the device copy ceiling. A prototype of
// the CUDA backend's executor: the library's communicator does not run on GPUs yet.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "collectives/device_kernels.cuh"

namespace gpucheck {

using namespace fccl;
using namespace fccl::dev;

#define CUDA_OK(call)                                                                             \
  do {                                                                                            \
    cudaError_t e_ = (call);                                                                      \
    if (e_ != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)

constexpr int kThreads = kDevThreads;

// ---- kernel --------------------------------------------------------------------------------

// The collectives these checks launch: the library's (DevColl).
using Ring = DevColl;

// One rank's kernel: the library's kernel body (collectives/device_kernels.cuh) with a hook.
template <class T, class Op, class Hook, Ring kAlgo>
__global__ void __launch_bounds__(kThreads) ringKernel(DevCollArgs args, Hook hook) {
  collectiveBody<T, Op, kAlgo, Hook>(args, hook);
}

// ---- a communicator of n ranks on this GPU ----------------------------------------------------

struct Rank {
  DevComm comm{};
  cudaStream_t stream = nullptr;
  int* abortHost = nullptr;
  DevError* errorHost = nullptr;
};

struct GpuComm {
  int nranks = 0, nchannels = 0;
  size_t slotBytes = 0;
  std::vector<Rank> ranks;
  std::vector<void*> allocations;
};

inline void* devAlloc(GpuComm& c, size_t bytes) {
  void* p = nullptr;
  CUDA_OK(cudaMalloc(&p, bytes));
  CUDA_OK(cudaMemset(p, 0, bytes));
  c.allocations.push_back(p);
  return p;
}

inline GpuComm makeComm(int nranks, int nchannels, size_t slotBytes, unsigned long long timeoutNs) {
  GpuComm c;
  c.nranks = nranks;
  c.nchannels = nchannels;
  c.slotBytes = slotBytes;
  c.ranks.resize(nranks);
  // conn[r][ch]: the link from rank r to rank r+1 on channel ch.
  std::vector<std::vector<DevConn>> conn(nranks, std::vector<DevConn>(nchannels));
  for (int r = 0; r < nranks; ++r) {
    for (int ch = 0; ch < nchannels; ++ch) {
      DevConn& k = conn[r][ch];
      k.slots = static_cast<char*>(devAlloc(c, kFifoSlots * slotBytes));
      char* counters = static_cast<char*>(devAlloc(c, 256));
      k.tail = reinterpret_cast<uint64_t*>(counters);
      k.head = reinterpret_cast<uint64_t*>(counters + 128);
    }
  }
  for (int r = 0; r < nranks; ++r) {
    Rank& rk = c.ranks[r];
    std::vector<DevChannel> chans(nchannels);
    for (int ch = 0; ch < nchannels; ++ch) {
      chans[ch].send = conn[r][ch];
      chans[ch].recv = conn[(r + nranks - 1) % nranks][ch];
      chans[ch].sendStep = chans[ch].recvStep = 0;
    }
    auto* devChans = static_cast<DevChannel*>(devAlloc(c, sizeof(DevChannel) * nchannels));
    CUDA_OK(cudaMemcpy(devChans, chans.data(), sizeof(DevChannel) * nchannels, cudaMemcpyHostToDevice));
    CUDA_OK(cudaHostAlloc(&rk.abortHost, sizeof(int), cudaHostAllocMapped));
    CUDA_OK(cudaHostAlloc(&rk.errorHost, sizeof(DevError), cudaHostAllocMapped));
    *rk.abortHost = 0;
    std::memset(rk.errorHost, 0, sizeof(DevError));
    int* abortDev;
    DevError* errorDev;
    CUDA_OK(cudaHostGetDevicePointer(&abortDev, rk.abortHost, 0));
    CUDA_OK(cudaHostGetDevicePointer(&errorDev, rk.errorHost, 0));
    rk.comm = DevComm{r, nranks, nchannels, slotBytes, devChans, abortDev, errorDev, timeoutNs};
    CUDA_OK(cudaStreamCreateWithFlags(&rk.stream, cudaStreamNonBlocking));
  }
  return c;
}

inline void freeComm(GpuComm& c) {
  for (Rank& r : c.ranks) {
    CUDA_OK(cudaStreamSynchronize(r.stream));
    CUDA_OK(cudaStreamDestroy(r.stream));
    CUDA_OK(cudaFreeHost(r.abortHost));
    CUDA_OK(cudaFreeHost(r.errorHost));
  }
  for (void* p : c.allocations) CUDA_OK(cudaFree(p));
  c.allocations.clear();
}

// The chunk: a whole slot for large messages; for small ones a 16-byte multiple that gives
// every channel some work.
template <class T>
size_t chunkElemsFor(const GpuComm& c, size_t count) {
  const size_t pack = 16 / sizeof(T), slotElems = c.slotBytes / sizeof(T);
  const size_t slice = (count + c.nranks - 1) / c.nranks;
  size_t share = (slice + c.nchannels - 1) / c.nchannels;
  share = std::max(pack, (share + pack - 1) / pack * pack);
  return std::min(slotElems, share);
}

template <class T, class Op, Ring kAlgo = Ring::AllReduce, class Hook = DevIdentityHook>
void launchRing(GpuComm& c, int r, const void* send, void* recv, size_t count, const Hook& hook = Hook()) {
  Rank& rk = c.ranks[r];
  const DevCollArgs args{rk.comm, send, recv, count, chunkElemsFor<T>(c, count), 0};
  ringKernel<T, Op, Hook, kAlgo><<<c.nchannels, kThreads, 0, rk.stream>>>(args, hook);
  CUDA_OK(cudaGetLastError());
}

template <class T, class Op>
void launchAllReduce(GpuComm& c, int r, const void* send, void* recv, size_t count) {
  launchRing<T, Op>(c, r, send, recv, count);
}

// Waits for rank r's stream with a bound, so a hung kernel fails the check instead of the run.
inline bool syncWithin(const Rank& rk, double seconds) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    cudaError_t e = cudaStreamQuery(rk.stream);
    if (e == cudaSuccess) return true;
    if (e != cudaErrorNotReady) {
      std::fprintf(stderr, "stream of rank %d: %s\n", rk.comm.rank, cudaGetErrorString(e));
      std::exit(1);
    }
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > seconds) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// ---- the copy ceiling ---------------------------------------------------------------------------

__global__ void __launch_bounds__(kThreads) copyKernel(const char* src, char* dst, size_t bytes) {
  const size_t per = (bytes / gridDim.x + 15) / 16 * 16;
  const size_t b = minSize(bytes, blockIdx.x * per), e = minSize(bytes, b + per);
  reduceCopy<uint32_t, OpSum, 1, 1>(threadIdx.x, blockDim.x, {src + b}, {dst + b}, (e - b) / 4);
}

struct CopyBw {
  double memcpyGBs, kernelGBs;
};

// Best of 10 after warm-up, counting bytes read + written.
inline CopyBw copyCeiling(size_t bytes) {
  char *a, *b;
  CUDA_OK(cudaMalloc(&a, bytes));
  CUDA_OK(cudaMalloc(&b, bytes));
  CUDA_OK(cudaMemset(a, 1, bytes));
  cudaEvent_t e0, e1;
  CUDA_OK(cudaEventCreate(&e0));
  CUDA_OK(cudaEventCreate(&e1));
  int sms;
  CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  auto best = [&](auto&& fn) {
    double bestMs = 1e30;
    for (int it = 0; it < 13; ++it) {
      CUDA_OK(cudaEventRecord(e0));
      fn();
      CUDA_OK(cudaEventRecord(e1));
      CUDA_OK(cudaEventSynchronize(e1));
      float ms;
      CUDA_OK(cudaEventElapsedTime(&ms, e0, e1));
      if (it >= 3) bestMs = std::min(bestMs, double(ms));
    }
    return 2.0 * bytes / (bestMs * 1e-3) / 1e9;
  };
  CopyBw r;
  r.memcpyGBs = best([&] { CUDA_OK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); });
  r.kernelGBs = best([&] {
    copyKernel<<<sms * 2, kThreads>>>(a, b, bytes);
    CUDA_OK(cudaGetLastError());
  });
  CUDA_OK(cudaFree(a));
  CUDA_OK(cudaFree(b));
  CUDA_OK(cudaEventDestroy(e0));
  CUDA_OK(cudaEventDestroy(e1));
  return r;
}

}  // namespace gpucheck
