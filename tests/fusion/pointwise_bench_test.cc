// pointwise_bench_test.cc - DISABLED_ benchmark (run with --gtest_also_run_disabled_tests
// --gtest_filter='*Bench*'): Adam's update (m, v, w from gs and scalars, f32) over 16M elements
// through the tile VM vs the same math as a hand-written loop in this file (built with
// the same flags), in GB/s of tensor traffic: read m, v, w, gs, write m, v, w = 28 bytes/element.
// Best of several repetitions, single thread. Not a test of speed: it asserts nothing about time.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "fusion/exec/pointwise.h"
#include "test_util.h"

namespace fccl::fusion {
namespace {

// The hand-written loop: what a user would write for one Adam step (scalars hoisted), given the
// same avx2 clone as the evaluator's kernels. Note: built without -fno-math-errno, GCC cannot
// vectorize std::sqrt here; build this file with -fno-math-errno for the vectorized baseline.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((noinline, target_clones("avx2", "default")))
#else
__attribute__((noinline))
#endif
void adamByHand(float* m, float* v, float* w, const float* gs, int64_t n,
                                          float lr, float beta1, float beta2, float eps, int step) {
  const float c1 = 1 - std::pow(beta1, static_cast<float>(step));
  const float c2 = 1 - std::pow(beta2, static_cast<float>(step));
  for (int64_t i = 0; i < n; ++i) {
    const float g = gs[i];
    m[i] = beta1 * m[i] + (1 - beta1) * g;
    v[i] = beta2 * v[i] + (1 - beta2) * g * g;
    w[i] = w[i] - lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + eps);
  }
}

template <class F>
double bestSeconds(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best;
}

TEST(PointwiseBench, DISABLED_AdamF32Bandwidth) {
  const int64_t n = int64_t{16} << 20;
  std::string errors;
  auto p = ir::test::compile(
      "program adam\n  in gs : f32[N] sliced\n  inout w : f32[N] sliced\n  inout m : f32[N] sliced\n"
      "  inout v : f32[N] sliced\n  scalar lr : f32, beta1 : f32, beta2 : f32, eps : f32, step : i32\n"
      "  m  = beta1 * m + (1 - beta1) * gs\n  v  = beta2 * v + (1 - beta2) * gs * gs\n"
      "  w  = w - lr * (m / (1 - beta1 ^ step)) / (sqrt(v / (1 - beta2 ^ step)) + eps)\n",
      &errors);
  ASSERT_TRUE(p) << errors;
  std::vector<float> m(n, 0.1f), v(n, 0.2f), w(n, 1.0f), gs(n, 0.01f);
  Bindings b;
  b.tensors.resize(p->vars.size());
  b.scalars.resize(p->vars.size());
  b.tensors[static_cast<size_t>(p->findVar("m"))] = {m.data(), 0};
  b.tensors[static_cast<size_t>(p->findVar("v"))] = {v.data(), 0};
  b.tensors[static_cast<size_t>(p->findVar("w"))] = {w.data(), 0};
  b.tensors[static_cast<size_t>(p->findVar("gs"))] = {gs.data(), 0};
  b.scalars[static_cast<size_t>(p->findVar("lr"))] = 1e-3;
  b.scalars[static_cast<size_t>(p->findVar("beta1"))] = 0.9;
  b.scalars[static_cast<size_t>(p->findVar("beta2"))] = 0.999;
  b.scalars[static_cast<size_t>(p->findVar("eps"))] = 1e-8;
  b.scalars[static_cast<size_t>(p->findVar("step"))] = 3;
  PointwiseKernel k;
  ASSERT_TRUE(k.compile(*p, {0, 1, 2}, &errors)) << errors;
  const int reps = 7;
  const double bytes = 28.0 * static_cast<double>(n);
  const double tk = bestSeconds(reps, [&] { k.run(0, n, b); });
  const double th = bestSeconds(
      reps, [&] { adamByHand(m.data(), v.data(), w.data(), gs.data(), n, 1e-3f, 0.9f, 0.999f, 1e-8f, 3); });
  std::printf(
      "adam f32, 16M elements, %zu tile instructions: tile VM %.2f GB/s (%.2f ms), "
      "hand-written loop %.2f GB/s (%.2f ms), ratio %.2fx\n",
      k.tileInstructions(), bytes / tk / 1e9, tk * 1e3, bytes / th / 1e9, th * 1e3, tk / th);
  const int64_t chunk = 64 << 10;
  // Cache-resident: one 64Ki-element chunk run 64 times (the compute-bound view).
  const double tkh = bestSeconds(reps, [&] {
    for (int r = 0; r < 64; ++r) k.run(0, chunk, b);
  });
  const double thh = bestSeconds(reps, [&] {
    for (int r = 0; r < 64; ++r)
      adamByHand(m.data(), v.data(), w.data(), gs.data(), chunk, 1e-3f, 0.9f, 0.999f, 1e-8f, 3);
  });
  std::printf(
      "adam f32, 64Ki elements (L2-resident) x 64: tile VM %.2f GB/s, hand-written %.2f GB/s, "
      "ratio %.2fx\n",
      bytes / 4 / tkh / 1e9, bytes / 4 / thh / 1e9, tkh / thh);
}

}  // namespace
}  // namespace fccl::fusion
