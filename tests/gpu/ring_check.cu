// ring_check.cu - the first GPU check of the device primitives (collectives/prims_device.cuh)
// driving the host's own ring template (collectives/allreduce_ring.h): n ranks share one GPU
// as streams of one process, each rank's kernel one CTA per channel, FIFOs in device memory.
//   --sweep : every dtype x {sum, prod, max, min} x counts {0, 1, 7, 4099, 1M+3} x in/out of
//             place on 2, 3 and 4 ranks, checked exactly (inputs whose result is exact in
//             every type).
//   --abort : a rank whose peer never comes ends by fcclCommAbort's host-mapped flag, and by
//             the communicator timeout, naming channel, peer and what it waited for.
//   --nvrtc : the same sweep on 2 and 3 ranks with the kernels the library compiles at run time
//             (fusion/codegen/ring_kernel.h: NVRTC, every dtype x op, compiled in parallel,
//             loaded as cubins for this device), instead of the ones nvcc built into this file.
//   --bench : the copy ceiling (cudaMemcpy and the primitives' own copy loop, bytes read +
//             written) next to 2-rank float sum allreduce, busbw as nccl-tests computes it,
//             and its fraction of the bound the copy implies (2 ranks on one memory: each
//             input read once, each output written once, busbw <= copy / 4).
// Exit status 0 only when every check passed. Prototype of the CUDA backend's executor: the
// library's communicator does not run on GPUs yet (issue "CUDA backend").
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <cuda.h>

#include <map>
#include <mutex>
#include <utility>

#include "fusion/codegen/ring_kernel.h"
#include "tests/gpu/gpu_comm.cuh"

using namespace gpucheck;

namespace {

// ---- the run-time compiled kernels (--nvrtc) ------------------------------------------------------

template <class T>
fcclDataType_t fcclTypeOf();
template <>
fcclDataType_t fcclTypeOf<int8_t>() {
  return fcclInt8;
}
template <>
fcclDataType_t fcclTypeOf<uint8_t>() {
  return fcclUint8;
}
template <>
fcclDataType_t fcclTypeOf<int32_t>() {
  return fcclInt32;
}
template <>
fcclDataType_t fcclTypeOf<uint32_t>() {
  return fcclUint32;
}
template <>
fcclDataType_t fcclTypeOf<int64_t>() {
  return fcclInt64;
}
template <>
fcclDataType_t fcclTypeOf<uint64_t>() {
  return fcclUint64;
}
template <>
fcclDataType_t fcclTypeOf<__half>() {
  return fcclFloat16;
}
template <>
fcclDataType_t fcclTypeOf<float>() {
  return fcclFloat32;
}
template <>
fcclDataType_t fcclTypeOf<double>() {
  return fcclFloat64;
}
template <>
fcclDataType_t fcclTypeOf<__nv_bfloat16>() {
  return fcclBfloat16;
}
template <class Op>
fcclRedOp_t fcclOpOf();
template <>
fcclRedOp_t fcclOpOf<OpSum>() {
  return fcclSum;
}
template <>
fcclRedOp_t fcclOpOf<OpProd>() {
  return fcclProd;
}
template <>
fcclRedOp_t fcclOpOf<OpMax>() {
  return fcclMax;
}
template <>
fcclRedOp_t fcclOpOf<OpMin>() {
  return fcclMin;
}

#define CU_OK(call)                                                                      \
  do {                                                                                   \
    CUresult r_ = (call);                                                                \
    if (r_ != CUDA_SUCCESS) {                                                            \
      const char* s_ = nullptr;                                                          \
      cuGetErrorString(r_, &s_);                                                         \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, s_ ? s_ : "?"); \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)

bool g_useNvrtc = false;
std::map<std::pair<int, int>, CUfunction> g_nvrtcKernels;  // (type, op) -> AllReduce kernel

// Compiles the AllReduce kernel of every type x op with NVRTC for this device, on every core.
bool loadNvrtcKernels() {
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  const std::string arch = "sm_" + std::to_string(prop.major) + std::to_string(prop.minor);
  using fccl::fusion::codegen::RingColl;
  using fccl::fusion::codegen::RingKernelKey;
  std::vector<RingKernelKey> keys;
  for (int t = 0; t < fcclNumTypes; ++t)
    for (fcclRedOp_t op : {fcclSum, fcclProd, fcclMax, fcclMin})
      keys.push_back({RingColl::AllReduce, fcclDataType_t(t), op});
  std::vector<std::string> images(keys.size()), logs(keys.size());
  std::vector<char> ok(keys.size(), 0);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  std::atomic<size_t> next{0};
  for (unsigned w = 0; w < std::max(1u, std::thread::hardware_concurrency()); ++w)
    pool.emplace_back([&] {
      for (size_t i; (i = next++) < keys.size();)
        ok[i] = fccl::fusion::codegen::compileRingKernel(keys[i], arch, &images[i], &logs[i]);
    });
  for (auto& th : pool) th.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int bad = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!ok[i]) {
      std::printf("nvrtc: %s did not compile:\n%s\n", fccl::fusion::codegen::ringKernelName(keys[i]).c_str(),
                  logs[i].c_str());
      ++bad;
      continue;
    }
    CUmodule mod;
    CUfunction fn;
    CU_OK(cuModuleLoadData(&mod, images[i].data()));
    CU_OK(cuModuleGetFunction(&fn, mod, fccl::fusion::codegen::ringKernelName(keys[i]).c_str()));
    g_nvrtcKernels[{int(keys[i].type), int(keys[i].op)}] = fn;
  }
  std::printf("nvrtc: %zu AllReduce kernels for %s compiled in %.1f s (%u threads), %d failed\n", keys.size(),
              arch.c_str(), secs, std::max(1u, std::thread::hardware_concurrency()), bad);
  return bad == 0;
}

