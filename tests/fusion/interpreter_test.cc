// interpreter_test.cc - the float64 reference on tiny inputs with hand-computed results
// (n = 1, 2, 3), rounding to element types, sliceRange, dropout's independence from the rank
// count, and the interpreter's input errors.
#include <cmath>

#include "fusion/ir/dropout.h"
#include "fusion/ref/interpreter.h"
#include "fusion/ref/round.h"
#include "test_util.h"

namespace fccl::ir {
namespace {

using ref::Inputs;
using ref::Outputs;

Program compileFile(const std::string& name) {
  std::string err;
  auto p = test::compile(test::readFile(test::programPath(name)), &err, name);
  EXPECT_TRUE(p) << err;
  return p ? *p : Program{};
}
Program compileText(const std::string& src) {
  std::string err;
  auto p = test::compile(src, &err);
  EXPECT_TRUE(p) << err;
  return p ? *p : Program{};
}
Outputs runOk(const Program& p, const Inputs& in) {
  Outputs out;
  std::string err;
  EXPECT_TRUE(ref::run(p, in, &out, &err)) << err;
  return out;
}
// Rank r's slice of a whole vector.
std::vector<double> sliceOf(const std::vector<double>& v, int r, int n) {
  SliceRange s = sliceRange(static_cast<int64_t>(v.size()), r, n);
  return {v.begin() + s.begin, v.begin() + s.end};
}

TEST(SliceRange, Partition) {
  EXPECT_EQ(sliceRange(10, 0, 3).begin, 0);
  EXPECT_EQ(sliceRange(10, 0, 3).end, 4);
  EXPECT_EQ(sliceRange(10, 1, 3).end, 8);
  EXPECT_EQ(sliceRange(10, 2, 3).begin, 8);
  EXPECT_EQ(sliceRange(10, 2, 3).end, 10);
  EXPECT_EQ(sliceRange(2, 2, 3).size(), 0);  // the last ranks may own nothing
  EXPECT_EQ(sliceRange(0, 0, 1).size(), 0);
  for (int64_t total : {0, 1, 5, 7, 64, 1001})
    for (int n = 1; n <= 9; ++n) {
      int64_t next = 0;
      for (int r = 0; r < n; ++r) {
        EXPECT_EQ(sliceRange(total, r, n).begin, next);
        next = sliceRange(total, r, n).end;
      }
      EXPECT_EQ(next, total);
    }
}

TEST(Round, ElementTypes) {
  using ref::roundTo;
  EXPECT_EQ(roundTo(DType::F32, 0.1), static_cast<double>(0.1f));
  EXPECT_EQ(roundTo(DType::F16, 1.0 / 3), 0.333251953125);
  EXPECT_EQ(roundTo(DType::F16, 65519.0), 65504.0);
  EXPECT_TRUE(std::isinf(roundTo(DType::F16, 65520.0)));      // ties past max -> inf
  EXPECT_EQ(roundTo(DType::F16, std::ldexp(1.0, -25)), 0.0);  // tie to even (0)
  EXPECT_EQ(roundTo(DType::F16, std::ldexp(3.0, -25)), std::ldexp(1.0, -23));
  EXPECT_EQ(roundTo(DType::BF16, 1 + std::ldexp(1.0, -8)), 1.0);  // tie to even
  EXPECT_EQ(roundTo(DType::BF16, 1 + std::ldexp(3.0, -8)), 1 + std::ldexp(1.0, -6));
  EXPECT_EQ(roundTo(DType::I32, -2.7), -2.0);
  EXPECT_EQ(roundTo(DType::I32, 1e12), 2147483647.0);
  EXPECT_EQ(roundTo(DType::I32, NAN), 0.0);
  EXPECT_EQ(roundTo(DType::Bool, -0.5), 1.0);
}

TEST(Interpreter, SgdExactOnThreeRanks) {
  // g_r = r + 1 everywhere: avg = 2; gs = 2 + 0.5 * w(=1) = 2.5; buf = 0.5 * 0 + 1 * 2.5;
  // nesterov: d = 2.5 + 0.5 * 2.5 = 3.75; w = 1 - 0.5 * 3.75 = -0.875 (all exact in f32).
  Program p = compileFile("sgd.fccl");
  Inputs in;
  in.nranks = 3;
  in.symbols = {{"N", 5}};
  in.scalars = {{"lr", 0.5}, {"momentum", 0.5}, {"dampening", 0}, {"weight_decay", 0.5}, {"nesterov", 1}};
  in.tensors.resize(3);
  for (int r = 0; r < 3; ++r) {
    in.tensors[r]["g"] = std::vector<double>(5, r + 1);
    in.tensors[r]["w"] = std::vector<double>(5, 1);
    in.tensors[r]["buf"] = std::vector<double>(sliceRange(5, r, 3).size(), 0);
  }
  Outputs out = runOk(p, in);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(out.tensors[r]["w"], std::vector<double>(5, -0.875)) << r;
    EXPECT_EQ(out.tensors[r]["buf"], std::vector<double>(sliceRange(5, r, 3).size(), 2.5)) << r;
  }
  // Without Nesterov: d = buf = 2.5, w = 1 - 1.25.
  in.scalars["nesterov"] = 0;
  EXPECT_EQ(runOk(p, in).tensors[1]["w"], std::vector<double>(5, -0.25));
}

TEST(Interpreter, AdamFirstStep) {
  // Step 1 from m = v = 0: mhat = gs, vhat = gs^2, so w -= lr * gs / (|gs| + eps) = lr * sign.
  Program p = compileFile("adam.fccl");
  for (int n : {1, 2, 3}) {
    Inputs in;
    in.nranks = n;
    in.symbols = {{"N", 4}};
    in.scalars = {{"lr", 0.125}, {"beta1", 0.9}, {"beta2", 0.999}, {"eps", 0}, {"step", 1}};
    in.tensors.resize(static_cast<size_t>(n));
    for (int r = 0; r < n; ++r) {
      // The gradients average to {2, -4, 1, 0.5} whatever n is.
      std::vector<double> g{2.0 * n, -4.0 * n, 1.0 * n, 0.5 * n};
      for (double& x : g) x = r == 0 ? x : 0;
      in.tensors[static_cast<size_t>(r)]["g"] = g;
      in.tensors[static_cast<size_t>(r)]["w"] = {1, 1, 1, 1};
      in.tensors[static_cast<size_t>(r)]["m"] = std::vector<double>(sliceRange(4, r, n).size(), 0);
      in.tensors[static_cast<size_t>(r)]["v"] = std::vector<double>(sliceRange(4, r, n).size(), 0);
    }
    Outputs out = runOk(p, in);
    const std::vector<double> w{0.875, 1.125, 0.875, 0.875};
    const std::vector<double> m{0.2, -0.4, 0.1, 0.05};
    for (int r = 0; r < n; ++r) {
      for (int i = 0; i < 4; ++i)
        EXPECT_NEAR(out.tensors[static_cast<size_t>(r)]["w"][static_cast<size_t>(i)], w[i], 1e-6);
      const auto ms = out.tensors[static_cast<size_t>(r)]["m"];
      std::vector<double> want = sliceOf(m, r, n);
      ASSERT_EQ(ms.size(), want.size());
      for (size_t i = 0; i < ms.size(); ++i) {
        EXPECT_NEAR(ms[i], want[i], 1e-7);
        EXPECT_EQ(ms[i], ref::roundTo(DType::F32, ms[i]));  // stored values are f32
      }
    }
  }
}

TEST(Interpreter, ClipByGlobalNormAndScalarOutput) {
  // sum of g = {4, 0, 0, 3} / 2 ranks = {2, 0, 0, 1.5}: norm 2.5; coef = 1 / 2.5 = 0.4.
  Program p = compileFile("clip_global_norm.fccl");
  Inputs in;
  in.nranks = 2;
  in.symbols = {{"N", 4}};
  in.scalars = {{"lr", 1}, {"max_norm", 1}};
  in.tensors = {{{"g", {4, 0, 0, 0}}, {"w", {1, 1, 1, 1}}}, {{"g", {0, 0, 0, 3}}}};
  Outputs out = runOk(p, in);
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(out.scalars[r]["gnorm"], 2.5);
    const auto& w = out.tensors[r]["w"];
    EXPECT_NEAR(w[0], 1 - 0.8, 1e-6);
    EXPECT_EQ(w[1], 1);
    EXPECT_NEAR(w[3], 1 - 0.6, 1e-6);
  }
}

