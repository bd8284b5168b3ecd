// fused_adam_check.cu - fused Adam on the GPU the way the CUDA backend runs a fused program: one
// ring allreduce kernel whose reduced hook updates every element of this rank's slice in
// registers (reduce-scatter, Adam, all-gather of the new weights: one kernel, one pass), against
// the two patterns a careful user writes, built from the same ring kernels and the same update:
//   ZeRO-1: reduce-scatter of the gradients, an Adam kernel on the slice, all-gather of w
//   DDP:    allreduce of the gradients, an Adam kernel on all N elements on every rank
// 2 ranks share the GPU (streams of one process). Check: after 3 steps from a non-zero state,
// every rank's w, m and v of the fused variant equal ZeRO-1's and DDP's (the same reduction
// order and the same update function: bitwise; the maximum difference is printed). Bench: time
// per step, the traffic model (bytes per element per rank, inputs read once, outputs written
// once), and each variant's fraction of the bound the copy ceiling implies.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/gpu/gpu_comm.cuh"

using namespace gpucheck;

namespace {

struct AdamParams {
  float lr, beta1, beta2, eps;
  float c1, c2;  // 1 / (1 - beta^step): bias corrections of this step
  float scale;   // 1 / nranks: the gradients are averaged
};

// The one update every variant runs: m and v updated in place, the new w returned.
__device__ __forceinline__ float adamStep(const AdamParams& p, float gsum, float& m, float& v, float w) {
  const float g = gsum * p.scale;
  m = p.beta1 * m + (1.0f - p.beta1) * g;
  v = p.beta2 * v + (1.0f - p.beta2) * g * g;
  return w - p.lr * (m * p.c1) / (sqrtf(v * p.c2) + p.eps);
}

// The reduced hook of the fused allreduce: the reduced gradient of logical element i becomes
// the new w[i] (stored by the primitive into the output, which is w itself, and forwarded to
// the peer); m and v are this rank's slice.
struct AdamHook {
  static constexpr bool kHasReduced = true;
  float* m;
  float* v;
  const float* w;
  size_t sliceBegin;
  AdamParams p;

  template <class T>
  __device__ __forceinline__ T reduced(size_t i, T g) const {
    const size_t k = i - sliceBegin;
    float mk = m[k], vk = v[k];
    const float nw = adamStep(p, g, mk, vk, w[i]);
    m[k] = mk;
    v[k] = vk;
    return nw;
  }
  template <class T>
  __device__ __forceinline__ uint4 reducedPack(size_t i, uint4 g) const {
    Pack<float> in, out;
    in.raw = g;
#pragma unroll
    for (int e = 0; e < 4; ++e) out.elem[e] = reduced<float>(i + e, in.elem[e]);
    return out.raw;
  }
};

__global__ void adamKernel(AdamParams p, const float* gsum, float* m, float* v, float* w, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    float mi = m[i], vi = v[i];
    w[i] = adamStep(p, gsum[i], mi, vi, w[i]);
    m[i] = mi;
    v[i] = vi;
  }
}

// Deterministic non-zero values in [lo, hi): a hash of (seed, logical index first + i).
__global__ void fillKernel(float* x, size_t n, size_t first, uint32_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(first + i) * 2654435761u ^ seed * 2246822519u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    x[i] = lo + (hi - lo) * float(h & 0xffffff) / float(1 << 24);
  }
}

void fill(float* x, size_t n, size_t first, uint32_t seed, float lo, float hi) {
  fillKernel<<<1024, 256>>>(x, n, first, seed, lo, hi);
  CUDA_OK(cudaGetLastError());
}

enum class Variant {
  Fused,
  Zero1,
  Ddp
};
const char* variantName(Variant v) {
  return v == Variant::Fused ? "fused" : v == Variant::Zero1 ? "zero1" : "ddp";
}

// One rank's buffers for every variant: its gradient, and per variant its parameters and state
// (m and v sliced for fused and ZeRO-1, whole for DDP) and the reduced gradients' storage.
struct RankBufs {
  float* g;
  float* w[3];
  float *m[3], *v[3];
  float* gs;    // ZeRO-1: the reduced slice
  float* gsum;  // DDP: the reduced whole
};

struct Problem {
  size_t n, slice;
  int nranks;
  std::vector<RankBufs> rank;
};

size_t sliceBegin(const Problem& pb, int r) { return std::min(pb.n, size_t(r) * pb.slice); }
size_t sliceSize(const Problem& pb, int r) {
  return std::min(pb.n, size_t(r + 1) * pb.slice) - sliceBegin(pb, r);
}

float* devFloats(size_t n) {
  float* p;
  CUDA_OK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(float)));
  return p;
}