template <class T, class Op>
void launchChecked(GpuComm& c, int r, const void* send, void* recv, size_t count) {
  if (!g_useNvrtc) return launchAllReduce<T, Op>(c, r, send, recv, count);
  Rank& rk = c.ranks[r];
  DevCollArgs args{rk.comm, send, recv, count, chunkElemsFor<T>(c, count), 0};
  void* params[] = {&args};
  CU_OK(cuLaunchKernel(g_nvrtcKernels.at({int(fcclTypeOf<T>()), int(fcclOpOf<Op>())}), c.nchannels, 1, 1,
                       kThreads, 1, 1, 0, reinterpret_cast<CUstream>(rk.stream), params, nullptr));
}

// ---- exact inputs ---------------------------------------------------------------------------

enum class OpKind {
  Sum,
  Prod,
  Max,
  Min
};
const char* opName(OpKind o) {
  static const char* names[] = {"sum", "prod", "max", "min"};
  return names[int(o)];
}

// Values whose reduction over up to 4 ranks is exact in every type, int8 and bfloat16 included.
double inputValue(OpKind op, bool isUnsigned, int rank, size_t i) {
  switch (op) {
    case OpKind::Sum:
      return isUnsigned ? double((i * 7 + rank * 13) % 9) : double(int((i * 7 + rank * 13) % 9) - 4);
    case OpKind::Prod: {
      const int k = int((i * 5 + rank) % 3);  // signed {1, 2, -1}, unsigned {1, 2, 3}
      return k == 2 ? (isUnsigned ? 3.0 : -1.0) : double(k + 1);
    }
    default:
      return isUnsigned ? double((i * 31 + rank * 17) % 101) : double(int((i * 31 + rank * 17) % 101) - 50);
  }
}