TEST(Interpreter, LossScalingSkipsOnOverflow) {
  Program p = compileFile("loss_scaling.fccl");
  Inputs in;
  in.nranks = 2;
  in.symbols = {{"N", 2}};
  in.scalars = {{"lr", 1}, {"scale", 4}};
  in.tensors = {{{"g", {8, 16}}, {"w", {1, 1}}}, {{"g", {8, 0}}}};
  Outputs out = runOk(p, in);
  // gs = {16, 16} / (4 * 2) = {2, 2}: no overflow.
  EXPECT_EQ(out.tensors[0]["w"], (std::vector<double>{-1, -1}));
  EXPECT_EQ(out.scalars[1]["scale"], 4);
  EXPECT_EQ(out.scalars[1]["skipped"], 0);
  in.tensors[1]["g"] = {70000, 0};  // past f16 max: the input rounds to inf on entry
  out = runOk(p, in);
  EXPECT_EQ(out.tensors[1]["w"], (std::vector<double>{1, 1}));
  EXPECT_EQ(out.scalars[0]["scale"], 2);
  EXPECT_EQ(out.scalars[0]["skipped"], 1);
}

TEST(Interpreter, CollectivesRootsAndLayouts) {
  Program p = compileText(
      "program c\n in x : f64[3] local\n out b : f64[3] replicated\n out r : f64[3] local\n"
      " out s : f64[3] sliced\n out mx : f64 replicated\n out rk : i32 local\n"
      " b = broadcast(x, 1)\n r = reduce(sum, x, nranks - 1)\n s = reduce_scatter(max, x)\n"
      " mx = max(s) + sum(s)\n rk = rank * 10\n");
  Inputs in;
  in.nranks = 3;
  in.tensors = {{{"x", {1, 2, 3}}}, {{"x", {4, 5, 6}}}, {{"x", {7, 8, -9}}}};
  Outputs out = runOk(p, in);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(out.tensors[r]["b"], (std::vector<double>{4, 5, 6}));
    EXPECT_EQ(out.scalars[r]["rk"], 10 * r);
    EXPECT_EQ(out.scalars[r]["mx"], 8 + (7 + 8 + 6));  // crossRank partials + allreduce
  }
  EXPECT_EQ(out.tensors[2]["r"], (std::vector<double>{12, 15, 0}));  // root gets the sum
  EXPECT_EQ(out.tensors[0]["r"], (std::vector<double>{1, 2, 3}));    // others keep theirs
  EXPECT_EQ(out.tensors[0]["s"], (std::vector<double>{7}));
  EXPECT_EQ(out.tensors[1]["s"], (std::vector<double>{8}));
  EXPECT_EQ(out.tensors[2]["s"], (std::vector<double>{6}));
}

