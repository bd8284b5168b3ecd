// parser.cc - recursive-descent parser of the fusion DSL (grammar.md). Each expression function
// returns a NodeId or kNoNode after reporting an error; the statement loop then skips to the
// next line, so one bad line costs one diagnostic and parsing goes on.
#include "fusion/parse/parser.h"

#include <algorithm>

#include "fusion/parse/lexer.h"

namespace fccl::ir::parse {

namespace {

// Built-in functions: name -> op and arity. Collectives with a reduction op take it first.
struct Builtin {
  const char* name;
  Op op;
  int args;  // counted without the leading reduction op
  bool hasRedOp;
};
constexpr Builtin kBuiltins[] = {
    {"allreduce", Op::AllReduce, 1, true},
    {"reduce_scatter", Op::ReduceScatter, 1, true},
    {"all_gather", Op::AllGather, 1, false},
    {"broadcast", Op::Broadcast, 2, false},
    {"reduce", Op::Reduce, 2, true},
    {"slice", Op::Slice, 1, false},
    {"sqrt", Op::Sqrt, 1, false},
    {"rsqrt", Op::Rsqrt, 1, false},
    {"exp", Op::Exp, 1, false},
    {"log", Op::Log, 1, false},
    {"abs", Op::Abs, 1, false},
    {"isfinite", Op::IsFinite, 1, false},
    {"min", Op::Min, 2, false},
    {"max", Op::Max, 2, false},
    {"pow", Op::Pow, 2, false},
    {"select", Op::Select, 3, false},
    {"dropout", Op::Dropout, 3, false},
    {"norm", Op::Norm, 1, false},
    {"sum", Op::Sum, 1, false},
    {"any_nonfinite", Op::AnyNonfinite, 1, false},
};

constexpr const char* kKeywords[] = {"program", "in",    "out",    "inout", "scalar", "replicated",
                                     "sliced",  "local", "nranks", "rank",  "true",   "false"};

bool isReserved(std::string_view s) {
  for (const char* k : kKeywords)
    if (s == k) return true;
  for (const Builtin& b : kBuiltins)
    if (s == b.name) return true;
  DType t;
  return parseDType(s, &t);
}

class Parser {
 public:
  Parser(std::string_view src, Diagnostics& diags) : diags_(diags) { toks_ = lex(src, diags); }

  std::optional<Program> run() {
    prog_.source = diags_.source();
    skipNewlines();
    if (isIdent("program")) {
      next();
      if (peek().kind == Tok::Ident) {
        prog_.name = std::string(next().text);
      } else {
        error(peek().loc, std::string("expected a program name after 'program', found ") + describe(peek()));
      }
      endLine();
    } else {
      error(peek().loc, "a program starts with 'program NAME'");
    }
    bool seenStmt = false;
    while (peek().kind != Tok::End) {
      skipNewlines();
      if (peek().kind == Tok::End) break;
      const Token& t = peek();
      const bool isDecl = isIdent("in") || isIdent("out") || isIdent("inout");
      if (isDecl || isIdent("scalar")) {
        if (seenStmt) error(t.loc, "declarations must come before the statements");
        if (isDecl)
          parseTensorDecl();
        else
          parseScalarDecl();
      } else {
        seenStmt = true;
        parseStmt();
      }
      endLine();
    }
    if (diags_.hasErrors()) return std::nullopt;
    return std::move(prog_);
  }

 private:
  // ---- tokens
  const Token& peek(size_t k = 0) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  const Token& next() {
    const Token& t = peek();
    if (pos_ < toks_.size() - 1) ++pos_;
    return t;
  }
  bool isIdent(std::string_view s) const { return peek().kind == Tok::Ident && peek().text == s; }
  bool accept(Tok k) {
    if (peek().kind != k) return false;
    next();
    return true;
  }
  static std::string describe(const Token& t) {
    if (t.kind != Tok::Ident && t.kind != Tok::Number) return tokName(t.kind);
    std::string s = "'";  // appended, not operator+: GCC 12 -O3 warns falsely (-Wrestrict)
    s.append(t.text);
    s += '\'';
    return s;
  }
  bool expect(Tok k, const std::string& what) {
    if (accept(k)) return true;
    error(peek().loc, std::string("expected ") + tokName(k) + " " + what + ", found " + describe(peek()));
    return false;
  }
  void skipNewlines() {
    while (peek().kind == Tok::Newline) next();
  }
  // After an item: the line must end here. On any error in the line, skip the rest of it.
  void endLine() {
    if (!lineFailed_ && peek().kind != Tok::Newline && peek().kind != Tok::End) {
      error(peek().loc, "expected end of line, found " + describe(peek()));
    }
    while (peek().kind != Tok::Newline && peek().kind != Tok::End) next();
    lineFailed_ = false;
  }
  void error(Loc loc, std::string msg) {
    if (lineFailed_) return;  // one diagnostic per line: the rest is usually noise
    diags_.error(loc, std::move(msg));
    lineFailed_ = true;
  }