template <class T>
T fromDouble(double v) {
  return T(v);
}
template <>
__half fromDouble<__half>(double v) {
  return __float2half(float(v));
}
template <>
__nv_bfloat16 fromDouble<__nv_bfloat16>(double v) {
  return __float2bfloat16(float(v));
}
template <class T>
double toDouble(T v) {
  return double(v);
}
template <>
double toDouble<__half>(__half v) {
  return __half2float(v);
}
template <>
double toDouble<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <class T>
bool isUnsignedT() {
  return std::is_integral<T>::value && std::is_unsigned<T>::value;
}

// One allreduce on every rank of `c`; returns the number of wrong elements (first few printed).
template <class T, class Op>
size_t checkOnce(GpuComm& c, OpKind op, size_t count, bool inPlace, const char* type) {
  const int n = c.nranks;
  const bool uns = isUnsignedT<T>();
  std::vector<T*> send(n), recv(n);
  std::vector<std::vector<T>> host(n, std::vector<T>(count));
  for (int r = 0; r < n; ++r) {
    for (size_t i = 0; i < count; ++i) host[r][i] = fromDouble<T>(inputValue(op, uns, r, i));
    CUDA_OK(cudaMalloc(&send[r], std::max<size_t>(count, 1) * sizeof(T)));
    CUDA_OK(cudaMemcpy(send[r], host[r].data(), count * sizeof(T), cudaMemcpyHostToDevice));
    if (inPlace) {
      recv[r] = send[r];
    } else {
      CUDA_OK(cudaMalloc(&recv[r], std::max<size_t>(count, 1) * sizeof(T)));
      CUDA_OK(cudaMemset(recv[r], 0xff, count * sizeof(T)));  // poison: unwritten shows
    }
  }
  for (int r = 0; r < n; ++r) launchChecked<T, Op>(c, r, send[r], recv[r], count);
  size_t wrong = 0;
  for (int r = 0; r < n; ++r) {
    if (!syncWithin(c.ranks[r], 20.0)) {
      std::printf("  HANG %s %s n=%d count=%zu rank %d\n", type, opName(op), n, count, r);
      std::exit(1);  // the comm's FIFOs are stuck: nothing after this can be trusted
    }
    if (c.ranks[r].errorHost->code != 0) {
      std::printf("  ERROR %s %s n=%d count=%zu rank %d: code %d\n", type, opName(op), n, count, r,
                  c.ranks[r].errorHost->code);
      ++wrong;
    }
  }
  // The exact result, computed once in double from the same formula.
  std::vector<T> want(count);
  for (size_t i = 0; i < count; ++i) {
    double w = inputValue(op, uns, 0, i);
    for (int k = 1; k < n; ++k) {
      const double v = inputValue(op, uns, k, i);
      w = op == OpKind::Sum    ? w + v
          : op == OpKind::Prod ? w * v
          : op == OpKind::Max  ? std::max(w, v)
                               : std::min(w, v);
    }
    want[i] = fromDouble<T>(w);
  }
  std::vector<T> out(count);
  for (int r = 0; r < n; ++r) {
    CUDA_OK(cudaMemcpy(out.data(), recv[r], count * sizeof(T), cudaMemcpyDeviceToHost));
    if (std::memcmp(out.data(), want.data(), count * sizeof(T)) == 0) continue;
    for (size_t i = 0; i < count; ++i) {
      if (std::memcmp(&want[i], &out[i], sizeof(T)) != 0 && ++wrong <= 3)
        std::printf("  WRONG %s %s n=%d count=%zu %s rank %d [%zu]: got %g want %g\n", type, opName(op), n,
                    count, inPlace ? "in-place" : "out-of-place", r, i, toDouble(out[i]), toDouble(want[i]));
    }
  }
  for (int r = 0; r < n; ++r) {
    CUDA_OK(cudaFree(send[r]));
    if (!inPlace) CUDA_OK(cudaFree(recv[r]));
  }
  return wrong;
}