TEST(Interpreter, DropoutMaskIgnoresRankCount) {
  // The same global tensor, sliced over 1, 2, 3 and 7 ranks, must give the same result.
  Program p = compileText(
      "program d\n inout m : f32[N] sliced\n scalar p : f32, seed : i64\n"
      " m = dropout(m, p, seed)\n");
  const int64_t N = 1000;
  std::vector<double> x(N);
  for (int64_t i = 0; i < N; ++i) x[static_cast<size_t>(i)] = 1 + i % 7;
  std::vector<double> first;
  for (int n : {1, 2, 3, 7}) {
    Inputs in;
    in.nranks = n;
    in.symbols = {{"N", N}};
    in.scalars = {{"p", 0.25}, {"seed", 1234}};
    in.tensors.resize(static_cast<size_t>(n));
    for (int r = 0; r < n; ++r) in.tensors[static_cast<size_t>(r)]["m"] = sliceOf(x, r, n);
    Outputs out = runOk(p, in);
    std::vector<double> whole;
    for (int r = 0; r < n; ++r) {
      const auto& s = out.tensors[static_cast<size_t>(r)]["m"];
      whole.insert(whole.end(), s.begin(), s.end());
    }
    if (first.empty()) first = whole;
    EXPECT_EQ(whole, first) << "n=" << n;
  }
  // Kept elements are scaled by 1/(1-p); about 1-p of them are kept; the mask is the header's.
  int kept = 0;
  for (int64_t i = 0; i < N; ++i) {
    const double xi = x[static_cast<size_t>(i)];
    const bool keep = dropoutKeep(1234, static_cast<uint64_t>(i), dropoutThreshold(0.25));
    EXPECT_EQ(first[static_cast<size_t>(i)], keep ? ref::roundTo(DType::F32, xi / 0.75) : 0);
    kept += keep;
  }
  EXPECT_GT(kept, 700);
  EXPECT_LT(kept, 800);
}