  // ---- declarations
  bool declName(std::string* name, Loc* loc) {
    if (peek().kind != Tok::Ident) {
      error(peek().loc, "expected a name, found " + describe(peek()));
      return false;
    }
    const Token& t = next();
    *name = std::string(t.text);
    *loc = t.loc;
    if (isReserved(*name)) {
      error(t.loc, "'" + *name + "' is a reserved word; pick another name");
      return false;
    }
    int prev = prog_.findVar(*name);
    if (prev >= 0) {
      const Loc& p = prog_.vars[static_cast<size_t>(prev)].loc;
      error(t.loc,
            "'" + *name + "' is already declared at " + std::to_string(p.line) + ":" + std::to_string(p.col));
      return false;
    }
    return true;
  }
  bool dtype(DType* out) {
    if (peek().kind == Tok::Ident && parseDType(peek().text, out)) {
      next();
      return true;
    }
    error(peek().loc,
          "expected an element type (f64, f32, f16, bf16, i32, i64, bool), found " + describe(peek()));
    return false;
  }

  // ('in'|'out'|'inout') NAME ':' DTYPE ['[' DIM {',' DIM} ']'] LAYOUT
  void parseTensorDecl() {
    const Token& kw = next();
    Var v;
    v.kind = kw.text == "in" ? VarKind::In : kw.text == "out" ? VarKind::Out : VarKind::InOut;
    if (!declName(&v.name, &v.loc) || !expect(Tok::Colon, "after the name") || !dtype(&v.dtype)) return;
    if (accept(Tok::LBracket)) {
      do {
        const Token& d = peek();
        if (d.kind == Tok::Ident && !isReserved(d.text)) {
          v.shape.push_back({prog_.internSymbol(d.text), 0});
        } else if (d.kind == Tok::Number && d.integral && d.number <= 9.0e15) {
          v.shape.push_back({-1, static_cast<int64_t>(d.number)});
        } else {
          error(d.loc, "expected a dimension (a symbol like N or an integer), found " + describe(d));
          return;
        }
        next();
      } while (accept(Tok::Comma));
      if (!expect(Tok::RBracket, "after the dimensions")) return;
    }
    const Token& lt = peek();
    if (lt.kind != Tok::Ident || !parseLayout(lt.text, &v.layout)) {
      error(lt.loc, "expected a layout (replicated, sliced or local), found " + describe(lt));
      return;
    }
    next();
    if (v.shape.empty()) {
      if (v.kind == VarKind::In) {
        error(v.loc, "input '" + v.name + "' has no shape; declare scalar inputs with 'scalar " + v.name +
                         " : " + dtypeName(v.dtype) + "'");
        return;
      }
      if (v.layout == Layout::Sliced) {
        error(lt.loc, "scalar result '" + v.name + "' cannot be sliced");
        return;
      }
    }
    prog_.vars.push_back(std::move(v));
  }

  // 'scalar' NAME ':' DTYPE {',' NAME ':' DTYPE}
  void parseScalarDecl() {
    next();
    do {
      Var v;
      v.kind = VarKind::Scalar;
      v.layout = Layout::Replicated;
      if (!declName(&v.name, &v.loc) || !expect(Tok::Colon, "after the name") || !dtype(&v.dtype)) return;
      prog_.vars.push_back(std::move(v));
    } while (accept(Tok::Comma));
  }

  // NAME '=' EXPR
  void parseStmt() {
    const Token& name = peek();
    if (name.kind != Tok::Ident) {
      error(name.loc, "expected a declaration or a statement 'NAME = expression', found " + describe(name));
      return;
    }
    next();
    if (!expect(Tok::Assign, "after '" + std::string(name.text) + "'")) return;
    NodeId value = expr();
    if (value == kNoNode) return;
    if (isReserved(name.text)) {
      error(name.loc, "'" + std::string(name.text) + "' is a reserved word; pick another name");
      return;
    }
    int var = prog_.findVar(name.text);
    if (var < 0) {  // a new temporary, visible from the next statement on
      Var t;
      t.name = std::string(name.text);
      t.kind = VarKind::Temp;
      t.loc = name.loc;
      prog_.vars.push_back(std::move(t));
      var = static_cast<int>(prog_.vars.size() - 1);
    }
    prog_.stmts.push_back({var, value, name.loc});
  }

