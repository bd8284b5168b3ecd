// device_program_test.cc - the CUDA backend's plan for fused programs on device buffers
// (fusion/codegen/device_program.h), no GPU needed: which step becomes which kernel for every
// stock program, the sentence for the steps the device cannot run yet, the FcclHookArgs the host
// packs against the layout NVRTC compiles, and an NVRTC compile to machine code (sm_90, empty
// log) of every kernel each stock program needs. tests/gpu/program_check.cc runs them on a GPU.
#ifdef FCCL_HAVE_CODEGEN
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "fusion/codegen/cuda_emit.h"
#include "fusion/codegen/device_program.h"
#include "fusion/codegen/nvrtc_compile.h"
#include "fusion/codegen/ring_kernel.h"
#include "fusion/passes/lower.h"
#include "fusion/passes/registry.h"
#include "test_util.h"

namespace fccl::fusion::codegen {
namespace {

Schedule lowered(const std::string& text) {
  std::string errors;
  auto p = ir::test::compile(text, &errors);
  EXPECT_TRUE(p) << errors;
  Schedule s;
  if (!p) return s;
  std::string err;
  EXPECT_TRUE(lower(*p, passes::defaultPipeline(), &s, nullptr, &err)) << err;
  return s;
}

Schedule stockSchedule(const std::string& name) {
  return lowered(ir::test::readFile(ir::test::programPath(name)));
}

// The kinds planned for each step, or the refusal.
std::string plan(const Schedule& s, std::vector<DeviceStep>* steps = nullptr) {
  std::vector<DeviceStep> local;
  if (steps == nullptr) steps = &local;
  std::string why;
  if (!planDeviceProgram(s, "t", steps, &why)) return "refused: " + why;
  std::string out;
  for (const DeviceStep& d : *steps) out += std::string(out.empty() ? "" : ", ") + deviceStepKindName(d.kind);
  return out;
}

// A Pointwise step, a plain collective and a scalar-only step, on declared tensors only.
constexpr const char* kPointwiseProgram = R"(program axpy_sum
  in    x : f32[N] local
  inout y : f32[N] local
  out   s : f32[N] replicated
  inout a : f32 replicated
  y = a * x + y
  s = allreduce(sum, y)
  a = a * 2
)";

TEST(DeviceProgram, StockProgramsStepKinds) {
  const std::map<std::string, std::string> want = {
      {"sgd", "fused ring kernel"},
      {"adam", "fused ring kernel"},
      {"adamw", "fused ring kernel"},
      {"mixed_precision", "fused ring kernel"},
      {"bias_dropout_residual", "fused ring kernel"},
      // Whole-tensor reductions wait for device kernels; so do Fused steps that keep their
      // results sliced for them (nothing gathered: a reduce-scatter with the hook).
      {"loss_scaling", "refused: step 2 (reduction): the whole-tensor reduction any_nonfinite"},
      {"lamb", "refused: step 0 (fused): it gathers 0 results"},
      {"clip_global_norm", "refused: step 0 (fused): it gathers 0 results"},
  };
  for (const auto& [name, kinds] : want) {
    SCOPED_TRACE(name);
    const std::string got = plan(stockSchedule(name));
    EXPECT_EQ(got.substr(0, kinds.size()), kinds) << got;
  }
}

TEST(DeviceProgram, FusedRingStepUsesTheInputsTypeAndOperator) {
  std::vector<DeviceStep> d;
  ASSERT_EQ(plan(stockSchedule("sgd"), &d), "fused ring kernel");
  EXPECT_EQ(d[0].type, fcclFloat32);
  EXPECT_EQ(d[0].op, fcclAvg);  // reduce_scatter(avg, g)
  EXPECT_EQ(d[0].kernel, "fccl_fused_sgd_t_0");
  EXPECT_EQ(d[0].alone, "fccl_kernel_sgd_t_0");
  ASSERT_EQ(plan(stockSchedule("mixed_precision"), &d), "fused ring kernel");
  EXPECT_EQ(d[0].type, fcclFloat16);
  EXPECT_EQ(d[0].op, fcclSum);
  // The hook divides first for Avg, runs the step per element and forwards the gathered w.
  const Schedule s = stockSchedule("sgd");
  ASSERT_TRUE(planDeviceProgram(s, "t", &d, nullptr));
  std::string err;
  const std::string src = deviceStepSource(s, 0, d[0], &err);
  ASSERT_FALSE(src.empty()) << err;
  EXPECT_NE(src.find("DevDivideHook::divideOne(g, divisor)"), std::string::npos) << src;
  EXPECT_NE(src.find("__device__ __forceinline__ void fccl_elem_sgd_t_0(const FcclHookArgs& a, const float* "
                     "reduced, long long i)"),
            std::string::npos)
      << src;
  EXPECT_NE(src.find("collectiveBody<float, fccl::dev::OpSum, fccl::dev::DevColl::AllReduce, FcclFusedHook>"),
            std::string::npos);
  EXPECT_EQ(src.find("a.result"), std::string::npos) << "scalars are the host's";
}

TEST(DeviceProgram, PointwiseCollectiveAndHostScalarSteps) {
  const Schedule s = lowered(kPointwiseProgram);
  std::vector<DeviceStep> d;
  const std::string got = plan(s, &d);
  // y = a * x + y; allreduce(sum, y) -> s; a = a * 2 (scalar only: no kernel).
  ASSERT_EQ(got, "pointwise kernel, collective, host scalars") << printSchedule(s);
  EXPECT_EQ(d[0].kernel, "fccl_kernel_axpy_sum_t_0");
  for (size_t k = 0; k < d.size(); ++k) {
    if (d[k].kind != DeviceStepKind::Pointwise && d[k].kind != DeviceStepKind::FusedRing) {
      std::string err;
      EXPECT_EQ(deviceStepSource(s, k, d[k], &err), "");
      EXPECT_NE(err.find("has no kernel"), std::string::npos);
    }
  }
}

TEST(DeviceProgram, RefusalsNameTheStepAndWhy) {
  // Two results from one reduced value.
  const Schedule two = lowered(R"(program two
  in    g : f32[N] local
  inout w : f32[N] replicated
  inout u : f32[N] replicated
  gs = allreduce(sum, g)
  w = w - gs
  u = u + gs
)");
  // Lowered to an allreduce into the temporary gs, then one Pointwise step reading it.
  EXPECT_EQ(plan(two), "refused: temporaries kept across steps (gs) have no device storage yet")
      << printSchedule(two);
}

TEST(DeviceProgram, PackedHookArgs) {
  const Schedule s = stockSchedule("adam");
  const ir::Program& p = s.program;
  Bindings b;
  b.tensors.resize(p.vars.size());
  b.scalars.assign(p.vars.size(), 0.0);
  int step = -1, lr = -1, w = -1;
  for (size_t v = 0; v < p.vars.size(); ++v) {
    if (p.vars[v].name == "step") step = int(v);
    if (p.vars[v].name == "lr") lr = int(v);
    if (p.vars[v].name == "w") w = int(v);
  }
  ASSERT_TRUE(step >= 0 && lr >= 0 && w >= 0);
  float storage[4];
  b.tensors[size_t(w)] = TensorBinding{storage, 7};
  b.scalars[size_t(step)] = 3;
  b.scalars[size_t(lr)] = 0.5;
  const std::vector<uint64_t> a = packHookArgs(p, b, 1, 4);
  const size_t slots = (a.size() - 2) / 3;
  ASSERT_EQ(a.size(), 3 * slots + 2);
  EXPECT_EQ(a[size_t(w)], uint64_t(reinterpret_cast<uintptr_t>(storage)));
  EXPECT_EQ(a[slots + size_t(w)], 7u);
  EXPECT_EQ(a[2 * slots + size_t(step)], 3u);  // an integer: FcclScalar.i
  double lrValue;
  std::memcpy(&lrValue, &a[2 * slots + size_t(lr)], sizeof lrValue);
  EXPECT_EQ(lrValue, 0.5);  // a float: FcclScalar.f
  EXPECT_EQ(a[3 * slots], 0u);
  EXPECT_EQ(a[3 * slots + 1], 4u | (1ull << 32));
#ifdef FCCL_CODEGEN_HAVE_NVRTC
  // The device's layout of the same struct, checked by the compiler.
  // (NVRTC has no offsetof; the member order is the prelude's text, the size is checked here.)
  const std::string src =
      cudaPrelude(p) + "static_assert(sizeof(FcclHookArgs) == " + std::to_string(8 * a.size()) +
      ", \"FcclHookArgs as packed\");\nextern \"C\" __global__ void fccl_layout(FcclHookArgs) {}\n";
  std::string image, log;
  EXPECT_TRUE(compileWithNvrtc(src, "layout", "sm_90", deviceHeaders(), &image, &log)) << log;
#endif
}

#ifdef FCCL_CODEGEN_HAVE_NVRTC
// Every kernel of every stock program the device runs, and of the Pointwise program above, to
// sm_90 machine code with no warning; each image has its kernels.
TEST(DeviceProgram, EveryDeviceKernelCompiles) {
  std::vector<std::pair<std::string, Schedule>> programs;
  for (const char* name : {"sgd", "adam", "adamw", "mixed_precision", "bias_dropout_residual"})
    programs.emplace_back(name, stockSchedule(name));
  programs.emplace_back("axpy_sum", lowered(kPointwiseProgram));
  int kernels = 0;
  for (const auto& [name, s] : programs) {
    SCOPED_TRACE(name);
    std::vector<DeviceStep> d;
    std::string why;
    ASSERT_TRUE(planDeviceProgram(s, "t", &d, &why)) << why;
    for (size_t k = 0; k < d.size(); ++k) {
      if (d[k].kind != DeviceStepKind::Pointwise && d[k].kind != DeviceStepKind::FusedRing) continue;
      std::string err, image, log;
      const std::string src = deviceStepSource(s, k, d[k], &err);
      ASSERT_FALSE(src.empty()) << err;
      ASSERT_TRUE(compileWithNvrtc(src, d[k].kernel, "sm_90", deviceHeaders(), &image, &log)) << log << "\n"
                                                                                              << src;
      EXPECT_EQ(log, "") << "compiled with warnings:\n" << src;
      EXPECT_NE(image.find(d[k].kernel), std::string::npos);
      if (!d[k].alone.empty()) EXPECT_NE(image.find(d[k].alone), std::string::npos);
      ++kernels;
    }
  }
  EXPECT_GE(kernels, 6);
}
#endif

}  // namespace
}  // namespace fccl::fusion::codegen
#endif  // FCCL_HAVE_CODEGEN
