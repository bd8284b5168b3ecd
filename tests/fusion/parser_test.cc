// parser_test.cc - lexer and parser units: tokens, precedence and associativity, declarations,
// error messages with line:col, recovery (several errors), and the depth cap.
#include <string>

#include "fusion/parse/lexer.h"
#include "test_util.h"

namespace fccl::ir {
namespace {

using parse::Tok;

std::vector<Tok> kinds(const std::string& s, Diagnostics* d = nullptr) {
  Diagnostics local;
  std::vector<Tok> out;
  for (const parse::Token& t : parse::lex(s, d ? *d : local)) out.push_back(t.kind);
  return out;
}

TEST(Lexer, TokensCommentsAndNewlines) {
  EXPECT_EQ(kinds("a = b <= c # note\n"), (std::vector<Tok>{Tok::Ident, Tok::Assign, Tok::Ident, Tok::Le,
                                                            Tok::Ident, Tok::Newline, Tok::End}));
  // Newlines inside parentheses do not end the statement.
  EXPECT_EQ(kinds("x = (a\n + b)\n"),
            (std::vector<Tok>{Tok::Ident, Tok::Assign, Tok::LParen, Tok::Ident, Tok::Plus, Tok::Ident,
                              Tok::RParen, Tok::Newline, Tok::End}));
  EXPECT_EQ(kinds("!= ! == && || ^"), (std::vector<Tok>{Tok::NotEq, Tok::Bang, Tok::EqEq, Tok::AndAnd,
                                                        Tok::OrOr, Tok::Caret, Tok::Newline, Tok::End}));
  EXPECT_EQ(kinds(""), (std::vector<Tok>{Tok::End}));
}

TEST(Lexer, Numbers) {
  Diagnostics d;
  auto toks = parse::lex("1 0.9 1e-8 .5 2E3", d);
  ASSERT_FALSE(d.hasErrors());
  EXPECT_EQ(toks[0].number, 1);
  EXPECT_TRUE(toks[0].integral);
  EXPECT_EQ(toks[1].number, 0.9);
  EXPECT_EQ(toks[2].number, 1e-8);
  EXPECT_FALSE(toks[2].integral);
  EXPECT_EQ(toks[3].number, 0.5);
  EXPECT_EQ(toks[4].number, 2000);
  Diagnostics bad("f");
  parse::lex("x = 1e999 + 3x + $", bad);
  EXPECT_EQ(bad.str(),
            "f:1:5: number '1e999' is out of range\n"
            "f:1:13: malformed number '3x'\n"
            "f:1:18: unexpected character '$'\n");
}

std::string parseErrors(const std::string& src) {
  Diagnostics d("t");
  auto p = parse::parseProgram(src, d);
  EXPECT_FALSE(p.has_value());
  return d.str();
}

// The expression of the last statement, printed with every node parenthesized by its op.
std::string shape(const Program& p, NodeId id) {
  const Node& n = p.node(id);
  switch (opArity(n.op)) {
    case 0:
      return printExpr(p, id);
    case 1: {
      std::string s = opName(n.op);  // appended: GCC 12 -O3 warns falsely on operator+
      s += "(";
      s += shape(p, n.args[0]);
      s += ")";
      return s;
    }
    case 2: {
      std::string s = "(";
      for (const std::string& part :
           {shape(p, n.args[0]), std::string(" ") + opName(n.op) + " ", shape(p, n.args[1])})
        s += part;
      return s + ")";
    }
    default: {
      std::string s = opName(n.op);
      for (int i = 0; i < 3; ++i) s += (i ? ", " : "(") + shape(p, n.args[static_cast<size_t>(i)]);
      return s + ")";
    }
  }
}
std::string tree(const std::string& expr) {
  Diagnostics d;
  auto p = parse::parseProgram("program t\nscalar a : f32, b : f32, c : f32\nx = " + expr, d);
  EXPECT_TRUE(p.has_value()) << d.str();
  return p ? shape(*p, p->stmts.back().value) : "";
}

TEST(Parser, PrecedenceAndAssociativity) {
  EXPECT_EQ(tree("a + b * c"), "(a + (b * c))");
  EXPECT_EQ(tree("a - b - c"), "((a - b) - c)");
  EXPECT_EQ(tree("a / b * c"), "((a / b) * c)");
  EXPECT_EQ(tree("a ^ b ^ c"), "(a ^ (b ^ c))");  // right associative
  EXPECT_EQ(tree("-a ^ 2"), "-((a ^ 2))");        // ^ binds tighter than unary minus
  EXPECT_EQ(tree("2 ^ -a"), "(2 ^ -(a))");
  EXPECT_EQ(tree("a * b ^ 2"), "(a * (b ^ 2))");
  EXPECT_EQ(tree("a < b && b < c || !(a == c)"), "(((a < b) && (b < c)) || !((a == c)))");
  EXPECT_EQ(tree("a + b < c * 2"), "((a + b) < (c * 2))");
  EXPECT_EQ(tree("max(a, b) + max(a)"), "((a max b) + max(a))");
  EXPECT_EQ(tree("select(a > b, a, b)"), "select((a > b), a, b)");
}

TEST(Parser, CallsAndDeclarations) {
  Diagnostics d;
  auto p = parse::parseProgram(
      "program p\n  in g : f16[N, 4] local\n  out s : f32 replicated\n"
      "  scalar k : i32\n  t = reduce(max, g, k)\n  s = f32(sum(t))\n",
      d);
  ASSERT_TRUE(p) << d.str();
  EXPECT_EQ(p->name, "p");
  ASSERT_EQ(p->vars.size(), 4u);  // g, s, k, t
  EXPECT_EQ(p->vars[0].shape.size(), 2u);
  EXPECT_EQ(p->symbols, std::vector<std::string>{"N"});
  EXPECT_EQ(p->vars[0].shape[1].size, 4);
  EXPECT_TRUE(p->vars[1].isScalar());
  EXPECT_EQ(p->vars[3].kind, VarKind::Temp);
  const Node& r = p->node(p->stmts[0].value);
  EXPECT_EQ(r.op, Op::Reduce);
  EXPECT_EQ(r.redop, RedOp::Max);
  EXPECT_EQ(p->node(p->stmts[1].value).op, Op::Cast);
  EXPECT_EQ(p->node(p->stmts[1].value).dtype, DType::F32);
}

TEST(Parser, ErrorsHaveLineColAndSuggestions) {
  EXPECT_EQ(parseErrors("program p\n  scalar lr : f32\n  x = lrr * 2\n"),
            "t:3:7: unknown name 'lrr'; did you mean 'lr'?\n");
  EXPECT_EQ(parseErrors("program p\n  scalar lr : f32\n  x = sqr(lr)\n"),
            "t:3:7: unknown function 'sqr'; did you mean 'sqrt'?\n");
  EXPECT_EQ(parseErrors("program p\n  in g : f32[N] local\n  x = allreduce(add, g)\n"),
            "t:3:17: expected a reduction op (sum, prod, min, max, avg) as the first argument "
            "of allreduce, found 'add'\n");
  // Several errors, one per line, parsing goes on.
  EXPECT_EQ(parseErrors("program p\n  scalar a : f32\n  x = a +\n  y = a a\n  z = q\n"),
            "t:3:10: expected an expression, found end of line\n"
            "t:4:9: expected end of line, found 'a'\n"
            "t:5:7: unknown name 'q'\n");
  EXPECT_EQ(parseErrors("program p\n  scalar a : f32, a : f32\n  in x : f32 local\n"),
            "t:2:19: 'a' is already declared at 2:10\n"
            "t:3:6: input 'x' has no shape; declare scalar inputs with 'scalar x : f32'\n");
  EXPECT_EQ(parseErrors("program p\n  scalar a : f32\n  b = a < a < a\n"),
            "t:3:13: comparisons do not chain; use parentheses and && instead\n");
  EXPECT_EQ(parseErrors("  scalar a : f32\n"), "t:1:3: a program starts with 'program NAME'\n");
  EXPECT_EQ(parseErrors("program p\n  scalar sum : f32\n"),
            "t:2:10: 'sum' is a reserved word; pick another name\n");
}

TEST(Parser, DepthIsCapped) {
  // Deep parentheses, a long unary chain and a long operator chain: errors, never a crash.
  std::string deep =
      "program p\nscalar a : f32\nx = " + std::string(5000, '(') + "a" + std::string(5000, ')') + "\n";
  EXPECT_NE(parseErrors(deep).find("nested too deeply"), std::string::npos);
  std::string neg = "program p\nscalar a : f32\nx = " + std::string(100000, '-') + "a\n";
  EXPECT_NE(parseErrors(neg).find("nested too deeply"), std::string::npos);
  std::string chain = "program p\nscalar a : f32\nx = a";
  for (int i = 0; i < 2000; ++i) chain += " + a";
  EXPECT_NE(parseErrors(chain).find("nested too deeply"), std::string::npos);
  // Just under the cap is fine.
  std::string ok = "program p\nscalar a : f32\nx = a";
  for (int i = 0; i < 200; ++i) ok += " + a";
  Diagnostics d;
  EXPECT_TRUE(parse::parseProgram(ok, d)) << d.str();
}

TEST(Parser, ClosestName) {
  std::vector<std::string> names{"lr", "beta1", "beta2", "momentum"};
  EXPECT_EQ(parse::closestName("lrr", names), "lr");
  EXPECT_EQ(parse::closestName("beta3", names), "beta1");
  EXPECT_EQ(parse::closestName("momentun", names), "momentum");
  EXPECT_EQ(parse::closestName("x", names), "");
  EXPECT_EQ(parse::closestName("completely_different", names), "");
}

}  // namespace
}  // namespace fccl::ir