  // ---- expressions (precedence climbing, lowest first; see grammar.md)
  NodeId make(Op op, Loc loc, std::initializer_list<NodeId> args) {
    Node n;
    n.op = op;
    n.loc = loc;
    int h = 1, i = 0;
    for (NodeId a : args) {
      n.args[static_cast<size_t>(i++)] = a;
      h = std::max(h, height_[static_cast<size_t>(a)] + 1);
    }
    if (h > kMaxExprDepth) {
      error(loc, "expression is nested too deeply (more than " + std::to_string(kMaxExprDepth) +
                     " levels); split it into statements");
      return kNoNode;
    }
    height_.push_back(h);
    return prog_.add(std::move(n));
  }

  NodeId expr() { return binary(0); }

  // Levels: 0 ||, 1 &&, 2 == != (non-chaining), 3 < <= > >= (non-chaining), 4 + -, 5 * /.
  static int levelOf(Tok t, Op* op) {
    switch (t) {
      case Tok::OrOr:
        *op = Op::Or;
        return 0;
      case Tok::AndAnd:
        *op = Op::And;
        return 1;
      case Tok::EqEq:
        *op = Op::Eq;
        return 2;
      case Tok::NotEq:
        *op = Op::Ne;
        return 2;
      case Tok::Lt:
        *op = Op::Lt;
        return 3;
      case Tok::Le:
        *op = Op::Le;
        return 3;
      case Tok::Gt:
        *op = Op::Gt;
        return 3;
      case Tok::Ge:
        *op = Op::Ge;
        return 3;
      case Tok::Plus:
        *op = Op::Add;
        return 4;
      case Tok::Minus:
        *op = Op::Sub;
        return 4;
      case Tok::Star:
        *op = Op::Mul;
        return 5;
      case Tok::Slash:
        *op = Op::Div;
        return 5;
      default:
        return -1;
    }
  }

  NodeId binary(int level) {
    if (level > 5) return unary();
    NodeId lhs = binary(level + 1);
    if (lhs == kNoNode) return kNoNode;
    Op op = Op::Add;
    while (levelOf(peek().kind, &op) == level) {
      const Token& t = next();
      NodeId rhs = binary(level + 1);
      if (rhs == kNoNode) return kNoNode;
      lhs = make(op, t.loc, {lhs, rhs});
      if (lhs == kNoNode) return kNoNode;
      if (level == 2 || level == 3) {  // a < b < c means nothing useful: make it an error
        if (levelOf(peek().kind, &op) == level) {
          error(peek().loc, "comparisons do not chain; use parentheses and && instead");
          return kNoNode;
        }
        break;
      }
    }
    return lhs;
  }

  // unary := ('-' | '!') unary | power. Unary minus binds looser than ^: -x^2 = -(x^2).
  NodeId unary() {
    if (++depth_ > kMaxExprDepth) return tooDeep();
    NodeId r;
    if (peek().kind == Tok::Minus || peek().kind == Tok::Bang) {
      const Token& t = next();
      NodeId a = unary();
      r = a == kNoNode ? kNoNode : make(t.kind == Tok::Minus ? Op::Neg : Op::Not, t.loc, {a});
    } else {
      r = power();
    }
    --depth_;
    return r;
  }

  // power := primary ['^' unary]   (right associative: a^b^c = a^(b^c); 2^-1 is allowed)
  NodeId power() {
    NodeId base = primary();
    if (base == kNoNode || peek().kind != Tok::Caret) return base;
    const Token& t = next();
    NodeId e = unary();
    return e == kNoNode ? kNoNode : make(Op::Pow, t.loc, {base, e});
  }

  NodeId tooDeep() {
    --depth_;
    error(peek().loc, "expression is nested too deeply (more than " + std::to_string(kMaxExprDepth) +
                          " levels); split it into statements");
    return kNoNode;
  }

  NodeId primary() {
    const Token& t = peek();
    if (t.kind == Tok::Number) {
      next();
      NodeId n = make(Op::Literal, t.loc, {});
      if (n != kNoNode) prog_.node(n).value = t.number;
      return n;
    }
    if (t.kind == Tok::LParen) {
      next();
      NodeId e = expr();  // depth is counted in unary(), which every nesting passes through
      if (e == kNoNode || !expect(Tok::RParen, "to close '('")) return kNoNode;
      return e;
    }
    if (t.kind != Tok::Ident) {
      error(t.loc, "expected an expression, found " + describe(t));
      return kNoNode;
    }
    next();
    if (peek().kind == Tok::LParen) return call(t);
    if (t.text == "nranks") return make(Op::NRanks, t.loc, {});
    if (t.text == "rank") return make(Op::Rank, t.loc, {});
    if (t.text == "true" || t.text == "false") {
      NodeId n = make(Op::Literal, t.loc, {});
      if (n != kNoNode) {
        prog_.node(n).value = t.text == "true" ? 1 : 0;
        prog_.node(n).dtype = DType::Bool;
      }
      return n;
    }
    int var = prog_.findVar(t.text);
    if (var < 0) {
      std::string msg = "unknown name '" + std::string(t.text) + "'";
      std::vector<std::string> names;
      for (const Var& v : prog_.vars) names.push_back(v.name);
      names.push_back("nranks");
      names.push_back("rank");
      std::string best = closestName(t.text, names);
      if (!best.empty()) msg += "; did you mean '" + best + "'?";
      error(t.loc, msg);
      return kNoNode;
    }
    NodeId n = make(Op::Ref, t.loc, {});
    if (n != kNoNode) prog_.node(n).var = var;
    return n;
  }