Problem makeProblem(size_t n, int nranks) {
  Problem pb{n, (n + nranks - 1) / nranks, nranks, std::vector<RankBufs>(nranks)};
  for (int r = 0; r < nranks; ++r) {
    RankBufs& b = pb.rank[r];
    b.g = devFloats(n);
    fill(b.g, n, 0, 100 + r, -1.0f, 1.0f);
    for (int k = 0; k < 3; ++k) {
      const size_t state = Variant(k) == Variant::Ddp ? n : sliceSize(pb, r);
      const size_t state0 = Variant(k) == Variant::Ddp ? 0 : sliceBegin(pb, r);
      b.w[k] = devFloats(n);
      b.m[k] = devFloats(state);
      b.v[k] = devFloats(state);
      fill(b.w[k], n, 0, 7, 0.5f, 1.5f);  // replicated: the same on every rank
      // State from a previous step, the same values at the same logical index in every layout.
      fill(b.m[k], state, state0, 11, -0.01f, 0.01f);
      fill(b.v[k], state, state0, 13, 0.0f, 0.001f);
    }
    b.gs = devFloats(sliceSize(pb, r));
    b.gsum = devFloats(n);
  }
  CUDA_OK(cudaDeviceSynchronize());
  return pb;
}

AdamParams paramsFor(int step, int nranks) {
  AdamParams p{1e-3f, 0.9f, 0.999f, 1e-8f, 0, 0, 1.0f / float(nranks)};
  p.c1 = 1.0f / (1.0f - std::pow(p.beta1, float(step)));
  p.c2 = 1.0f / (1.0f - std::pow(p.beta2, float(step)));
  return p;
}

// One optimizer step of variant `var` on rank r, enqueued on its stream.
void launchStep(GpuComm& c, Problem& pb, Variant var, int r, int step) {
  RankBufs& b = pb.rank[r];
  const int k = int(var);
  const AdamParams p = paramsFor(step, pb.nranks);
  const size_t s0 = sliceBegin(pb, r), sn = sliceSize(pb, r);
  cudaStream_t st = c.ranks[r].stream;
  switch (var) {
    case Variant::Fused:
      launchRing<float, OpSum, Ring::AllReduce>(c, r, b.g, b.w[k], pb.n,
                                                AdamHook{b.m[k], b.v[k], b.w[k], s0, p});
      break;
    case Variant::Zero1:
      launchRing<float, OpSum, Ring::ReduceScatterSliced>(c, r, b.g, b.gs, pb.n);
      adamKernel<<<1024, 256, 0, st>>>(p, b.gs, b.m[k], b.v[k], b.w[k] + s0, sn);
      CUDA_OK(cudaGetLastError());
      launchRing<float, OpSum, Ring::AllGatherSliced>(c, r, b.w[k] + s0, b.w[k], pb.n);
      break;
    case Variant::Ddp:
      launchRing<float, OpSum, Ring::AllReduce>(c, r, b.g, b.gsum, pb.n);
      adamKernel<<<1024, 256, 0, st>>>(p, b.gsum, b.m[k], b.v[k], b.w[k], pb.n);
      CUDA_OK(cudaGetLastError());
      break;
  }
}

bool syncAll(GpuComm& c, const char* what) {
  for (Rank& rk : c.ranks) {
    if (!syncWithin(rk, 120.0)) {
      std::printf("%s: rank %d hung\n", what, rk.comm.rank);
      std::exit(1);
    }
    if (rk.errorHost->code != 0) {
      std::printf("%s: rank %d failed with %d\n", what, rk.comm.rank, rk.errorHost->code);
      return false;
    }
  }
  return true;
}

std::vector<float> download(const float* p, size_t n) {
  std::vector<float> h(n);
  CUDA_OK(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
  return h;
}

double maxRelDiff(const std::vector<float>& a, const float* b, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return INFINITY;
    worst = std::max(worst, std::fabs(double(a[i]) - b[i]) / std::max(1e-6, std::fabs(double(b[i]))));
  }
  return worst;
}

// Runs 3 steps of every variant and compares them; returns the number of failed comparisons.
int check(size_t n, int nranks) {
  GpuComm c = makeComm(nranks, 8, 64 << 10, 60ull * 1000 * 1000 * 1000);
  Problem pb = makeProblem(n, nranks);
  for (int step = 1; step <= 3; ++step)
    for (Variant var : {Variant::Fused, Variant::Zero1, Variant::Ddp})
      for (int r = 0; r < nranks; ++r) launchStep(c, pb, var, r, step);
  int failed = syncAll(c, "check") ? 0 : 1;
  for (int r = 0; r < nranks && !failed; ++r) {
    const RankBufs& b = pb.rank[r];
    const size_t s0 = sliceBegin(pb, r), sn = sliceSize(pb, r);
    const std::vector<float> w = download(b.w[0], n), m = download(b.m[0], sn), v = download(b.v[0], sn);
    const std::vector<float> wz = download(b.w[1], n), mz = download(b.m[1], sn), vz = download(b.v[1], sn);
    const std::vector<float> wd = download(b.w[2], n), md = download(b.m[2], n), vd = download(b.v[2], n);
    const double dz =
        std::max({maxRelDiff(w, wz.data(), n), maxRelDiff(m, mz.data(), sn), maxRelDiff(v, vz.data(), sn)});
    const double dd = std::max(
        {maxRelDiff(w, wd.data(), n), maxRelDiff(m, md.data() + s0, sn), maxRelDiff(v, vd.data() + s0, sn)});
    const bool ok = dz <= 1e-6 && dd <= 1e-6;
    std::printf("check n=%zu ranks=%d rank %d: fused vs zero1 max rel diff %.3g, vs ddp %.3g: %s\n", n,
                nranks, r, dz, dd, ok ? "PASS" : "FAIL");
    failed += !ok;
  }
  freeComm(c);
  return failed;
}