template <class T>
int sweepType(GpuComm& c, const char* type, const std::vector<size_t>& counts) {
  int failed = 0;
  for (size_t count : counts) {
    for (bool inPlace : {false, true}) {
      failed += checkOnce<T, OpSum>(c, OpKind::Sum, count, inPlace, type) != 0;
      failed += checkOnce<T, OpProd>(c, OpKind::Prod, count, inPlace, type) != 0;
      failed += checkOnce<T, OpMax>(c, OpKind::Max, count, inPlace, type) != 0;
      failed += checkOnce<T, OpMin>(c, OpKind::Min, count, inPlace, type) != 0;
    }
  }
  return failed;
}

// quick: 2 ranks, three types, small counts (for compute-sanitizer, which is slow). nvrtc: the
// run-time compiled kernels on 2 and 3 ranks.
int sweep(bool quick, bool nvrtc) {
  const std::vector<size_t> counts =
      quick ? std::vector<size_t>{0, 1, 7, 4099} : std::vector<size_t>{0, 1, 7, 4099, (size_t(1) << 20) + 3};
  if (nvrtc && !loadNvrtcKernels()) return 1;
  g_useNvrtc = nvrtc;
  int failed = 0, cases = 0;
  for (int n : quick ? std::vector<int>{2} : nvrtc ? std::vector<int>{2, 3} : std::vector<int>{2, 3, 4}) {
    // Small slots so that 1M+3 elements take many chunks per channel and the FIFO wraps.
    GpuComm c = makeComm(n, 4, 64 << 10, 20ull * 1000 * 1000 * 1000);
    const auto t0 = std::chrono::steady_clock::now();
    int f = 0, types = 3;
    f += sweepType<int8_t>(c, "int8", counts);
    f += sweepType<__half>(c, "half", counts);
    f += sweepType<float>(c, "float", counts);
    if (!quick) {
      types = 10;
      f += sweepType<uint8_t>(c, "uint8", counts);
      f += sweepType<int32_t>(c, "int32", counts);
      f += sweepType<uint32_t>(c, "uint32", counts);
      f += sweepType<int64_t>(c, "int64", counts);
      f += sweepType<uint64_t>(c, "uint64", counts);
      f += sweepType<double>(c, "double", counts);
      f += sweepType<__nv_bfloat16>(c, "bfloat16", counts);
    }
    const int k = types * 4 * 2 * int(counts.size());
    std::printf("sweep%s n=%d: %d/%d cases passed (%.1f s)\n", nvrtc ? "(nvrtc)" : "", n, k - f, k,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    failed += f;
    cases += k;
    freeComm(c);
  }
  std::printf("sweep%s: %d/%d passed\n", nvrtc ? "(nvrtc)" : "", cases - failed, cases);
  g_useNvrtc = false;
  return failed;
}

// ---- abort and timeout --------------------------------------------------------------------------

// Rank 0 alone calls an allreduce; its peer never comes. `abort`: the host raises the flag
// after 200 ms; else the communicator's 300 ms timeout ends it.
int blockedRank(bool abort) {
  const unsigned long long timeout = abort ? 0 : 300ull * 1000 * 1000;
  GpuComm c = makeComm(2, 2, 64 << 10, timeout);
  const size_t count = 1 << 20;
  float *send, *recv;
  CUDA_OK(cudaMalloc(&send, count * sizeof(float)));
  CUDA_OK(cudaMalloc(&recv, count * sizeof(float)));
  const auto t0 = std::chrono::steady_clock::now();
  launchAllReduce<float, OpSum>(c, 0, send, recv, count);
  bool ok = true;
  if (abort) {
    ok &= !syncWithin(c.ranks[0], 0.2);  // still blocked: nobody to talk to
    *reinterpret_cast<volatile int*>(c.ranks[0].abortHost) = 1;
  }
  const bool ended = syncWithin(c.ranks[0], 5.0);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const DevError& e = *c.ranks[0].errorHost;
  ok &= ended && e.code == (abort ? fcclRemoteError : fcclSystemError) && e.aborted == (abort ? 1 : 0) &&
        e.peer == 1 && e.waitingFor == int(DevWait::Data);
  if (!abort) ok &= s >= 0.3;
  std::printf("%s: %s after %.3f s: code %d aborted %d channel %d peer %d waiting for %s step %llu\n",
              abort ? "abort" : "timeout", ok ? "PASS" : "FAIL", s, e.code, e.aborted, e.channel, e.peer,
              e.waitingFor == int(DevWait::Data)       ? "data"
              : e.waitingFor == int(DevWait::FreeSlot) ? "a free slot"
                                                       : "nothing",
              e.step);
  if (ended) {
    CUDA_OK(cudaFree(send));
    CUDA_OK(cudaFree(recv));
    freeComm(c);
  }  // else leak it: the kernel still runs and the process exits with the failure
  return ok ? 0 : 1;
}

// Average time of one allreduce (all ranks started together; the slowest rank's time).
double timeAllReduce(GpuComm& c, std::vector<float*>& send, std::vector<float*>& recv, size_t count,
                     int iters) {
  const int n = c.nranks;
  std::vector<cudaEvent_t> e0(n), e1(n);
  for (int r = 0; r < n; ++r) {
    CUDA_OK(cudaEventCreate(&e0[r]));
    CUDA_OK(cudaEventCreate(&e1[r]));
  }
  for (int w = 0; w < 3; ++w)
    for (int r = 0; r < n; ++r) launchAllReduce<float, OpSum>(c, r, send[r], recv[r], count);
  for (int r = 0; r < n; ++r) CUDA_OK(cudaEventRecord(e0[r], c.ranks[r].stream));
  for (int it = 0; it < iters; ++it)
    for (int r = 0; r < n; ++r) launchAllReduce<float, OpSum>(c, r, send[r], recv[r], count);
  double worst = 0;
  for (int r = 0; r < n; ++r) {
    CUDA_OK(cudaEventRecord(e1[r], c.ranks[r].stream));
    if (!syncWithin(c.ranks[r], 60.0)) {
      std::printf("bench: rank %d hung\n", r);
      std::exit(1);
    }
    if (c.ranks[r].errorHost->code != 0) {
      std::printf("bench: rank %d failed with %d\n", r, c.ranks[r].errorHost->code);
      std::exit(1);
    }
    float ms;
    CUDA_OK(cudaEventElapsedTime(&ms, e0[r], e1[r]));
    worst = std::max(worst, double(ms) / iters);
    CUDA_OK(cudaEventDestroy(e0[r]));
    CUDA_OK(cudaEventDestroy(e1[r]));
  }
  return worst * 1e-3;
}

int bench(const std::vector<int>& channelList, const std::vector<size_t>& slotList) {
  const CopyBw copy = copyCeiling(size_t(1) << 30);
  const double ceiling = std::max(copy.memcpyGBs, copy.kernelGBs);
  std::printf(
      "copy 1 GiB (read + written, best of 10): cudaMemcpy %.0f GB/s, primitives' copy loop %.0f GB/s\n",
      copy.memcpyGBs, copy.kernelGBs);
  std::printf("bound for 2 ranks on one GPU: busbw <= copy / 4 = %.0f GB/s\n", ceiling / 4);
  const int n = 2;
  const size_t maxCount = (size_t(1) << 30) / sizeof(float);
  std::vector<float*> send(n), recv(n);
  for (int r = 0; r < n; ++r) {
    CUDA_OK(cudaMalloc(&send[r], maxCount * sizeof(float)));
    CUDA_OK(cudaMalloc(&recv[r], maxCount * sizeof(float)));
    CUDA_OK(cudaMemset(send[r], 0x3c, maxCount * sizeof(float)));  // 0.0115f, not zeros
  }
  int failed = 0;
  double best1G = 0;
  std::printf("%8s %7s %12s %10s | %10s %8s %8s %6s\n", "channels", "slot", "size", "count", "time(us)",
              "algbw", "busbw", "frac");
  for (int nch : channelList) {
    for (size_t slot : slotList) {
      GpuComm c = makeComm(n, nch, slot, 60ull * 1000 * 1000 * 1000);
      for (size_t bytes : {size_t(8), size_t(64) << 10, size_t(1) << 20, size_t(16) << 20, size_t(256) << 20,
                           size_t(1) << 30}) {
        const size_t count = bytes / sizeof(float);
        const int iters = bytes >= (size_t(256) << 20) ? 10 : 50;
        const double t = timeAllReduce(c, send, recv, count, iters);
        const double algbw = bytes / t / 1e9, busbw = algbw * 2.0 * (n - 1) / n;
        std::printf("%8d %6zuK %12zu %10zu | %10.2f %8.1f %8.1f %5.0f%%\n", nch, slot >> 10, bytes, count,
                    t * 1e6, algbw, busbw, 100.0 * busbw / (ceiling / 4));
        if (bytes == (size_t(1) << 30)) best1G = std::max(best1G, busbw);
      }
      freeComm(c);
    }
  }
  // A final correctness check on the timed buffers' sizes: 1 GiB float sum is exact here.
  {
    GpuComm c = makeComm(n, channelList.back(), slotList.back(), 60ull * 1000 * 1000 * 1000);
    failed += checkOnce<float, OpSum>(c, OpKind::Sum, maxCount / 4, false, "float") != 0;
    freeComm(c);
  }
  for (int r = 0; r < n; ++r) {
    CUDA_OK(cudaFree(send[r]));
    CUDA_OK(cudaFree(recv[r]));
  }
  std::printf("bench: best 1 GiB busbw %.1f GB/s = %.0f%% of copy/4 (target 60%%)\n", best1G,
              100.0 * best1G / (ceiling / 4));
  return failed;
}

std::vector<size_t> parseList(const char* s, size_t scale) {
  std::vector<size_t> out;
  for (const char* p = s; *p;) {
    char* end;
    out.push_back(std::strtoull(p, &end, 10) * scale);
    p = *end == ',' ? end + 1 : end;
    if (end == p && *p) break;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  bool doSweep = false, doAbort = false, doBench = false, quick = false, doNvrtc = false;
  std::vector<int> channels = {8, 16, 32};
  std::vector<size_t> slots = {size_t(128) << 10, size_t(512) << 10};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--sweep")
      doSweep = true;
    else if (a == "--abort")
      doAbort = true;
    else if (a == "--bench")
      doBench = true;
    else if (a == "--nvrtc")
      doNvrtc = true;
    else if (a == "--quick")
      quick = true;
    else if (a == "--channels" && i + 1 < argc) {
      channels.clear();
      for (size_t v : parseList(argv[++i], 1)) channels.push_back(int(v));
    } else if (a == "--slots-kib" && i + 1 < argc) {
      slots = parseList(argv[++i], 1024);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--sweep] [--nvrtc] [--abort] [--bench] [--quick] [--channels 8,16] "
                   "[--slots-kib 128,512]\n",
                   argv[0]);
      return 2;
    }
  }
  // Kernels that wait for each other must all be loaded before the first one spins: lazy
  // loading may serialize a load behind a running kernel.
  setenv("CUDA_MODULE_LOADING", "EAGER", 0);
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("ring_check: no CUDA device\n");
    return 2;
  }
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device 0: %s, %d SMs, %.0f GiB\n", prop.name, prop.multiProcessorCount,
              prop.totalGlobalMem / 1073741824.0);
  int failed = 0;
  if (doSweep) failed += sweep(quick, false);
  if (doNvrtc) failed += sweep(quick, true);
  if (doAbort) failed += blockedRank(true) + blockedRank(false);
  if (doBench) failed += bench(channels, slots);
  std::printf("ring_check: %s\n", failed ? "FAILED" : "passed");
  return failed ? 1 : 0;
}
