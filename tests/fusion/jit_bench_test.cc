// jit_bench_test.cc - DISABLED_ benchmark (run with --gtest_also_run_disabled_tests
// --gtest_filter='*JitBench*'): Adam's update (f32, 16M elements; m, v, w from gs and scalars)
// through the tile VM, the CPU JIT and a hand-written loop, in GB/s of tensor traffic (28
// bytes/element), best of 7, one thread; plus the JIT's compile latency, cold and cached. The hand
// loop is built with the JIT's compiler and flags (see compileHand). Asserts nothing about time.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "fusion/exec/pointwise.h"
#include "fusion/jit/cpu_jit.h"
#include "test_util.h"

extern char** environ;

namespace fccl::fusion {
namespace {

// The hand-written loop: what a user would write for one Adam step (scalars hoisted, restrict
// pointers), compiled at run time with the JIT's own compiler and flags (-O3 -march=native
// -fno-math-errno: without that flag GCC cannot vectorize sqrt, and an optimize attribute does not
// reach std::sqrt), so the JIT is compared with the best a user gets from the same compiler.
const char* kHandSource = R"(#include <cmath>
extern "C" void adam(float* __restrict m, float* __restrict v, float* __restrict w,
                     const float* __restrict gs, long long n, float lr, float beta1, float beta2,
                     float eps, int step) {
  const float c1 = 1 - std::pow(beta1, static_cast<float>(step));
  const float c2 = 1 - std::pow(beta2, static_cast<float>(step));
  for (long long i = 0; i < n; ++i) {
    const float g = gs[i];
    m[i] = beta1 * m[i] + (1 - beta1) * g;
    v[i] = beta2 * v[i] + (1 - beta2) * g * g;
    w[i] = w[i] - lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + eps);
  }
}
)";
using HandFn = void (*)(float*, float*, float*, const float*, long long, float, float, float, float, int);

HandFn compileHand(const std::filesystem::path& dir) {
  const std::string src = (dir / "hand.cc").string(), so = (dir / "hand.so").string();
  std::ofstream(src) << kHandSource;
  std::vector<std::string> args = {"c++"};
  for (const std::string& f : jit::CpuJitKernel::flags()) args.push_back(f);
  args.insert(args.end(), {"-o", so, src});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int status = 0;
  if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return nullptr;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return nullptr;
  void* h = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  return h ? reinterpret_cast<HandFn>(dlsym(h, "adam")) : nullptr;
}

template <class F>
double bestSeconds(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

TEST(JitBench, DISABLED_AdamF32VmJitHand) {
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
  const auto dir = std::filesystem::temp_directory_path() / "fccl-jit-bench-cold";
  std::filesystem::remove_all(dir);
  jit::JitOptions o;
  o.cacheDir = dir.string();
  jit::CpuJitKernel cold(o), cached(o);
  ASSERT_TRUE(cold.compile(*p, {0, 1, 2}, &errors)) << errors;
  ASSERT_TRUE(cached.compile(*p, {0, 1, 2}, &errors)) << errors;
  std::printf("jit compile latency: cold %.3f s, cached %.6f s\n", cold.compileSeconds(),
              cached.compileSeconds());
  const HandFn adamByHand = compileHand(dir);
  ASSERT_NE(adamByHand, nullptr) << "could not compile the hand-written loop with c++";

  const int reps = 7;
  const double bytes = 28.0 * static_cast<double>(n);
  auto report = [&](const char* what, int64_t count, int times) {
    const double tv = bestSeconds(reps, [&] {
      for (int r = 0; r < times; ++r) k.run(0, count, b);
    });
    const double tj = bestSeconds(reps, [&] {
      for (int r = 0; r < times; ++r) cold.run(0, count, b);
    });
    const double th = bestSeconds(reps, [&] {
      for (int r = 0; r < times; ++r)
        adamByHand(m.data(), v.data(), w.data(), gs.data(), count, 1e-3f, 0.9f, 0.999f, 1e-8f, 3);
    });
    const double by = bytes * static_cast<double>(count) / static_cast<double>(n) * times;
    std::printf("adam f32 %s: VM %.2f GB/s, JIT %.2f GB/s, hand %.2f GB/s; VM/JIT %.2fx, JIT/hand %.2fx\n",
                what, by / tv / 1e9, by / tj / 1e9, by / th / 1e9, tv / tj, tj / th);
  };
  report("16M elements (DRAM)", n, 1);
  report("64Ki elements x 64 (L2)", 64 << 10, 64);
}

}  // namespace
}  // namespace fccl::fusion