  NodeId call(const Token& fn) {
    next();  // '('
    return callBody(fn);
  }

  NodeId callBody(const Token& fn) {
    DType castTo;
    const bool isCast = parseDType(fn.text, &castTo);
    const Builtin* b = nullptr;
    for (const Builtin& cand : kBuiltins)
      if (fn.text == cand.name) b = &cand;
    if (!b && !isCast) {
      std::vector<std::string> names;
      for (const Builtin& cand : kBuiltins) names.push_back(cand.name);
      for (const char* c : {"f64", "f32", "f16", "bf16", "i32", "i64", "bool"}) names.push_back(c);
      std::string msg = "unknown function '" + std::string(fn.text) + "'";
      std::string best = closestName(fn.text, names);
      if (!best.empty()) msg += "; did you mean '" + best + "'?";
      error(fn.loc, msg);
      return kNoNode;
    }
    RedOp redop = RedOp::Sum;
    if (b && b->hasRedOp) {
      const Token& o = peek();
      if (o.kind != Tok::Ident || !parseRedOp(o.text, &redop)) {
        error(o.loc, std::string("expected a reduction op (sum, prod, min, max, avg) as the "
                                 "first argument of ") +
                         b->name + ", found " + describe(o));
        return kNoNode;
      }
      next();
      if (!expect(Tok::Comma, "after the reduction op")) return kNoNode;
    }
    std::vector<NodeId> args;
    if (peek().kind != Tok::RParen) {
      do {
        NodeId a = expr();
        if (a == kNoNode) return kNoNode;
        args.push_back(a);
      } while (accept(Tok::Comma));
    }
    if (!expect(Tok::RParen, "after the arguments")) return kNoNode;
    Op op = isCast ? Op::Cast : b->op;
    int want = isCast ? 1 : b->args;
    // One-argument max is the whole-tensor reduction; min has no such form.
    if (op == Op::Max && args.size() == 1) op = Op::MaxAll, want = 1;
    if (op == Op::Min && args.size() == 1) {
      error(fn.loc, "min of a whole tensor is not supported; use -max(-x)");
      return kNoNode;
    }
    if (static_cast<int>(args.size()) != want) {
      error(fn.loc, std::string(fn.text) + " takes " + std::to_string(want) + " argument" +
                        (want == 1 ? "" : "s") + ", got " + std::to_string(args.size()));
      return kNoNode;
    }
    NodeId n = kNoNode;
    if (want == 1)
      n = make(op, fn.loc, {args[0]});
    else if (want == 2)
      n = make(op, fn.loc, {args[0], args[1]});
    else
      n = make(op, fn.loc, {args[0], args[1], args[2]});
    if (n == kNoNode) return n;
    prog_.node(n).redop = redop;
    if (isCast) prog_.node(n).dtype = castTo;
    return n;
  }

  Diagnostics& diags_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  Program prog_;
  std::vector<int> height_;  // per node: longest path to a leaf, capped by kMaxExprDepth
  int depth_ = 0;
  bool lineFailed_ = false;
};

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string closestName(std::string_view name, const std::vector<std::string>& candidates) {
  if (name.size() > 64) return "";  // keeps the quadratic distance cheap on hostile input
  std::string best;
  size_t bestD = 0;
  for (const std::string& c : candidates) {
    if (c.size() > 64) continue;
    size_t d = editDistance(name, c);
    // Plausible typo: at most 2 edits and fewer than half the name's letters.
    if (d == 0 || d > 2 || 2 * d > std::max(name.size(), c.size())) continue;
    if (best.empty() || d < bestD) best = c, bestD = d;
  }
  return best;
}

std::optional<Program> parseProgram(std::string_view src, Diagnostics& diags) {
  Parser p(src, diags);
  return p.run();
}

}  // namespace fccl::ir::parse
