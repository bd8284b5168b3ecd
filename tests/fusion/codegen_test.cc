// codegen_test.cc - CUDA emission (fusion/codegen) for every stock program and synthetic
// programs covering every pointwise op, dtype and cast: golden fragments of the text, and an
// NVRTC compile for compute_80 and compute_90 with an empty log (a warning is a failure).
// Compiled only where fccl_codegen is linked (FCCL_HAVE_CODEGEN), so the tests/fusion glob
// does not break a build that has not added fusion/codegen yet.
#ifdef FCCL_HAVE_CODEGEN
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>

#include "fusion/codegen/cuda_emit.h"
#include "fusion/codegen/cuda_expr.h"
#include "fusion/codegen/nvrtc_compile.h"
#include "fusion/passes/lower.h"
#include "test_util.h"

namespace fccl::fusion::codegen {
namespace {

using ir::test::compile;
using ir::test::corpus;
using ir::test::readFile;

// Compiles for both archs; returns the slower time in ms (or -1 without NVRTC).
double compileBoth(const std::string& src, const std::string& name) {
  if (!haveNvrtc()) return -1;
  double worst = 0;
  for (const char* arch : {"compute_80", "compute_90"}) {
    std::string ptx, log;
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(compileWithNvrtc(src, name, arch, &ptx, &log)) << name << " " << arch << ":\n"
                                                               << log << "\n"
                                                               << src;
    worst = std::max(
        worst, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    EXPECT_EQ(log, "") << name << " " << arch << " compiled with warnings";
    EXPECT_NE(ptx.find(".entry fccl_kernel_"), std::string::npos) << name << " " << arch;
  }
  return worst;
}

std::string emitChecked(const std::string& text) {
  std::string errors;
  auto p = compile(text, &errors);
  EXPECT_TRUE(p) << errors;
  if (!p) return "";
  std::string err;
  std::string src = emitProgramCuda(*p, &err);
  EXPECT_FALSE(src.empty()) << err;
  return src;
}

// Golden fragments per stock program: the hook signature, statements, loads and stores that
// show the fusion and the types.
const std::map<std::string, std::vector<std::string>> kGolden = {
    {"adam",
     {"__device__ void fccl_hook_adam_0(const FcclHookArgs& a, const float* reduced, "
      "long long begin, long long end) {",
      "const float rs_g_0 = reduced[i - begin];  // the reduced chunk",
      "    // line 10: gs = rs_g / f32(nranks)\n    const float gs_1 = rs_g_0 / (float)a.nranks;",
      "    // line 11: m = beta1 * m + (1 - beta1) * gs\n"
      "    const float m_1 = beta1_0 * m_0 + (1.0f - beta1_0) * gs_1;\n"
      "    m_p[i - m_off] = m_1;",
      "w_p[i] = w_0 - lr_0 * (m_1 / (1.0f - powf(beta1_0, (float)step_0))) / "
      "(sqrtf(v_1 / (1.0f - powf(beta2_0, (float)step_0))) + eps_0);",
      "const long long m_off = a.base[2];", "const int step_0 = (int)a.scalar[8].i;",
      "extern \"C\" __global__ void fccl_kernel_adam_0(const FcclHookArgs a, const float* "
      "reduced, long long begin, long long end) {"}},
    {"adamw",
     {"fccl_hook_adamw_0(const FcclHookArgs& a, const float* reduced", "weight_decay_0 * w_0",
      "const float mhat_1 = m_1 / "}},
    {"bias_dropout_residual",
     {"y_p[i] = fccl_dropout(rs_partial_0 + bias_0, (double)p_0, seed_0, i) + residual_0;",
      "const long long seed_0 = a.scalar[5].i;", "dropoutHash", "FCCL_DROPOUT_HD"}},
    {"clip_global_norm",
     {"fccl_hook_clip_global_norm_0(const FcclHookArgs& a, const float* reduced",
      "const float gnorm_0 = (float)a.scalar[2].f;", "a.result[6].f = coef_1;",
      "const float coef_1 = fccl_min(max_norm_0 / (gnorm_0 + 1e-06f), 1.0f);",
      "all_gather_in_p[i - all_gather_in_off] = w_0 - lr_0 * coef_0 * gs_0;"}},
    {"lamb", {"fccl_hook_lamb_0(", "const float trust_1 = ", "u_p[i - u_off] = "}},
    {"loss_scaling",
     {"#include <cuda_fp16.h>", "const float allreduce_g_0 = __half2float(allreduce_g_p[i]);",
      "if (fccl_thread() == 0) a.result[2].f = scale_1;",
      "if (fccl_thread() == 0) a.result[3].i = skipped_1;",
      "w_p[i] = (overflow_0 ? w_0 : (w_0 - lr_0 * gs_0));"}},
    {"mixed_precision",
     {"#include <cuda_fp16.h>", "const __half* reduced", "__half* const w16_p",
      "w16_p[i] = __float2half_rn(fccl_to_f16(master_1));"}},
    {"sgd",
     {"const bool nesterov_0 = (a.scalar[7].i != 0);",
      "const float d_1 = (nesterov_0 ? (gs_1 + momentum_0 * buf_1) : buf_1);"}},
    {"features",
     {"fccl_ipow<int>(k_0, 2)", "fccl_div(big_0, 2LL)", "fccl_isfinite(a_0)",
      "1.0f / sqrtf(fabsf(t3_1) + 1.0f)", "z_p[i] = (double)reduce_x_0 + (double)allreduce_x_0;"}},
};

TEST(Codegen, StockProgramsEmitAndCompile) {
  const auto files = corpus("programs");
  ASSERT_FALSE(files.empty());
  double total = 0;
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    std::string errors;
    auto p = compile(readFile(f), &errors, f);
    ASSERT_TRUE(p) << errors;
    std::string err;
    const std::string src = emitProgramCuda(*p, &err);
    ASSERT_FALSE(src.empty()) << err;
    EXPECT_EQ(src, emitProgramCuda(*p)) << "emission is not deterministic";
    EXPECT_EQ(src.find("#include <cuda_runtime"), std::string::npos);
    if (auto g = kGolden.find(p->name); g != kGolden.end()) {
      for (const std::string& frag : g->second) {
        EXPECT_NE(src.find(frag), std::string::npos) << "missing: " << frag << "\n" << src;
      }
    }
    const double ms = compileBoth(src, p->name);
    total += ms;
    std::printf("[   NVRTC  ] %-24s %7.1f ms per arch (slower of compute_80/90)\n", p->name.c_str(), ms);
  }
  if (haveNvrtc()) {
    EXPECT_LT(total, 20000) << "NVRTC compiles are too slow for the suite";
  }
}

// Unfused schedules (no passes): every pointwise statement runs as a plain Pointwise step over
// whole tensors; those hooks compile too.
TEST(Codegen, UnfusedSchedulesCompile) {
  for (const std::string& f : corpus("programs")) {
    SCOPED_TRACE(f);
    auto p = compile(readFile(f));
    ASSERT_TRUE(p);
    Schedule s;
    std::string err;
    ASSERT_TRUE(lower(*p, {}, &s, nullptr, &err)) << err;
    const std::string src = emitScheduleCuda(s, &err);
    ASSERT_FALSE(src.empty()) << err;
    EXPECT_EQ(src.find("const float* reduced"), std::string::npos) << "nothing is fused";
    compileBoth(src, p->name + "_unfused");
  }
}

// Every pointwise op, for every float dtype, and the integer ops for i32 and i64.
TEST(Codegen, EveryPointwiseOpEveryType) {
  for (const char* t : {"f64", "f32", "f16", "bf16"}) {
    SCOPED_TRACE(t);
    const std::string T = t;
    const std::string src =
        emitChecked("program ops_" + T + "\n  in x : " + T + "[N] sliced\n  in y : " + T +
                    "[N] replicated\n  out z : " + T +
                    "[N] sliced\n  out b : bool[N] sliced\n"
                    "  scalar p : f32, seed : i64, k : i32, c : " +
                    T +
                    "\n"
                    "  t = -x + sqrt(abs(x)) * rsqrt(abs(y) + 1) - exp(x) / log(abs(y) + 2)\n"
                    "  u = x ^ y + x ^ k + min(x, y) + max(x, c) + select(isfinite(x), x, y)\n"
                    "  b = x < y && x <= y || x > y && !(x >= y) || (x == y) != (x != c)\n"
                    "  z = dropout(t + u, p, seed) + dropout(x, p, k) + c * 2 + 1 / c\n");
    if (T == "f16") {
      EXPECT_NE(src.find("#include <cuda_fp16.h>"), std::string::npos);
    }
    if (T == "bf16") {
      EXPECT_NE(src.find("__float2bfloat16_rn("), std::string::npos);
    }
    compileBoth(src, "ops_" + T);
  }
  for (const char* t : {"i32", "i64"}) {
    SCOPED_TRACE(t);
    const std::string T = t;
    const std::string src =
        emitChecked("program iops_" + T + "\n  in x : " + T + "[N] local\n  in y : " + T +
                    "[N] local\n"
                    "  out z : " +
                    T +
                    "[N] local\n  out b : bool[N] local\n"
                    "  z = -x + abs(y) * x / y - min(x, y) + max(x, 3) + x ^ y + select(x < y, x, y)\n"
                    "  b = x == y || x != y && !(x >= y)\n");
    EXPECT_NE(src.find("fccl_div("), std::string::npos);
    EXPECT_NE(src.find("fccl_ipow<"), std::string::npos);
    compileBoth(src, "iops_" + T);
  }
}

// Every cast between the seven dtypes, and loads/stores of every storage type.
TEST(Codegen, EveryCast) {
  const std::vector<std::string> types = {"f64", "f32", "f16", "bf16", "i32", "i64", "bool"};
  std::string decl = "program casts\n", body;
  for (const std::string& from : types) decl += "  in x_" + from + " : " + from + "[N] local\n";
  for (const std::string& from : types) {
    for (const std::string& to : types) {
      decl += "  out y_" + from + "_" + to + " : " + to + "[N] local\n";
      body += "  y_" + from + "_" + to + " = " + to + "(x_" + from + ")\n";
    }
  }
  const std::string src = emitChecked(decl + body);
  for (const char* frag :
       {"fccl_to_f16(x_f32_0)", "fccl_to_bf16(x_f16_0)", "fccl_to_f16(x_f64_0)", "fccl_to_i32(x_f32_0)",
        "fccl_to_i32(x_i64_0)", "(long long)x_i32_0", "fccl_to_bool(x_f64_0)", "(float)x_i64_0",
        "__bfloat162float(x_bf16_p[i])", "y_f32_bf16_p[i] = __float2bfloat16_rn(fccl_to_bf16(x_f32_0));"}) {
    EXPECT_NE(src.find(frag), std::string::npos) << "missing: " << frag << "\n" << src;
  }
  compileBoth(src, "casts");
}

TEST(Codegen, Literals) {
  EXPECT_EQ(literal(ir::DType::F32, 0.1).text, "0.1f");
  EXPECT_EQ(literal(ir::DType::F32, 1).text, "1.0f");
  EXPECT_EQ(literal(ir::DType::F16, 0.1).text, "0.099975586f");  // rounded to f16 first
  EXPECT_EQ(literal(ir::DType::BF16, 1e30).text, "1.00025555e+30f");
  EXPECT_EQ(literal(ir::DType::F64, 0.1).text, "0.1");
  EXPECT_EQ(literal(ir::DType::F64, -2).text, "-2.0");
  EXPECT_EQ(literal(ir::DType::F64, -2).prec, 3);
  EXPECT_EQ(literal(ir::DType::F32, 1e300).text, "__int_as_float(0x7f800000)");  // overflows
  EXPECT_EQ(literal(ir::DType::I32, -2147483648.0).text, "(-2147483647 - 1)");
  EXPECT_EQ(literal(ir::DType::I64, 1e30).text, "9223372036854775807LL");
  EXPECT_EQ(literal(ir::DType::Bool, 2).text, "true");
}

// One statement list as a plain Pointwise hook, with the temporary gs coming from storage
// (what a lowered Fused step's sliced `gs` buffer looks like to a later Pointwise step).
TEST(Codegen, PointwiseHookOfAStatementList) {
  std::string errors;
  auto p = compile(readFile(ir::test::programPath("adam")), &errors);
  ASSERT_TRUE(p) << errors;
  EmitOptions o;
  o.name = "adam_update";
  std::string err;
  const std::string src = emitCuda(*p, {1, 2, 3}, o, &err);
  ASSERT_FALSE(src.empty()) << err;
  EXPECT_NE(src.find("__device__ void fccl_hook_adam_update(const FcclHookArgs& a, long long "
                     "begin, long long end) {"),
            std::string::npos)
      << src;
  EXPECT_NE(src.find("const float* const gs_p = static_cast<const float*>(a.ptr[9]);"), std::string::npos)
      << src;
  EXPECT_NE(src.find("const float gs_0 = gs_p[i];"), std::string::npos) << src;
  compileBoth(src, "adam_update");
}

// A lowered Fused step binds a temporary to the chunk (Step::reduced).
TEST(Codegen, FusedChunkBoundToAVariable) {
  auto p = compile(
      "program f\n  in g : bf16[N] local\n  inout w : bf16[N] sliced\n"
      "  scalar lr : f32\n  r = reduce_scatter(sum, g)\n"
      "  w = w - bf16(lr) * r\n");
  ASSERT_TRUE(p);
  EmitOptions o;
  o.kind = HookKind::FusedChunk;
  o.reducedVar = p->findVar("r");
  std::string err;
  const std::string src = emitCuda(*p, {1}, o, &err);
  ASSERT_FALSE(src.empty()) << err;
  EXPECT_NE(src.find("const __nv_bfloat16* reduced"), std::string::npos) << src;
  EXPECT_NE(src.find("const float r_0 = __bfloat162float(reduced[i - begin]);"), std::string::npos) << src;
  EXPECT_NE(src.find("w_p[i - w_off] = __float2bfloat16_rn(w_0 - fccl_to_bf16(lr_0) * r_0);"),
            std::string::npos)
      << src;
  compileBoth(src, "f");
}

TEST(Codegen, BadRequestsAreErrors) {
  auto p = compile(
      "program e\n  in g : f32[N] local\n  out w : f32[N] replicated\n"
      "  w = allreduce(sum, g)\n");
  ASSERT_TRUE(p);
  std::string err;
  EXPECT_EQ(emitCuda(*p, {7}, {}, &err), "");
  EXPECT_EQ(err, "statement index 7 is out of range");
  EmitOptions o;
  o.kind = HookKind::FusedChunk;
  EXPECT_EQ(emitCuda(*p, {0}, o, &err), "");
  EXPECT_NE(err.find("exactly one of reducedVar and reducedNode"), std::string::npos);
  o.reducedNode = 0;  // the Ref to g, not a collective
  EXPECT_EQ(emitCuda(*p, {0}, o, &err), "");
  EXPECT_NE(err.find("reducedNode must be"), std::string::npos);
}

// The device dropout is fusion/ir/dropout.h itself: the prelude pastes the file's text (minus
// #pragma once), so host and device masks come from the same code. Without a GPU this is the
// proof; NVRTC compiling it as __host__ __device__ is checked by the dropout programs above.
TEST(Codegen, DropoutIsTheHostCode) {
  const std::string file = readFile(std::string(FCCL_FUSION_TEST_DIR) + "/../../fusion/ir/dropout.h");
  ASSERT_FALSE(file.empty());
  EXPECT_EQ(file, dropoutHeaderSource());
  auto p = compile(
      "program d\n  in x : f32[N] local\n  out y : f32[N] local\n"
      "  scalar p : f32, s : i64\n  y = dropout(x, p, s)\n");
  ASSERT_TRUE(p);
  const std::string prelude = cudaPrelude(*p);
  std::string body = file;
  body.erase(body.find("#pragma once\n"), 13);
  EXPECT_NE(prelude.find(body), std::string::npos);
  EXPECT_NE(prelude.find("fccl::ir::dropoutApply(x, p, (unsigned long long)seed, (unsigned long "
                         "long)i)"),
            std::string::npos);
  // Programs without dropout do not carry it.
  auto q = compile("program n\n  in x : f32[N] local\n  out y : f32[N] local\n  y = x\n");
  ASSERT_TRUE(q);
  EXPECT_EQ(cudaPrelude(*q).find("dropoutHash"), std::string::npos);
}

TEST(Nvrtc, CacheHitOnSecondCompile) {
  if (!haveNvrtc()) GTEST_SKIP() << "built without NVRTC";
  nvrtcCacheClear();
  const std::string src = emitChecked(readFile(ir::test::programPath("sgd")));
  std::string ptx1, ptx2, log;
  ASSERT_TRUE(compileWithNvrtc(src, "sgd", "compute_90", &ptx1, &log)) << log;
  EXPECT_EQ(nvrtcCacheStats().misses, 1u);
  EXPECT_EQ(nvrtcCacheStats().hits, 0u);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(compileWithNvrtc(src, "sgd", "compute_90", &ptx2, &log)) << log;
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(nvrtcCacheStats().hits, 1u);
  EXPECT_EQ(ptx1, ptx2);
  EXPECT_LT(ms, 20.0) << "a cache hit should not compile";
  // Another arch or another source is a miss.
  ASSERT_TRUE(compileWithNvrtc(src, "sgd", "compute_80", nullptr, &log)) << log;
  ASSERT_TRUE(compileWithNvrtc(src + "\n", "sgd", "compute_90", nullptr, &log)) << log;
  EXPECT_EQ(nvrtcCacheStats().misses, 3u);
  EXPECT_EQ(nvrtcCacheStats().entries, 3u);
  EXPECT_NE(nvrtcCacheKey(src, "compute_80"), nvrtcCacheKey(src, "compute_90"));
}

// FCCL_CACHE_DIR: a compile missing from memory is read from the disk instead of compiled again
// (another process, or this one after a clear); a directory others can write is not used.
TEST(Nvrtc, DiskCacheServesAnotherProcessAndRefusesASharedDirectory) {
  if (!haveNvrtc()) GTEST_SKIP() << "built without NVRTC";
  char tmpl[] = "/tmp/fccl-nvrtc-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = std::string(tmpl) + "/cache";
  nvrtcSetDiskCache(dir);
  nvrtcCacheClear();
  const std::string src = emitChecked(readFile(ir::test::programPath("sgd")));
  std::string first, again, log;
  ASSERT_TRUE(compileWithNvrtc(src, "sgd", "sm_90", &first, &log)) << log;
  EXPECT_EQ(nvrtcCacheStats().misses, 1u);
  EXPECT_EQ(nvrtcCacheStats().diskWrites, 1u) << nvrtcDiskCacheError();
  nvrtcCacheClear();  // memory only: as a new process would start
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(compileWithNvrtc(src, "sgd", "sm_90", &again, &log)) << log;
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(nvrtcCacheStats().diskHits, 1u);
  EXPECT_EQ(nvrtcCacheStats().misses, 0u);
  EXPECT_EQ(first, again);
  EXPECT_LT(ms, 50.0) << "a disk hit should not compile";
  // Group- or world-writable: refused, compiles instead, and says why.
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);
  nvrtcCacheClear();
  ASSERT_TRUE(compileWithNvrtc(src, "sgd", "sm_90", &again, &log)) << log;
  EXPECT_EQ(nvrtcCacheStats().diskHits, 0u);
  EXPECT_EQ(nvrtcCacheStats().misses, 1u);
  EXPECT_NE(nvrtcDiskCacheError().find("writable by group or others"), std::string::npos)
      << nvrtcDiskCacheError();
  nvrtcSetDiskCache("");
  std::filesystem::remove_all(tmpl);
}

TEST(Nvrtc, ErrorsAreReportedAndNotCached) {
  std::string ptx, log;
  EXPECT_FALSE(compileWithNvrtc("this is not CUDA", "bad", "compute_90", &ptx, &log));
  EXPECT_FALSE(log.empty());
  if (!haveNvrtc()) {
    EXPECT_NE(log.find("built without NVRTC"), std::string::npos);
    return;
  }
  EXPECT_NE(log.find("error"), std::string::npos) << log;
  const uint64_t before = nvrtcCacheStats().misses;
  EXPECT_FALSE(compileWithNvrtc("this is not CUDA", "bad", "compute_90", &ptx, &log));
  EXPECT_EQ(nvrtcCacheStats().misses, before + 1);
}

// A compile error in a statement's code names the program line: the emitter marks each
// statement with its line, and the log of a failed compile carries it.
TEST(Nvrtc, CompileErrorsNameTheProgramLine) {
  const std::string log = "prog(12): error: identifier \"oops\" is undefined\nprog(2): warning: x\n1 error";
  const std::string src = "a\n// nothing\nb\n// line 7: gs = rs_g / f32(nranks)\nc\nd\ne\nf\ng\nh\ni\nj\n";
  const std::string out = annotateProgramLines(src, log);
  EXPECT_NE(out.find("prog(12): error: identifier \"oops\" is undefined\n  (program line 7: gs = rs_g / "
                     "f32(nranks))"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("prog(2): warning: x\n  (program"), std::string::npos) << "no marker above line 2";
  if (!haveNvrtc()) return;
  // The real thing: adam's emitted hook with a mistake planted in the statement of gs.
  std::string src2 = emitChecked(readFile(ir::test::programPath("adam")));
  const size_t at = src2.find("const float gs_1 = ");
  ASSERT_NE(at, std::string::npos);
  src2.insert(at + strlen("const float gs_1 = "), "oops_undefined + ");
  std::string ptx, log2;
  ASSERT_FALSE(compileWithNvrtc(src2, "adam", "compute_90", &ptx, &log2));
  EXPECT_NE(log2.find("oops_undefined"), std::string::npos) << log2;
  EXPECT_NE(log2.find("(program line "), std::string::npos) << log2;
  EXPECT_NE(log2.find(": gs = rs_g / f32(nranks))"), std::string::npos) << log2;
}

}  // namespace
}  // namespace fccl::fusion::codegen
#endif  // FCCL_HAVE_CODEGEN
