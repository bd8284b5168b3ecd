// passes_test.cc - the passes one at a time, IR in, printed IR out (MLIR FileCheck spirit): each
// case is a program text, the passes to run, and the fragments the printed result must contain
// in order (CHECK) or must not contain (CHECK-NOT), about only what the pass changes. verify runs
// after every pass. Also the registry and the user-schedule parser.
#include "fusion/passes/registry.h"
#include "fusion/passes/rewrite.h"
#include "test_util.h"

namespace fccl::fusion::passes {
namespace {

using ir::Program;

Program compileText(const std::string& src) {
  std::string err;
  auto p = ir::test::compile(src, &err);
  EXPECT_TRUE(p) << err;
  return p ? *p : Program{};
}

// Runs the schedule on `p`, verifying after each pass; returns the annotated print.
std::string runPasses(Program& p, const std::string& schedule, Annotations* notes = nullptr,
                      std::vector<bool>* changed = nullptr, PassStats* stats = nullptr) {
  std::vector<std::string> names;
  std::string err;
  EXPECT_TRUE(parsePipeline(schedule, &names, &err)) << err;
  Annotations local;
  Annotations& n = notes ? *notes : local;
  for (const std::string& name : names) {
    PassStats st;
    const bool c = findPass(name)->run(p, n, &st);
    if (changed) changed->push_back(c);
    if (stats)
      for (const auto& [k, v] : st.counters) stats->add(k, v);
    ir::Diagnostics d;
    EXPECT_TRUE(ir::check::verify(p, d)) << "after " << name << ":\n" << d.str() << ir::print(p);
  }
  return printAnnotated(p, n);
}

// FileCheck-like: every fragment, in order.
void expectInOrder(const std::string& text, const std::vector<std::string>& frags) {
  size_t pos = 0;
  for (const std::string& f : frags) {
    const size_t at = text.find(f, pos);
    ASSERT_NE(at, std::string::npos) << "CHECK: '" << f << "' not found (in order) in:\n" << text;
    pos = at + f.size();
  }
}
void expectNot(const std::string& text, const std::string& frag) {
  EXPECT_EQ(text.find(frag), std::string::npos) << "CHECK-NOT: '" << frag << "' in:\n" << text;
}
int count(const std::string& text, const std::string& frag) {
  int n = 0;
  for (size_t at = text.find(frag); at != std::string::npos; at = text.find(frag, at + 1)) ++n;
  return n;
}

const char* kAdam = R"(program adam
  in    g  : f32[N]  local
  inout w  : f32[N]  replicated
  inout m  : f32[N]  sliced
  inout v  : f32[N]  sliced
  scalar lr : f32, beta1 : f32, beta2 : f32, eps : f32, step : i32
  gs = allreduce(sum, g) / nranks
  m  = beta1 * m + (1 - beta1) * gs
  v  = beta2 * v + (1 - beta2) * gs * gs
  w  = w - lr * (m / (1 - beta1 ^ step)) / (sqrt(v / (1 - beta2 ^ step)) + eps)
)";

const char* kSgdMomentum = R"(program sgd_momentum
  in    g   : f32[N] local
  inout w   : f32[N] replicated
  inout buf : f32[N] sliced
  scalar lr : f32, mom : f32
  buf = mom * buf + allreduce(avg, g)
  w   = w - lr * buf
)";

// Model parallel: x is this rank's partial product; the sum is replicated.
const char* kBiasDropoutResidual = R"(program bdr
  in  x     : f32[N] local
  in  bias  : f32[N] replicated
  in  resid : f32[N] replicated
  out y     : f32[N] replicated
  scalar p : f32, seed : i64
  h = allreduce(sum, x) + bias
  y = dropout(h, p, seed) + resid
)";

const char* kLocalOperand = R"(program local_operand
  in  g     : f32[N] local
  in  noise : f32[N] local
  out y     : f32[N] local
  y = allreduce(sum, g) * noise
)";

// ---- registry and schedules

TEST(Registry, TableDeclaresEveryPass) {
  ASSERT_EQ(passTable().size(), 4u);
  for (const PassInfo& p : passTable()) {
    EXPECT_NE(std::string(p.summary), "");
    EXPECT_NE(std::string(p.options), "");
    EXPECT_FALSE(p.statistics.empty()) << p.name;
    EXPECT_NE(p.run, nullptr);
    EXPECT_EQ(findPass(p.name), &p);
  }
  EXPECT_EQ(findPass("inline"), nullptr);
  EXPECT_EQ(defaultPipeline(), (std::vector<std::string>{"split", "reorder", "fuse", "overlap"}));
}