// Time per step of each variant (every rank's stream, the slowest), 2 ranks.
void bench(size_t bytes, int nch, size_t slot, double copyGBs) {
  const int nranks = 2;
  const size_t n = bytes / sizeof(float);
  GpuComm c = makeComm(nranks, nch, slot, 60ull * 1000 * 1000 * 1000);
  Problem pb = makeProblem(n, nranks);
  // Bytes of memory traffic per element per rank at 2 ranks (inputs read once, outputs written
  // once, FIFO slots not counted): fused g, w and the slice's m, v; ZeRO-1 adds the reduced
  // slice's store and load and the all-gather's read of the slice; DDP updates all N.
  const double model[3] = {8 + 20.0 / nranks, 8 + 32.0 / nranks, 36};
  double ms[3];
  for (Variant var : {Variant::Fused, Variant::Zero1, Variant::Ddp}) {
    const int iters = 10;
    for (int r = 0; r < nranks; ++r) launchStep(c, pb, var, r, 1);  // warm-up
    std::vector<cudaEvent_t> e0(nranks), e1(nranks);
    for (int r = 0; r < nranks; ++r) {
      CUDA_OK(cudaEventCreate(&e0[r]));
      CUDA_OK(cudaEventCreate(&e1[r]));
      CUDA_OK(cudaEventRecord(e0[r], c.ranks[r].stream));
    }
    for (int it = 0; it < iters; ++it)
      for (int r = 0; r < nranks; ++r) launchStep(c, pb, var, r, 2 + it);
    for (int r = 0; r < nranks; ++r) CUDA_OK(cudaEventRecord(e1[r], c.ranks[r].stream));
    if (!syncAll(c, variantName(var))) std::exit(1);
    double worst = 0;
    for (int r = 0; r < nranks; ++r) {
      float t;
      CUDA_OK(cudaEventElapsedTime(&t, e0[r], e1[r]));
      worst = std::max(worst, double(t) / iters);
    }
    ms[int(var)] = worst;
  }
  std::printf("%12zu %4d %6zuK | %9.3f %9.3f %9.3f | %5.2fx %5.2fx |", bytes, nch, slot >> 10, ms[0], ms[1],
              ms[2], ms[1] / ms[0], ms[2] / ms[0]);
  for (int k = 0; k < 3; ++k) {
    const double boundMs =
        nranks * double(n) * model[k] / (copyGBs * 1e9) * 1e3;  // both ranks share the memory
    std::printf(" %4.0f%%", 100.0 * boundMs / ms[k]);
  }
  std::printf("\n");
  freeComm(c);
}

}  // namespace

int main(int argc, char** argv) {
  setenv("CUDA_MODULE_LOADING", "EAGER", 0);  // see ring_check.cu
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("fused_adam_check: no CUDA device\n");
    return 2;
  }
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  int failed = 0;
  for (size_t n : {size_t(1), size_t(7), size_t(4099), (size_t(1) << 20) + 3, size_t(1) << 22})
    for (int nranks : {2, 3}) failed += check(n, nranks);
  if (!quick) {
    const CopyBw copy = copyCeiling(size_t(1) << 30);
    const double ceiling = std::max(copy.memcpyGBs, copy.kernelGBs);
    std::printf(
        "copy ceiling %.0f GB/s (read + written); traffic model per element per rank at 2 ranks: "
        "fused 18, zero1 24, ddp 36 bytes\n",
        ceiling);
    std::printf("%12s %4s %7s | %9s %9s %9s | %6s %6s | %5s %5s %5s\n", "grad bytes", "ch", "slot",
                "fused ms", "zero1 ms", "ddp ms", "z/f", "d/f", "f%", "z%", "d%");
    for (int nch : {16, 32})
      for (size_t slot : {size_t(128) << 10, size_t(512) << 10}) bench(size_t(256) << 20, nch, slot, ceiling);
  }
  std::printf("fused_adam_check: %s\n", failed ? "FAILED" : "passed");
  return failed ? 1 : 0;
}