TEST(Interpreter, BiasDropoutResidualIgnoresRankCount) {
  Program p = compileFile("bias_dropout_residual.fccl");
  std::vector<double> y1;
  for (int n : {1, 2, 3}) {
    Inputs in;
    in.nranks = n;
    in.symbols = {{"T", 64}};
    in.scalars = {{"p", 0.5}, {"seed", 7}};
    in.tensors.resize(static_cast<size_t>(n));
    for (int r = 0; r < n; ++r) {
      std::vector<double> part(64);
      for (int i = 0; i < 64; ++i) part[i] = r == 0 ? i : 0;  // partial products sum to i
      in.tensors[static_cast<size_t>(r)]["partial"] = part;
    }
    in.tensors[0]["bias"] = std::vector<double>(64, 1);
    in.tensors[0]["residual"] = std::vector<double>(64, 0.5);
    Outputs out = runOk(p, in);
    if (y1.empty()) y1 = out.tensors[0]["y"];
    for (int r = 0; r < n; ++r) EXPECT_EQ(out.tensors[static_cast<size_t>(r)]["y"], y1);
  }
  for (int i = 0; i < 64; ++i)
    EXPECT_EQ(y1[i], (dropoutKeep(7, i, dropoutThreshold(0.5)) ? (i + 1) * 2.0 : 0) + 0.5);
}

TEST(Interpreter, EveryFeatureRuns) {
  Program p = compileFile("features.fccl");
  for (int n : {1, 2, 3}) {
    Inputs in;
    in.nranks = n;
    in.symbols = {{"N", 3}};
    in.scalars = {{"a", 1.5}, {"k", 2}, {"big", 9}, {"on", 1}};
    in.tensors.resize(static_cast<size_t>(n));
    for (int r = 0; r < n; ++r) {
      std::vector<double> x(12), s;
      for (int i = 0; i < 12; ++i) x[i] = (i - 5) * 0.5 + r;
      in.tensors[static_cast<size_t>(r)]["x"] = x;
      in.tensors[static_cast<size_t>(r)]["r"] = std::vector<double>(12, 0.25);
      in.tensors[static_cast<size_t>(r)]["s"] = std::vector<double>(sliceRange(12, r, n).size(), 1);
    }
    Outputs out = runOk(p, in);
    for (int r = 1; r < n; ++r) {  // replicated results agree on every rank
      EXPECT_EQ(out.tensors[static_cast<size_t>(r)]["y"], out.tensors[0]["y"]);
      EXPECT_EQ(out.scalars[static_cast<size_t>(r)]["flag"], out.scalars[0]["flag"]);
    }
  }
}

TEST(Interpreter, InputErrors) {
  Program p = compileFile("sgd.fccl");
  Inputs in;
  in.nranks = 2;
  Outputs out;
  std::string err;
  EXPECT_FALSE(ref::run(p, in, &out, &err));
  EXPECT_EQ(err, "shape symbol N is not bound");
  in.symbols = {{"N", 3}};
  in.scalars = {{"lr", 1}, {"momentum", 0}, {"dampening", 0}, {"weight_decay", 0}, {"nesterov", 0}};
  in.tensors = {{{"g", {1, 2, 3}}, {"w", {1, 1, 1}}, {"buf", {0, 0}}},
                {{"g", {1, 2}}, {"w", {1, 1, 2}}, {"buf", {0}}}};
  EXPECT_FALSE(ref::run(p, in, &out, &err));
  EXPECT_EQ(err, "tensor 'g' on rank 1 has 2 elements, expected 3");
  in.tensors[1]["g"] = {1, 2, 3};
  EXPECT_FALSE(ref::run(p, in, &out, &err));
  EXPECT_EQ(err, "replicated tensor 'w' differs between rank 0 and rank 1");
  Program b = compileText(
      "program b\n in x : f32[2] local\n out y : f32[2] replicated\n"
      " scalar root : i32\n y = broadcast(x, root)\n");
  Inputs bi;
  bi.nranks = 2;
  bi.scalars = {{"root", 2}};
  bi.tensors = {{{"x", {1, 2}}}, {{"x", {3, 4}}}};
  EXPECT_FALSE(ref::run(b, bi, &out, &err));
  EXPECT_EQ(err, "root 2.000000 is not a rank in [0, 2)");
}

}  // namespace
}  // namespace fccl::ir