TEST(Registry, ParseSchedules) {
  std::vector<std::string> out;
  std::string err;
  ASSERT_TRUE(parsePipeline("none", &out, &err));
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(parsePipeline("", &out, &err));
  EXPECT_EQ(out, defaultPipeline());
  ASSERT_TRUE(parsePipeline("default", &out, &err));
  EXPECT_EQ(out, defaultPipeline());
  ASSERT_TRUE(parsePipeline(" split , reorder ", &out, &err));
  EXPECT_EQ(out, (std::vector<std::string>{"split", "reorder"}));
  ASSERT_TRUE(parsePipeline("fuse,fuse", &out, &err));
  EXPECT_EQ(out.size(), 2u);
}

TEST(Registry, UnknownPassIsAnErrorNamingIt) {
  std::vector<std::string> out;
  std::string err;
  EXPECT_FALSE(parsePipeline("split,splt,fuse", &out, &err));
  EXPECT_NE(err.find("unknown pass 'splt'"), std::string::npos) << err;
  EXPECT_NE(err.find("did you mean 'split'"), std::string::npos) << err;
  EXPECT_FALSE(parsePipeline("split,,fuse", &out, &err));
  EXPECT_NE(err.find("empty pass name"), std::string::npos) << err;
  EXPECT_FALSE(parsePipeline("vectorize", &out, &err));
  EXPECT_NE(err.find("'vectorize'"), std::string::npos) << err;
}

// ---- split

TEST(Split, AllreduceBecomesReduceScatterThenAllGather) {
  Program p = compileText(kAdam);
  std::vector<bool> changed;
  const std::string out = runPasses(p, "split", nullptr, &changed);
  EXPECT_TRUE(changed[0]);
  expectInOrder(
      out, {"gs = all_gather(reduce_scatter(sum, g)) / f32(nranks)", "m = beta1 * m + (1 - beta1) * gs"});
  expectNot(out, "allreduce");
}

TEST(Split, AvgStaysOnTheReduceScatter) {
  Program p = compileText(kSgdMomentum);
  const std::string out = runPasses(p, "split");
  expectInOrder(out, {"buf = mom * buf + all_gather(reduce_scatter(avg, g))\n"});
  expectNot(out, "nranks");
}

TEST(Split, ScalarAllreduceAndNoAllreduceAreLeftAlone) {
  Program p = compileText(R"(program s
  in  x : f32[N] local
  out t : f32 replicated
  t = allreduce(max, sum(x))
)");
  std::vector<bool> changed;
  const std::string out = runPasses(p, "split", nullptr, &changed);
  EXPECT_FALSE(changed[0]);
  expectInOrder(out, {"t = allreduce(max, sum(x))"});
}

// ---- reorder

TEST(Reorder, AdamUpdatesStateOnSlicesAndGathersOnlyW) {
  Program p = compileText(kAdam);
  const std::string out = runPasses(p, "split,reorder");
  expectInOrder(out, {"gs = reduce_scatter(sum, g) / f32(nranks)\n", "m = beta1 * m + (1 - beta1) * gs\n",
                      "v = beta2 * v + (1 - beta2) * gs * gs\n",
                      "w = all_gather(w - lr * (m / (1 - beta1 ^ step)) / (sqrt(v / (1 - beta2 ^ "
                      "step)) + eps))\n"});
  EXPECT_EQ(count(out, "all_gather"), 1);
  EXPECT_EQ(p.vars[static_cast<size_t>(p.findVar("gs"))].layout, ir::Layout::Sliced);
}

TEST(Reorder, BiasDropoutResidualMovesBeforeTheGather) {
  Program p = compileText(kBiasDropoutResidual);
  const std::string out = runPasses(p, "split,reorder");
  expectInOrder(out,
                {"h = reduce_scatter(sum, x) + bias\n", "y = all_gather(dropout(h, p, seed) + resid)\n"});
  EXPECT_EQ(count(out, "all_gather"), 1);
}

TEST(Reorder, LocalOperandBlocksTheMove) {
  Program p = compileText(kLocalOperand);
  std::vector<bool> changed;
  const std::string out = runPasses(p, "split,reorder", nullptr, &changed);
  EXPECT_FALSE(changed[1]);
  expectInOrder(out, {"y = all_gather(reduce_scatter(sum, g)) * noise"});
}

TEST(Reorder, LocalScalarBlocksTheMove) {
  Program p = compileText(R"(program r
  in  g : f32[N] local
  out y : f32[N] local
  y = allreduce(sum, g) * f32(rank)
)");
  std::vector<bool> changed;
  const std::string out = runPasses(p, "split,reorder", nullptr, &changed);
  EXPECT_FALSE(changed[1]);
  expectInOrder(out, {"y = all_gather(reduce_scatter(sum, g)) * f32(rank)"});
}

