// lowered_test.cc - the lowered pointwise form (fusion/lowered/pointwise_form.h), the one place
// where types, casts, rounding points and addressing are decided for the tile VM, the JIT and
// the CUDA emitter: the decisions themselves (printed form in, checks on what each rule adds),
// the errors, and that lowering attaches a form to every Pointwise and Fused step.
#include "fusion/lowered/pointwise_form.h"

#include <gtest/gtest.h>

#include "fusion/passes/lower.h"
#include "fusion/passes/registry.h"
#include "test_util.h"

namespace fccl::fusion::lowered {
namespace {

ir::Program compileText(const std::string& src) {
  std::string errors;
  auto p = ir::test::compile(src, &errors);
  EXPECT_TRUE(p.has_value()) << errors << "\n" << src;
  return p ? *p : ir::Program{};
}

std::vector<int32_t> allStmts(const ir::Program& p) {
  std::vector<int32_t> s;
  for (size_t i = 0; i < p.stmts.size(); ++i) s.push_back(static_cast<int32_t>(i));
  return s;
}

PointwiseForm build(const ir::Program& p, const FormOptions& o = {}) {
  PointwiseForm f;
  std::string err;
  EXPECT_TRUE(buildForm(p, allStmts(p), o, &f, &err)) << err;
  return f;
}

bool has(const std::string& text, const std::string& frag) { return text.find(frag) != std::string::npos; }

// Adam's fused hook, as every backend receives it: the reduced chunk, sliced state, the
// integer exponent cast to f32 once, the state re-read after its store, uniform scalar work.
TEST(Lowered, AdamFusedStep) {
  ir::Program checked = compileText(ir::test::readFile(ir::test::programPath("adam")));
  Schedule s;
  std::string err;
  ASSERT_TRUE(lower(checked, passes::defaultPipeline(), &s, nullptr, &err)) << err;
  ASSERT_EQ(s.steps.size(), 1u);
  ASSERT_EQ(s.steps[0].kind, StepKind::Fused);
  const std::string text = printForm(s.program, s.steps[0].form);
  for (const char* frag : {"= load.f32 rs_g[chunk] : f32", "= nranks.i32  uniform", "to f32  uniform",
                           "buffer gs[sliced] : f32 = %3  # gs = rs_g / f32(nranks)",
                           "= load.f32 m[sliced] : f32\n", "= load.f32 m[sliced] : f32 (after statement 1)",
                           "= scalar.i32 step : i32  uniform", "store w[full] : f32 = %44"})
    EXPECT_TRUE(has(text, frag)) << "missing: " << frag << "\n" << text;
  // Unfused, every Pointwise step gets its form too (no chunk: the reduced sum is a buffer).
  ASSERT_TRUE(lower(checked, {}, &s, nullptr, &err)) << err;
  int forms = 0;
  for (const Step& st : s.steps) {
    if (st.kind != StepKind::Pointwise) continue;
    EXPECT_FALSE(st.form.stmts.empty());
    EXPECT_EQ(st.form.irStmts, st.stmts);
    ++forms;
  }
  EXPECT_GT(forms, 0);
}

// f16 values compute in float: a literal is rounded to f32 (its compute type), arithmetic is
// not rounded, the store rounds; a declared f16 scalar result is rounded (a Cast) before it is
// reported, a temporary is not.
TEST(Lowered, HalfComputesInFloatAndRoundsAtStores) {
  const ir::Program p = compileText(
      "program h\n  in x : f16[N] local\n  out y : f16[N] local\n  out r : f16 local\n  scalar a : f16\n"
      "  t = a * 3\n  r = t + 1\n  y = x * 0.1\n");
  const PointwiseForm f = build(p);
  ASSERT_EQ(f.stmts.size(), 3u);
  EXPECT_EQ(f.stmts[0].kind, StmtKind::ScalarResult);  // t: a scalar temporary, not rounded
  EXPECT_NE(f.values[static_cast<size_t>(f.stmts[0].value)].op, VOp::Cast);
  const Value& r = f.values[static_cast<size_t>(f.stmts[1].value)];  // r: rounded to f16
  EXPECT_EQ(r.op, VOp::Cast);
  EXPECT_EQ(r.dtype, ir::DType::F16);
  EXPECT_EQ(f.stmts[2].kind, StmtKind::Store);
  const Value& mul = f.values[static_cast<size_t>(f.stmts[2].value)];
  EXPECT_EQ(mul.op, VOp::Mul);
  EXPECT_EQ(mul.ct, CT::F32);
  const Value& lit = f.values[static_cast<size_t>(mul.a[1])];
  EXPECT_EQ(lit.op, VOp::Const);
  EXPECT_EQ(lit.value, static_cast<double>(0.1f));
  EXPECT_TRUE(lit.uniform);
  EXPECT_EQ(f.values[static_cast<size_t>(mul.a[0])].op, VOp::Load);
  EXPECT_EQ(f.values[static_cast<size_t>(mul.a[0])].dtype, ir::DType::F16);
}

// Integer ops stay integer ops (the form's rules: truncating division, wrapping); dropout gets
// its p as f64 and its seed as i64; isfinite gives bool; select keeps its branches' type.
TEST(Lowered, OperandCastsAndResultTypes) {
  const ir::Program p = compileText(
      "program o\n  in x : i32[N] local\n  in g : f32[N] local\n  out z : i32[N] local\n"
      "  out d : f32[N] local\n  out b : bool[N] local\n  scalar p : f32, s : i32\n"
      "  z = x / 3 - x ^ 2\n  d = dropout(g, p, s)\n  b = isfinite(g) && x < 0\n");
  const PointwiseForm f = build(p);
  const Value& sub = f.values[static_cast<size_t>(f.stmts[0].value)];
  EXPECT_EQ(sub.ct, CT::I32);
  EXPECT_EQ(f.values[static_cast<size_t>(sub.a[0])].op, VOp::Div);
  EXPECT_EQ(f.values[static_cast<size_t>(sub.a[1])].op, VOp::Pow);
  const Value& drop = f.values[static_cast<size_t>(f.stmts[1].value)];
  ASSERT_EQ(drop.op, VOp::Dropout);
  EXPECT_FALSE(drop.uniform);
  EXPECT_EQ(f.values[static_cast<size_t>(drop.a[1])].ct, CT::F64);
  EXPECT_EQ(f.values[static_cast<size_t>(drop.a[2])].ct, CT::I64);
  EXPECT_EQ(f.values[static_cast<size_t>(drop.a[2])].op, VOp::Cast);
  const Value& b = f.values[static_cast<size_t>(f.stmts[2].value)];
  EXPECT_EQ(b.op, VOp::And);
  EXPECT_EQ(b.ct, CT::B8);
}

// Temporaries: a tensor temporary read by a statement outside the list needs storage.
TEST(Lowered, TemporariesReadOutsideTheList) {
  const ir::Program p = compileText(
      "program t\n  in x : f32[N] local\n  out y : f32[N] local\n  out z : f32[N] local\n"
      "  t = x * 2\n  u = x + 1\n  y = t + u\n  z = t\n");
  PointwiseForm f;
  std::string err;
  ASSERT_TRUE(buildForm(p, {0, 1, 2}, {}, &f, &err)) << err;
  EXPECT_EQ(f.stmts[0].kind, StmtKind::Buffer);
  EXPECT_TRUE(f.stmts[0].readOutside);   // z = t is not in the list
  EXPECT_FALSE(f.stmts[1].readOutside);  // u is only read by y
}

TEST(Lowered, CollectivesAreErrorsUnlessSlots) {
  const ir::Program p = compileText(
      "program c\n  in g : f32[N] local\n  out w : f32[N] local\n  out s : f32 local\n"
      "  w = allreduce(sum, g) * 2\n  s = norm(g) + 1\n");
  PointwiseForm f;
  std::string err;
  EXPECT_FALSE(buildForm(p, {0}, {}, &f, &err));
  EXPECT_TRUE(has(err, "is a collective; it runs as its own step")) << err;
  EXPECT_FALSE(buildForm(p, {1}, {}, &f, &err));
  EXPECT_TRUE(has(err, "reduces a whole tensor")) << err;
  EXPECT_FALSE(buildForm(p, {5}, {}, &f, &err));
  EXPECT_EQ(err, "statement index 5 is out of range");
  FormOptions o;
  o.nodeSlots = true;
  ASSERT_TRUE(buildForm(p, {0, 1}, o, &f, &err)) << err;
  const std::string text = printForm(p, f);
  EXPECT_TRUE(has(text, "= load.f32 (allreduce(sum, g))[node] : f32")) << text;
  EXPECT_TRUE(has(text, "= scalar.f32 (norm(g))[node] : f32  uniform")) << text;
}

}  // namespace
}  // namespace fccl::fusion::lowered
