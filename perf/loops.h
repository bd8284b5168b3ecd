// loops.h - every loop the perf tools time outside the library: the stock optimizers' updates
// (fused_perf's unfused baselines) and the memory-ceiling kernels (fused_perf, membw). loops.cc
// is compiled with the C++ JIT's flags (fusion/jit/cpu_jit.cc, CpuJitKernel::flags(): -O3
// -march=native -fno-math-errno -ffp-contract=off), so a baseline's update loop and a fused
// program's hook are code of the same quality and only the schedule differs.
// Each update computes what its stock program (tests/fusion/programs/*.fccl) computes, in the
// same operations, order and precision (float32; pow in float32; norms in float64).
#ifndef FCCL_PERF_LOOPS_H_
#define FCCL_PERF_LOOPS_H_

#include <cstddef>

namespace fccl::perf {

// The stock optimizers' scalars, as float32 values (the programs declare them f32).
struct OptimParams {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weightDecay = 1e-2f;
  float momentum = 0.9f, dampening = 0.1f;
  bool nesterov = true;
  int step = 1;
};

// Each updates elements [0, n) in place. `g` is the reduced gradient as the program's pointwise
// statements see it. sgd, adamw and lamb reduce with avg: g is the average when gdiv is 1, or the
// sum to divide by gdiv = nranks here (a reduction without avg, MPI's), rounded as fccl's avg
// divides (float32 x / float32 n). adam reduces with sum and adam.fccl divides by nranks itself.
void sgdUpdate(const float* g, float* w, float* buf, size_t n, int gdiv, const OptimParams& p);
void adamUpdate(const float* gsum, float* w, float* m, float* v, size_t n, int nranks, const OptimParams& p);
void adamwUpdate(const float* g, float* w, float* m, float* v, size_t n, int gdiv, const OptimParams& p);
// LAMB in two passes around the allreduce of the norms. Pass 1 updates m and v, stores the
// update direction u, and adds the squares of w and u to *wsq and *usq (float64, summed block by
// block while the block is in cache); pass 2 applies w -= lrTrust * u, lrTrust = lr * trust
// rounded to float32 as lamb.fccl's `lr * trust * u` rounds it.
void lambPass1(const float* g, const float* w, float* m, float* v, float* u, size_t n, int gdiv,
               const OptimParams& p, double* wsq, double* usq);
void lambPass2(float* w, const float* u, size_t n, float lrTrust);
// lamb.fccl's trust ratio from the two norms.
float lambTrust(double wsq, double usq);

// Memory-ceiling kernels, each counting bytes read + bytes written. Streaming (non-temporal)
// stores where a kernel writes a buffer it does not read, as fccl's collectives write outputs.
double readAll(const float* a, size_t n);                    // reads n floats: 4n bytes
void copyStreaming(float* dst, const float* src, size_t n);  // 8n bytes
// 8n bytes counted; ordinary stores, which also read each line first (read-for-ownership).
void copyCached(float* dst, const float* src, size_t n);
void triadStreaming(float* dst, const float* a, const float* b, size_t n);   // 12n bytes
void updateInPlace(const float* g, float* a, float* b, float* c, size_t n);  // reads 4, writes 3: 28n

}  // namespace fccl::perf

#endif  // FCCL_PERF_LOOPS_H_