TEST(Reorder, TemporaryReadWholeTwiceKeepsItsGather) {
  Program p = compileText(R"(program twice
  in  g : f32[N] local
  out a : f32[N] replicated
  out b : f32[N] replicated
  t = allreduce(sum, g)
  a = t * 2
  b = t + 1
)");
  const std::string out = runPasses(p, "split,reorder");
  expectInOrder(out, {"t = all_gather(reduce_scatter(sum, g))\n", "a = t * 2\n", "b = t + 1\n"});
  EXPECT_EQ(count(out, "all_gather"), 1);
}

TEST(Reorder, WideningCastStaysAfterTheGather) {
  Program p = compileText(R"(program widen
  in  g : f32[N] local
  out y : f64[N] replicated
  y = f64(allreduce(sum, g))
)");
  const std::string out = runPasses(p, "split,reorder");
  expectInOrder(out, {"y = f64(all_gather(reduce_scatter(sum, g)))"});
}

TEST(Reorder, NormOfAGatherBecomesCrossRank) {
  Program p = compileText(R"(program gnorm
  in  g : f32[N] local
  out n : f32 replicated
  n = norm(allreduce(sum, g))
)");
  PassStats stats;
  const std::string out = runPasses(p, "split,reorder", nullptr, nullptr, &stats);
  expectInOrder(out, {"n = norm(reduce_scatter(sum, g))"});
  EXPECT_TRUE(p.node(p.stmts[0].value).crossRank);
  EXPECT_EQ(stats.get("reductions-sliced"), 1);
}

TEST(Reorder, ReachesAFixedPoint) {
  Program p = compileText(kAdam);
  runPasses(p, "split,reorder");
  const std::string once = ir::print(p);
  std::vector<bool> changed;
  runPasses(p, "reorder", nullptr, &changed);
  EXPECT_FALSE(changed[0]);
  EXPECT_EQ(ir::print(p), once);
}

// ---- fuse

TEST(Fuse, AdamIsOneRegionGatheringW) {
  Program p = compileText(kAdam);
  Annotations notes;
  PassStats stats;
  const std::string out = runPasses(p, "split,reorder,fuse", &notes, nullptr, &stats);
  expectInOrder(out, {"rs_g = reduce_scatter(sum, g)  # fuse: region 0 reduce_scatter\n",
                      "gs = rs_g / f32(nranks)  # fuse: region 0 hook\n",
                      "m = beta1 * m + (1 - beta1) * gs  # fuse: region 0 hook\n",
                      "v = beta2 * v + (1 - beta2) * gs * gs  # fuse: region 0 hook\n",
                      "w = all_gather(w - lr * ", "# fuse: region 0 hook + gather\n"});
  ASSERT_EQ(notes.fused.size(), 1u);
  EXPECT_EQ(notes.fused[0].rsStmt, 0);
  EXPECT_EQ(notes.fused[0].hookBegin, 1);
  EXPECT_EQ(notes.fused[0].hookEnd, 5);
  EXPECT_EQ(stats.get("gathers"), 1);
}

TEST(Fuse, SgdMomentum) {
  Program p = compileText(kSgdMomentum);
  const std::string out = runPasses(p, "split,reorder,fuse");
  expectInOrder(out, {"rs_g = reduce_scatter(avg, g)  # fuse: region 0 reduce_scatter\n",
                      "buf = mom * buf + rs_g  # fuse: region 0 hook\n",
                      "w = all_gather(w - lr * buf)  # fuse: region 0 hook + gather\n"});
}

TEST(Fuse, BiasDropoutResidualInTheHookGathersTheOutput) {
  Program p = compileText(kBiasDropoutResidual);
  const std::string out = runPasses(p, "split,reorder,fuse");
  expectInOrder(out, {"rs_x = reduce_scatter(sum, x)  # fuse: region 0 reduce_scatter\n",
                      "h = rs_x + bias  # fuse: region 0 hook\n",
                      "y = all_gather(dropout(h, p, seed) + resid)  # fuse: region 0 hook + "
                      "gather\n"});
}

