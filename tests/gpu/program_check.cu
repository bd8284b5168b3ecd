// program_check.cu - fused programs on device communicators through the public API
// (fcclProgramLaunch with device buffers, src/program_device.cc): the stock sgd, adam and adamw
// on 1 and 2 ranks sharing device 0 (fcclCommInitAll), 3 steps from a non-zero state, N in
// {7, 1000003}; every rank's w and its slice of the optimizer state against a float64 reference
// of the same update computed here (|got - ref| <= 1e-5 * (|ref| + 1)), and w equal bitwise on
// every rank (the ring forwards one value). Then lamb, whose whole-tensor norms have no device
// kernel yet, must fail with fcclInvalidUsage naming the step and touch nothing.
// Exit: 0 passed, 1 a failure, 2 no CUDA device.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "fccl.h"

namespace {

#define CUDA_OK(x)                                                                        \
  do {                                                                                    \
    cudaError_t e_ = (x);                                                                 \
    if (e_ != cudaSuccess) {                                                              \
      std::printf("FAIL %s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                       \
    }                                                                                     \
  } while (0)
#define FCCL_OK(x)                                                                           \
  do {                                                                                       \
    fcclResult_t r_ = (x);                                                                   \
    if (r_ != fcclSuccess) {                                                                 \
      std::printf("FAIL %s:%d %s: %s\n", __FILE__, __LINE__, #x, fcclGetLastError(nullptr)); \
      std::exit(1);                                                                          \
    }                                                                                        \
  } while (0)

int g_failures = 0;
void fail(const std::string& what) {
  if (++g_failures <= 20) std::printf("FAIL %s\n", what.c_str());
}

// Deterministic values in [lo, hi) from (seed, i).
float value(uint32_t seed, size_t i, float lo, float hi) {
  uint32_t h = uint32_t(i) * 2654435761u ^ seed * 2246822519u;
  h ^= h >> 15;
  h *= 2246822519u;
  h ^= h >> 13;
  return lo + (hi - lo) * float(h & 0xffffff) / float(1 << 24);
}

struct Hyper {
  double lr = 0.01, momentum = 0.9, dampening = 0.1, weightDecay = 0.01, beta1 = 0.9, beta2 = 0.999,
         eps = 1e-8;
};

// One rank's view: its gradient, the replicated w, and its slice of the state (one or two).
struct Rank {
  fcclComm_t comm;
  cudaStream_t stream;
  fcclProgram_t program;
  float *g, *w, *s1, *s2;
  size_t begin, end;
};

// The float64 reference of one step of `name` on the logical element i (state per element).
void reference(const std::string& name, const Hyper& h, int step, double gsum, int nranks, double& w,
               double& s1, double& s2) {
  if (name == "sgd") {  // gs = avg(g) + wd * w; buf = m * buf + (1 - d) * gs; w -= lr * buf
    const double gs = gsum / nranks + h.weightDecay * w;
    s1 = h.momentum * s1 + (1 - h.dampening) * gs;
    w = w - h.lr * s1;
    return;
  }
  const double gs = gsum / nranks;
  s1 = h.beta1 * s1 + (1 - h.beta1) * gs;
  s2 = h.beta2 * s2 + (1 - h.beta2) * gs * gs;
  const double mhat = s1 / (1 - std::pow(h.beta1, step)), vhat = s2 / (1 - std::pow(h.beta2, step));
  if (name == "adam")
    w = w - h.lr * mhat / (std::sqrt(vhat) + h.eps);
  else  // adamw
    w = w - h.lr * (mhat / (std::sqrt(vhat) + h.eps) + h.weightDecay * w);
}

std::vector<fcclScalarBinding_t> scalarsOf(const std::string& name, const Hyper& h, int step) {
  if (name == "sgd")
    return {{"lr", h.lr},
            {"momentum", h.momentum},
            {"dampening", h.dampening},
            {"weight_decay", h.weightDecay},
            {"nesterov", 0}};
  std::vector<fcclScalarBinding_t> s = {
      {"lr", h.lr}, {"beta1", h.beta1}, {"beta2", h.beta2}, {"eps", h.eps}, {"step", double(step)}};
  if (name == "adamw") s.push_back({"weight_decay", h.weightDecay});
  return s;
}

void runCase(const std::string& name, int nranks, size_t n) {
  const std::string what = name + " nranks=" + std::to_string(nranks) + " N=" + std::to_string(n);
  const bool two = name != "sgd";
  const Hyper h;
  std::vector<Rank> r(static_cast<size_t>(nranks));
  std::vector<fcclComm_t> comms(static_cast<size_t>(nranks));
  std::vector<int> devlist(static_cast<size_t>(nranks), 0);
  FCCL_OK(fcclCommInitAll(comms.data(), nranks, devlist.data()));
  const char* text = nullptr;
  FCCL_OK(fcclProgramGetStock(name.c_str(), &text));
  // Host copies: logical w and state, per-rank gradients.
  std::vector<double> w(n), s1(n), s2(n);
  for (size_t i = 0; i < n; ++i) {
    w[i] = value(1, i, -1, 1);
    s1[i] = value(2, i, -0.1f, 0.1f);
    s2[i] = value(3, i, 0.0f, 0.01f);
  }
  for (int k = 0; k < nranks; ++k) {
    Rank& x = r[size_t(k)];
    x.comm = comms[size_t(k)];
    CUDA_OK(cudaStreamCreateWithFlags(&x.stream, cudaStreamNonBlocking));
    FCCL_OK(fcclProgramCreate(&x.program, text, (name + ".fccl").c_str()));
    FCCL_OK(fcclProgramCompile(x.program, x.comm, nullptr));
    FCCL_OK(fcclSliceRange(x.comm, k, n, &x.begin, &x.end));
    const size_t sl = x.end - x.begin;
    CUDA_OK(cudaMalloc(&x.g, n * sizeof(float)));
    CUDA_OK(cudaMalloc(&x.w, n * sizeof(float)));
    CUDA_OK(cudaMalloc(&x.s1, (sl + 1) * sizeof(float)));
    CUDA_OK(cudaMalloc(&x.s2, (sl + 1) * sizeof(float)));
    std::vector<float> f(n);
    for (size_t i = 0; i < n; ++i) f[i] = float(w[i]);
    CUDA_OK(cudaMemcpy(x.w, f.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    for (size_t i = 0; i < sl; ++i) f[i] = float(s1[x.begin + i]);
    CUDA_OK(cudaMemcpy(x.s1, f.data(), sl * sizeof(float), cudaMemcpyHostToDevice));
    for (size_t i = 0; i < sl; ++i) f[i] = float(s2[x.begin + i]);
    CUDA_OK(cudaMemcpy(x.s2, f.data(), sl * sizeof(float), cudaMemcpyHostToDevice));
  }
  // The reference starts from the values as stored (float).
  for (size_t i = 0; i < n; ++i) {
    w[i] = float(w[i]);
    s1[i] = float(s1[i]);
    s2[i] = float(s2[i]);
  }
  for (int step = 1; step <= 3; ++step) {
    std::vector<double> gsum(n, 0.0);
    for (int k = 0; k < nranks; ++k) {
      Rank& x = r[size_t(k)];
      std::vector<float> g(n);
      for (size_t i = 0; i < n; ++i) {
        g[i] = value(100 + 10 * step + k, i, -1, 1);
        gsum[i] += g[i];
      }
      CUDA_OK(cudaMemcpy(x.g, g.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    }
    // Every rank's launch is enqueued before any waits: the ring kernels meet on the GPU.
    for (int k = 0; k < nranks; ++k) {
      Rank& x = r[size_t(k)];
      std::vector<fcclTensorBinding_t> t = {{"g", x.g, n}, {"w", x.w, n}};
      if (two) {
        t.push_back({"m", x.s1, n});
        t.push_back({"v", x.s2, n});
      } else {
        t.push_back({"buf", x.s1, n});
      }
      const std::vector<fcclScalarBinding_t> s = scalarsOf(name, h, step);
      if (fcclProgramLaunch(x.program, t.data(), int(t.size()), s.data(), int(s.size()), nullptr, x.comm,
                            x.stream) != fcclSuccess) {
        fail(what + ": launch on rank " + std::to_string(k) + ": " + fcclGetLastError(x.comm));
        std::exit(1);
      }
    }
    for (size_t i = 0; i < n; ++i) reference(name, h, step, gsum[i], nranks, w[i], s1[i], s2[i]);
  }
  double worst = 0;
  std::vector<float> w0;
  for (int k = 0; k < nranks; ++k) {
    Rank& x = r[size_t(k)];
    CUDA_OK(cudaStreamSynchronize(x.stream));
    std::vector<float> got(n), st1(x.end - x.begin + 1), st2(x.end - x.begin + 1);
    CUDA_OK(cudaMemcpy(got.data(), x.w, n * sizeof(float), cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(st1.data(), x.s1, (x.end - x.begin) * sizeof(float), cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(st2.data(), x.s2, (x.end - x.begin) * sizeof(float), cudaMemcpyDeviceToHost));
    auto check = [&](const char* var, size_t i, double g, double ref) {
      const double err = std::fabs(g - ref) / (1e-5 * (std::fabs(ref) + 1));
      worst = std::max(worst, err);
      if (!(err <= 1)) {
        char b[200];
        std::snprintf(b, sizeof b, ": rank %d %s[%zu] = %.9g, reference %.9g", k, var, i, g, ref);
        fail(what + b);
      }
    };
    for (size_t i = 0; i < n; ++i) check("w", i, got[i], w[i]);
    for (size_t i = x.begin; i < x.end; ++i) {
      check(two ? "m" : "buf", i, st1[i - x.begin], s1[i]);
      if (two) check("v", i, st2[i - x.begin], s2[i]);
    }
    if (k == 0)
      w0 = got;
    else if (std::memcmp(w0.data(), got.data(), n * sizeof(float)) != 0)
      fail(what + ": w differs between rank 0 and rank " + std::to_string(k));
  }
  std::printf("program %-6s nranks %d N %8zu: max_err %.3f (of the tolerance)\n", name.c_str(), nranks, n,
              worst);
  for (Rank& x : r) {
    FCCL_OK(fcclProgramDestroy(x.program));
    CUDA_OK(cudaFree(x.g));
    CUDA_OK(cudaFree(x.w));
    CUDA_OK(cudaFree(x.s1));
    CUDA_OK(cudaFree(x.s2));
    FCCL_OK(fcclCommDestroy(x.comm));
    CUDA_OK(cudaStreamDestroy(x.stream));
  }
}

// lamb on device buffers: fcclInvalidUsage naming the step, nothing enqueued.
void refusal() {
  fcclComm_t comm;
  int dev = 0;
  FCCL_OK(fcclCommInitAll(&comm, 1, &dev));
  const char* text = nullptr;
  FCCL_OK(fcclProgramGetStock("lamb", &text));
  fcclProgram_t p;
  FCCL_OK(fcclProgramCreate(&p, text, "lamb.fccl"));
  FCCL_OK(fcclProgramCompile(p, comm, nullptr));
  const fcclResult_t r = fcclProgramLaunch(p, nullptr, 0, nullptr, 0, nullptr, comm, nullptr);
  const std::string msg = fcclGetLastError(comm);
  if (r != fcclInvalidUsage || msg.find("lamb") == std::string::npos ||
      msg.find("step 0") == std::string::npos)
    fail("lamb on device buffers: got result " + std::to_string(int(r)) + ": " + msg);
  else
    std::printf("refusal: %s\n", msg.c_str());
  FCCL_OK(fcclProgramDestroy(p));
  FCCL_OK(fcclCommDestroy(comm));
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("program_check: no CUDA device\n");
    return 2;
  }
  CUDA_OK(cudaSetDevice(0));
  for (const char* name : {"sgd", "adam", "adamw"})
    for (int nranks : {1, 2})
      for (size_t n : {size_t(7), size_t(1000003)}) runCase(name, nranks, n);
  refusal();
  std::printf("program_check: %s (%d failure(s))\n", g_failures == 0 ? "PASS" : "FAIL", g_failures);
  return g_failures == 0 ? 0 : 1;
}
