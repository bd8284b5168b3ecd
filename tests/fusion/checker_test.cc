// checker_test.cc - what check() adds (implicit casts, all_gather, slice; crossRank marks;
// literal typing) and what verify() rejects in hand-broken programs.
#include "test_util.h"

namespace fccl::ir {
namespace {

const Node& stmtValue(const Program& p, const std::string& var) {
  for (const Stmt& s : p.stmts)
    if (p.vars[static_cast<size_t>(s.var)].name == var) return p.node(s.value);
  ADD_FAILURE() << "no statement for " << var;
  return p.nodes.front();
}

const char* kAdam = R"(program adam
  in    g  : f32[N]  local
  inout w  : f32[N]  replicated
  inout m  : f32[N]  sliced
  scalar lr : f32, beta1 : f32, step : i32
  gs = allreduce(sum, g) / nranks
  m  = beta1 * m + (1 - beta1) * gs
  w  = w - lr * m / (1 - beta1 ^ step)
  m  = w
)";

TEST(Checker, ImplicitNodes) {
  std::string err;
  auto p = test::compile(kAdam, &err);
  ASSERT_TRUE(p) << err;
  // nranks promoted to f32 by an implicit cast.
  const Node& gs = stmtValue(*p, "gs");
  EXPECT_EQ(gs.op, Op::Div);
  EXPECT_EQ(p->node(gs.args[1]).op, Op::Cast);
  EXPECT_TRUE(p->node(gs.args[1]).implicit);
  EXPECT_EQ(gs.layout, Layout::Replicated);
  // The sliced update stored into replicated w goes through an implicit all_gather.
  const Node& w = stmtValue(*p, "w");
  EXPECT_EQ(w.op, Op::AllGather);
  EXPECT_TRUE(w.implicit);
  EXPECT_EQ(p->node(w.args[0]).layout, Layout::Sliced);
  // Replicated stored into sliced m takes this rank's slice.
  EXPECT_EQ(p->node(p->stmts.back().value).op, Op::Slice);
  // Literals took f32; pow keeps its i32 exponent.
  const Node& m = stmtValue(*p, "m");
  EXPECT_EQ(m.dtype, DType::F32);
  EXPECT_EQ(m.layout, Layout::Sliced);
  EXPECT_EQ(p->vars[static_cast<size_t>(p->findVar("gs"))].dtype, DType::F32);
  EXPECT_NE(print(*p).find("w = all_gather(w - lr * m / (1 - beta1 ^ step))"), std::string::npos);
  EXPECT_NE(print(*p).find("m = slice(w)"), std::string::npos);
}

TEST(Checker, WholeTensorReductions) {
  auto p = test::compile(
      "program r\n in l : f32[N] local\n inout s : f32[N] sliced\n inout w : f32[N] replicated\n"
      " a = norm(s)\n b = sum(w)\n c = max(l)\n d = any_nonfinite(s)\n s = s * a * b\n");
  ASSERT_TRUE(p);
  EXPECT_TRUE(stmtValue(*p, "a").crossRank);
  EXPECT_EQ(stmtValue(*p, "a").layout, Layout::Replicated);
  EXPECT_TRUE(stmtValue(*p, "a").isScalar());
  EXPECT_FALSE(stmtValue(*p, "b").crossRank);
  EXPECT_EQ(stmtValue(*p, "c").layout, Layout::Local);
  EXPECT_EQ(stmtValue(*p, "d").dtype, DType::Bool);
}

TEST(Checker, LiteralTyping) {
  auto p = test::compile(
      "program t\n scalar k : i32, h : f16\n out y : f16 replicated\n out j : i32 replicated\n"
      " a = 1 + 2\n y = h * (1 - 0.5) + a ^ k * 0\n j = k / 2 + 1\n");
  ASSERT_FALSE(p);  // a is f64 (untyped let defaults to f64): f64 and f16 do not mix
  p = test::compile(
      "program t\n scalar k : i32, h : f16\n out y : f16 replicated\n out j : i32 replicated\n"
      " y = h * (1 - 0.5) + 2 ^ k\n j = k / 2 + 1\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(stmtValue(*p, "y").dtype, DType::F16);
  EXPECT_EQ(stmtValue(*p, "j").dtype, DType::I32);
}

TEST(Checker, LayoutCombinations) {
  const char* head =
      "program l\n in L : f32[N] local\n in R : f32[N] replicated\n in S : f32[N] sliced\n"
      " scalar c : f32\n";
  struct Case {
    const char* expr;
    const char* want;  // layout name, or "" for an error
  } cases[] = {
      {"R + R", "replicated"},
      {"S + S", "sliced"},
      {"S + R", "sliced"},
      {"R * S", "sliced"},
      {"L - R", "local"},
      {"R / L", "local"},
      {"L + L", "local"},
      {"L + S", ""},
      {"S + L", ""},
      {"c * S", "sliced"},
      {"f32(rank) * R", "local"},
      {"f32(rank) * S", "sliced"},
      {"select(S > R, S, c)", "sliced"},
      {"select(L > 0, R, c)", "local"},
      {"select(L > 0, S, R)", ""},
  };
  for (const Case& c : cases) {
    std::string err;
    auto p = test::compile(std::string(head) + " x = " + c.expr + "\n", &err);
    if (!*c.want) {
      EXPECT_FALSE(p) << c.expr;
      EXPECT_NE(err.find("is sliced: only 1/n of it exists on this rank"), std::string::npos)
          << c.expr << ": " << err;
      continue;
    }
    ASSERT_TRUE(p) << c.expr << ": " << err;
    EXPECT_STREQ(layoutName(stmtValue(*p, "x").layout), c.want) << c.expr;
  }
}

TEST(Verify, RejectsBrokenPrograms) {
  auto good = test::compile(kAdam);
  ASSERT_TRUE(good);
  Diagnostics d;
  EXPECT_TRUE(check::verify(*good, d)) << d.str();

  Program p = *good;  // drop the implicit all_gather: a sliced value stored into replicated w
  for (Stmt& s : p.stmts)
    if (p.vars[static_cast<size_t>(s.var)].name == "w") s.value = p.node(s.value).args[0];
  Diagnostics d1;
  EXPECT_FALSE(check::verify(p, d1));
  EXPECT_NE(d1.str().find("without an explicit all_gather"), std::string::npos) << d1.str();

  p = *good;  // a wrong layout annotation
  p.nodes[p.stmts[0].value].layout = Layout::Local;
  Diagnostics d2;
  EXPECT_FALSE(check::verify(p, d2));
  EXPECT_NE(d2.str().find("is annotated"), std::string::npos) << d2.str();

  p = *good;  // an operand that is not earlier in the arena
  p.nodes[0].op = Op::Neg;
  p.nodes[0].args[0] = 5;
  Diagnostics d3;
  EXPECT_FALSE(check::verify(p, d3));
  EXPECT_NE(d3.str().find("not earlier"), std::string::npos) << d3.str();

  p = *good;  // one node used by two statements
  p.stmts[1].value = p.stmts[0].value;
  Diagnostics d4;
  EXPECT_FALSE(check::verify(p, d4));
  EXPECT_NE(d4.str().find("is shared by statements"), std::string::npos) << d4.str();

  p = *good;  // an untyped literal left behind
  for (Node& n : p.nodes)
    if (n.op == Op::Literal) n.dtype = DType::Untyped;
  Diagnostics d5;
  EXPECT_FALSE(check::verify(p, d5));
  EXPECT_NE(d5.str().find("is untyped"), std::string::npos) << d5.str();
}

}  // namespace
}  // namespace fccl::ir