TEST(Fuse, ScalarTemporariesAreHoistedBeforeTheReduceScatter) {
  Program p = compileText(R"(program adam_bc
  in    g  : f32[N]  local
  inout w  : f32[N]  replicated
  inout m  : f32[N]  sliced
  scalar lr : f32, beta1 : f32, step : i32
  gs  = allreduce(sum, g)
  bc1 = 1 - beta1 ^ step
  m   = beta1 * m + (1 - beta1) * gs
  w   = w - lr * m / bc1
)");
  PassStats stats;
  const std::string out = runPasses(p, "split,reorder,fuse", nullptr, nullptr, &stats);
  expectInOrder(out, {"bc1 = 1 - beta1 ^ step\n",
                      "gs = reduce_scatter(sum, g)  # fuse: region 0 "
                      "reduce_scatter\n",
                      "m = ", "# fuse: region 0 hook\n", "w = all_gather(w - lr * m / bc1)"});
  EXPECT_EQ(stats.get("scalars-hoisted"), 1);
}

TEST(Fuse, LocalOperandStaysUnfused) {
  Program p = compileText(kLocalOperand);
  Annotations notes;
  std::vector<bool> changed;
  const std::string out = runPasses(p, "split,reorder,fuse", &notes, &changed);
  EXPECT_FALSE(changed[2]);
  EXPECT_TRUE(notes.fused.empty());
  expectNot(out, "# fuse");
}

TEST(Fuse, AHookThatOnlyCopiesIsNotARegion) {
  Program p = compileText(R"(program plain
  in  g : f32[N] local
  out y : f32[N] replicated
  y = allreduce(sum, g)
)");
  Annotations notes;
  const std::string out = runPasses(p, "split,reorder,fuse", &notes);
  EXPECT_TRUE(notes.fused.empty());
  expectInOrder(out, {"y = all_gather(reduce_scatter(sum, g))\n"});
}

TEST(Fuse, LambRegionEndsAtTheWholeTensorNorm) {
  std::string src = ir::test::readFile(ir::test::programPath("lamb"));
  Program p = compileText(src);
  Annotations notes;
  const std::string out = runPasses(p, "split,reorder,fuse", &notes);
  ASSERT_EQ(notes.fused.size(), 1u);
  // The statement with norm() is outside the region; norm of a sliced value is cross-rank.
  const FusedRegion& r = notes.fused[0];
  for (int32_t s = r.hookBegin; s < r.hookEnd; ++s)
    EXPECT_FALSE(stmtContains(p, s, [](const ir::Node& n) { return n.op == ir::Op::Norm; }));
  expectInOrder(out, {"# fuse: region 0 reduce_scatter", "norm("});
}

TEST(Fuse, IsIdempotent) {
  Program p = compileText(kAdam);
  Annotations notes;
  runPasses(p, "split,reorder,fuse", &notes);
  const std::string once = printAnnotated(p, notes);
  std::vector<bool> changed;
  EXPECT_EQ(runPasses(p, "fuse", &notes, &changed), once);
  EXPECT_FALSE(changed[0]);
}

// ---- overlap

TEST(Overlap, RecordsProducerAndConsumer) {
  Program p = compileText(R"(program scaled
  in    g : f32[N] local
  inout w : f32[N] replicated
  scalar scale : f32, lr : f32
  t = g * scale
  w = w - lr * allreduce(sum, t)
)");
  Annotations notes;
  const std::string out = runPasses(p, "split,reorder,fuse,overlap", &notes);
  expectInOrder(out, {"t = g * scale\n",
                      "rs_t = reduce_scatter(sum, t)  # fuse: region 0 "
                      "reduce_scatter; overlap: consumes t as statement 0 "
                      "produces it\n"});
  ASSERT_EQ(notes.overlaps.size(), 1u);
  EXPECT_EQ(notes.overlaps[0].producer, 0);
  EXPECT_EQ(notes.overlaps[0].consumer, 1);
}

TEST(Overlap, InputNotProducedJustBeforeIsNotAPair) {
  Program p = compileText(kAdam);
  Annotations notes;
  std::vector<bool> changed;
  runPasses(p, "split,reorder,fuse,overlap", &notes, &changed);
  EXPECT_FALSE(changed[3]);
  EXPECT_TRUE(notes.overlaps.empty());
}

// ---- every stock program, every pass alone and the default pipeline: verify holds after each
// pass (runPasses checks), and a second default run changes nothing.

TEST(Passes, StockProgramsStayValid) {
  for (const std::string& path : ir::test::corpus("programs")) {
    SCOPED_TRACE(path);
    for (const char* sched :
         {"split", "reorder", "fuse", "overlap", "fuse,split,overlap,reorder", "default"}) {
      Program p = compileText(ir::test::readFile(path));
      runPasses(p, sched);
    }
    Program p = compileText(ir::test::readFile(path));
    Annotations notes;
    const std::string once = runPasses(p, "default", &notes);
    EXPECT_EQ(runPasses(p, "default", &notes), once);
  }
}

}  // namespace
}  // namespace fccl::fusion::passes
