// lower_test.cc - lowering to a Schedule: the steps, buffers and dumps for the DESIGN.md
// programs under the default pipeline and explicit schedules, the schedule's structural
// invariants, and meaning: for every stock program and schedule, the lowered program gives the
// float64 reference interpreter's results of the original on 1, 2 and 3 ranks.
#include <cmath>

#include "fusion/passes/lower.h"
#include "fusion/passes/registry.h"
#include "fusion/ref/interpreter.h"
#include "test_util.h"

namespace fccl::fusion {
namespace {

using ir::Program;

Program compileText(const std::string& src) {
  std::string err;
  auto p = ir::test::compile(src, &err);
  EXPECT_TRUE(p) << err;
  return p ? *p : Program{};
}
Program compileStock(const std::string& name) {
  return compileText(ir::test::readFile(ir::test::programPath(name)));
}

// Every statement belongs to exactly one step, in program order (a Fused step also owns the
// statement of its reduce_scatter, the one assigning `reduced`, just before its hooks).
void expectWellFormed(const Schedule& s) {
  const Program& p = s.program;
  int32_t next = 0;
  for (const Step& st : s.steps) {
    SCOPED_TRACE(st.why);
    if (st.kind == StepKind::Fused) {
      ASSERT_EQ(p.stmts[static_cast<size_t>(next)].var, st.reduced);
      ASSERT_EQ(p.node(p.stmts[static_cast<size_t>(next)].value).op, ir::Op::ReduceScatter);
      ++next;
      for (int32_t g : st.gather) {
        EXPECT_EQ(p.vars[static_cast<size_t>(g)].layout, ir::Layout::Replicated);
      }
    }
    for (int32_t i : st.stmts) {
      EXPECT_EQ(i, next++);
    }
    EXPECT_FALSE(st.why.empty());
    if (st.kind != StepKind::Pointwise) {
      EXPECT_GE(st.input, 0);
    }
  }
  EXPECT_EQ(next, static_cast<int32_t>(p.stmts.size()));
  for (int32_t b : s.buffers) EXPECT_EQ(p.vars[static_cast<size_t>(b)].kind, ir::VarKind::Temp);
  ir::Diagnostics d;
  EXPECT_TRUE(ir::check::verify(p, d)) << d.str();
}

Schedule lowerOk(const Program& p, const std::string& sched, std::vector<std::string>* dumps = nullptr) {
  std::vector<std::string> names;
  std::string err;
  EXPECT_TRUE(passes::parsePipeline(sched, &names, &err)) << err;
  Schedule s;
  EXPECT_TRUE(lower(p, names, &s, dumps, &err)) << err;
  expectWellFormed(s);
  return s;
}

std::string varName(const Schedule& s, int32_t v) {
  return v >= 0 ? s.program.vars[static_cast<size_t>(v)].name : "<none>";
}
std::vector<std::string> names(const Schedule& s, const std::vector<int32_t>& vars) {
  std::vector<std::string> out;
  for (int32_t v : vars) out.push_back(varName(s, v));
  return out;
}
std::vector<StepKind> kinds(const Schedule& s) {
  std::vector<StepKind> out;
  for (const Step& st : s.steps) out.push_back(st.kind);
  return out;
}
void expectHas(const std::string& text, const std::string& frag) {
  EXPECT_NE(text.find(frag), std::string::npos) << "'" << frag << "' not in:\n" << text;
}

using K = StepKind;

TEST(Lower, AdamDefaultIsOneFusedStep) {
  std::vector<std::string> dumps;
  Schedule s = lowerOk(compileStock("adam.fccl"), "default", &dumps);
  ASSERT_EQ(kinds(s), (std::vector<K>{K::Fused}));
  const Step& f = s.steps[0];
  EXPECT_EQ(varName(s, f.input), "g");
  EXPECT_EQ(f.redop, ir::RedOp::Sum);
  EXPECT_EQ(varName(s, f.reduced), "rs_g");
  EXPECT_EQ(f.stmts.size(), 4u);
  EXPECT_EQ(names(s, f.gather), (std::vector<std::string>{"w"}));
  EXPECT_TRUE(s.buffers.empty());
  ASSERT_EQ(dumps.size(), 4u);
  expectHas(dumps[0], "# after split");
  expectHas(dumps[3], "# after overlap (no change)");
  const std::string text = printSchedule(s);
  expectHas(text, "schedule adam: 1 step\n  buffers: (none)\n");
  expectHas(text, "0: fused reduce_scatter(sum, g) -> rs_g hook { gs = rs_g / f32(nranks); m = ");
  expectHas(text, "} gather { w }  # fuse: reduce_scatter(sum, g) with 4 statement(s)");
}

TEST(Lower, AdamWithoutPassesIsAllreduceThenPointwise) {
  Schedule s = lowerOk(compileStock("adam.fccl"), "none");
  ASSERT_EQ(kinds(s), (std::vector<K>{K::Collective, K::Pointwise, K::Pointwise, K::Collective}));
  EXPECT_EQ(s.steps[0].op, ir::Op::AllReduce);
  EXPECT_EQ(varName(s, s.steps[0].input), "g");
  EXPECT_EQ(s.steps[1].extent, Extent::Full);   // gs, replicated
  EXPECT_EQ(s.steps[2].extent, Extent::Slice);  // m, v and w's new slice
  EXPECT_EQ(s.steps[2].stmts.size(), 3u);
  EXPECT_EQ(s.steps[3].op, ir::Op::AllGather);
  EXPECT_EQ(varName(s, s.steps[3].output), "w");
  EXPECT_EQ(names(s, s.buffers), (std::vector<std::string>{"gs", "allreduce_g", "all_gather_in"}));
  expectHas(printSchedule(s), "(split not in the schedule)");
}

TEST(Lower, ExplicitScheduleSplitReorderLeavesAPlainReduceScatter) {
  std::vector<std::string> dumps;
  Schedule s = lowerOk(compileStock("adam.fccl"), "split,reorder", &dumps);
  EXPECT_EQ(dumps.size(), 2u);
  ASSERT_EQ(kinds(s), (std::vector<K>{K::Collective, K::Pointwise, K::Collective}));
  EXPECT_EQ(s.steps[0].op, ir::Op::ReduceScatter);
  EXPECT_EQ(s.steps[1].extent, Extent::Slice);
  EXPECT_EQ(s.steps[2].op, ir::Op::AllGather);
  expectHas(s.steps[0].why, "fuse not in the schedule");
}

TEST(Lower, SgdMomentumFusedWithAvg) {
  Schedule s = lowerOk(compileText(R"(program sgd_momentum
  in    g   : f32[N] local
  inout w   : f32[N] replicated
  inout buf : f32[N] sliced
  scalar lr : f32, mom : f32
  buf = mom * buf + allreduce(avg, g)
  w   = w - lr * buf
)"),
                       "default");
  ASSERT_EQ(kinds(s), (std::vector<K>{K::Fused}));
  EXPECT_EQ(s.steps[0].redop, ir::RedOp::Avg);
  EXPECT_EQ(names(s, s.steps[0].gather), (std::vector<std::string>{"w"}));
}

TEST(Lower, BiasDropoutResidualHookGathersTheOutput) {
  Schedule s = lowerOk(compileStock("bias_dropout_residual.fccl"), "default");
  ASSERT_EQ(kinds(s), (std::vector<K>{K::Fused}));
  const std::string text = printSchedule(s);
  expectHas(text, "dropout(");
  EXPECT_EQ(s.steps[0].gather.size(), 1u);
  EXPECT_EQ(s.program.vars[static_cast<size_t>(s.steps[0].gather[0])].kind, ir::VarKind::Out);
}

TEST(Lower, LocalOperandStaysUnfusedAsOneAllreduce) {
  Schedule s = lowerOk(compileText(R"(program local_operand
  in  g     : f32[N] local
  in  noise : f32[N] local
  out y     : f32[N] local
  y = allreduce(sum, g) * noise
)"),
                       "default");
  ASSERT_EQ(kinds(s), (std::vector<K>{K::Collective, K::Pointwise}));
  EXPECT_EQ(s.steps[0].op, ir::Op::AllReduce);
  EXPECT_EQ(varName(s, s.steps[0].output), "allreduce_g");
  EXPECT_EQ(s.steps[1].extent, Extent::Full);
  expectHas(s.steps[0].why, "one allreduce");
  EXPECT_EQ(names(s, s.buffers), (std::vector<std::string>{"allreduce_g"}));
}

TEST(Lower, LambNormOfASlicedTensorIsCrossRank) {
  Schedule s = lowerOk(compileStock("lamb.fccl"), "default");
  ASSERT_FALSE(s.steps.empty());
  EXPECT_EQ(s.steps[0].kind, K::Fused);
  int crossRank = 0, whole = 0;
  for (const Step& st : s.steps) {
    if (st.kind != K::Reduction) continue;
    EXPECT_EQ(st.op, ir::Op::Norm);
    const auto& v = s.program.vars[static_cast<size_t>(st.input)];
    if (st.extent == Extent::Slice) {
      ++crossRank;
      EXPECT_EQ(v.layout, ir::Layout::Sliced);
      expectHas(st.why, "tiny allreduce");
    } else {
      ++whole;
    }
    // The result is a scalar every later step reads: it has storage.
    EXPECT_NE(std::find(s.buffers.begin(), s.buffers.end(), st.output), s.buffers.end());
  }
  EXPECT_GE(crossRank, 1);
  EXPECT_EQ(s.steps.back().op, ir::Op::AllGather);
}

TEST(Lower, OverlapMarksTheCollectiveStep) {
  Schedule s = lowerOk(compileText(R"(program scaled
  in    g : f32[N] local
  inout w : f32[N] replicated
  scalar scale : f32, lr : f32
  t = g * scale
  w = w - lr * allreduce(sum, t)
)"),
                       "default");
  ASSERT_EQ(kinds(s), (std::vector<K>{K::Pointwise, K::Fused}));
  EXPECT_EQ(s.steps[1].overlapWith, 0);
  EXPECT_EQ(s.steps[0].overlapWith, -1);
  expectHas(printSchedule(s), "[overlaps step 0]");
  EXPECT_EQ(names(s, s.buffers), (std::vector<std::string>{"t"}));
}

TEST(Lower, UnknownPassNameIsAnError) {
  Schedule s;
  std::string err;
  EXPECT_FALSE(lower(compileStock("adam.fccl"), {"split", "fusion"}, &s, nullptr, &err));
  EXPECT_NE(err.find("unknown pass 'fusion'"), std::string::npos) << err;
}

TEST(Lower, UncheckedInputIsAnError) {
  std::string err;
  ir::Diagnostics d;
  auto parsed = ir::parse::parseProgram(
      "program p\n  in g : f32[N] local\n  out y : f32[N] "
      "replicated\n  y = allreduce(sum, g)\n",
      d);
  ASSERT_TRUE(parsed);
  Schedule s;
  EXPECT_FALSE(lower(*parsed, {}, &s, nullptr, &err));
  EXPECT_NE(err.find("not a checked program"), std::string::npos) << err;
}

// ---- meaning: the lowered program computes what the original does.

ir::ref::Inputs makeInputs(const Program& p, int nranks) {
  ir::ref::Inputs in;
  in.nranks = nranks;
  for (const std::string& s : p.symbols) in.symbols[s] = 7;
  in.tensors.resize(static_cast<size_t>(nranks));
  for (size_t vi = 0; vi < p.vars.size(); ++vi) {
    const ir::Var& v = p.vars[vi];
    auto value = [&](int r, int64_t i) -> double {
      if (v.dtype == ir::DType::Bool) return static_cast<double>((i + r + static_cast<int64_t>(vi)) % 2);
      if (ir::isInteger(v.dtype)) return static_cast<double>((i + r) % 5 - 2);
      return static_cast<double>((r * 13 + i * 7 + static_cast<int64_t>(vi) * 5) % 17 - 8) * 0.125;
    };
    if (v.kind == ir::VarKind::Scalar ||
        (v.isScalar() && (v.kind == ir::VarKind::In || v.kind == ir::VarKind::InOut))) {
      in.scalars[v.name] = v.dtype == ir::DType::Bool ? 1
                           : ir::isInteger(v.dtype)   ? 3
                                                      : 0.25 + 0.0625 * static_cast<double>(vi);
      continue;
    }
    if (v.kind != ir::VarKind::In && v.kind != ir::VarKind::InOut) continue;
    int64_t count = 1;
    for (const ir::Dim& d : v.shape) count *= d.sym >= 0 ? 7 : d.size;
    for (int r = 0; r < nranks; ++r) {
      std::vector<double> data;
      const int src = v.layout == ir::Layout::Local ? r : 0;
      ir::SliceRange range{0, count};
      if (v.layout == ir::Layout::Sliced) range = ir::sliceRange(count, r, nranks);
      for (int64_t i = range.begin; i < range.end; ++i) data.push_back(value(src, i));
      in.tensors[static_cast<size_t>(r)][v.name] = data;
    }
  }
  return in;
}

bool close(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= 1e-3 * std::max(1.0, std::fabs(a));  // f16 stores may round apart
}

void expectSameMeaning(const Program& original, const Schedule& s, const std::string& what) {
  for (int n = 1; n <= 3; ++n) {
    SCOPED_TRACE(what + " on " + std::to_string(n) + " ranks");
    const ir::ref::Inputs in = makeInputs(original, n);
    ir::ref::Outputs a, b;
    std::string err;
    ASSERT_TRUE(ir::ref::run(original, in, &a, &err)) << err;
    ASSERT_TRUE(ir::ref::run(s.program, in, &b, &err)) << err;
    for (int r = 0; r < n; ++r) {
      for (const auto& [name, va] : a.tensors[static_cast<size_t>(r)]) {
        const auto& vb = b.tensors[static_cast<size_t>(r)].at(name);
        ASSERT_EQ(va.size(), vb.size()) << name;
        for (size_t i = 0; i < va.size(); ++i)
          ASSERT_TRUE(close(va[i], vb[i]))
              << name << "[" << i << "] rank " << r << ": " << va[i] << " vs " << vb[i];
      }
      for (const auto& [name, x] : a.scalars[static_cast<size_t>(r)])
        ASSERT_TRUE(close(x, b.scalars[static_cast<size_t>(r)].at(name))) << name;
    }
  }
}

// The edge cases of the pass tests: moves blocked by local operands, a temporary read twice,
// a gathered norm, an overlap.
const char* kEdgeCases[] = {
    "program a\n  in g : f32[N] local\n  in noise : f32[N] local\n  out y : f32[N] local\n"
    "  y = allreduce(sum, g) * noise\n",
    "program b\n  in g : f32[N] local\n  out y : f32[N] local\n"
    "  y = allreduce(sum, g) * f32(rank)\n",
    "program c\n  in g : f32[N] local\n  out a : f32[N] replicated\n  out b : f32[N] replicated\n"
    "  t = allreduce(sum, g)\n  a = t * 2\n  b = t + 1\n",
    "program d\n  in g : f32[N] local\n  out n : f32 replicated\n  n = norm(allreduce(sum, g))\n",
    "program e\n  in g : f32[N] local\n  inout w : f32[N] replicated\n  scalar scale : f32, lr : f32\n"
    "  t = g * scale\n  w = w - lr * allreduce(sum, t)\n",
    "program f\n  in g : f32[N] local\n  inout w : f32[N] replicated\n  inout buf : f32[N] sliced\n"
    "  scalar lr : f32, mom : f32\n  buf = mom * buf + allreduce(avg, g)\n  w = w - lr * buf\n",
};

TEST(Lower, EveryScheduleKeepsTheMeaningOfEveryStockProgram) {
  std::vector<std::string> sources;
  for (const std::string& path : ir::test::corpus("programs")) sources.push_back(ir::test::readFile(path));
  for (const char* src : kEdgeCases) sources.push_back(src);
  for (const std::string& path : sources) {
    const Program p = compileText(path);
    for (const char* sched : {"none", "split", "split,reorder", "default", "fuse,overlap",
                              "reorder,split,reorder,fuse,overlap,fuse"}) {
      SCOPED_TRACE(p.name + " [" + sched + "]");
      expectSameMeaning(p, lowerOk(p, sched), sched);
    }
  }
}

}  // namespace
}  // namespace fccl::fusion
