// property_test.cc - random well-formed programs: a seeded generator writes program TEXT
// (1-6 statements over f32/f64 tensors of one shape, random layouts where the layout rules of
// fusion/check/layouts.md allow them, at most one allreduce / reduce_scatter / all_gather,
// pointwise ops from a well-conditioned set, scalars, whole-tensor reductions to a scalar),
// parses and checks it (a rejection is a generator bug: counted, printed, must be zero), runs
// it under every schedule on 1..4 ranks (threads) through the C API and compares every output
// with the float64 reference (tolerance: fused_util.h). A mismatch prints the program text, its
// seed and the case.
//
// Well-conditioned by construction: division only as x / (abs(y) + 1), sqrt only as
// sqrt(abs(x) + 0.25), exp only as exp(x / (abs(x) + 1)), comparisons (inside select) only
// between exact values (inputs, scalars, literals), so a rounding difference can never flip a
// branch; inputs in [-1, 1], scalars in [0.5, 1.5].
//
// FCCL_FUSED_PROPERTY_PROGRAMS (default 200) and FCCL_FUSED_PROPERTY_SEED (default 1) change the
// run; a failure message names the seed of the program, which reproduces it alone with
// FCCL_FUSED_PROPERTY_SEED=<seed> FCCL_FUSED_PROPERTY_PROGRAMS=1.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <random>
#include <sstream>

#include "fused_util.h"

using namespace fusedtest;
using fccltest::Mode;
using fccltest::runRanks;

namespace {

const char* const kSchedules[] = {nullptr, "none", "split", "split,reorder", "split,reorder,fuse"};
const int64_t kSizes[] = {1, 2, 3, 7, 64, 1000, 4099};

enum class Lay {
  R,
  S,
  L
};
const char* layName(Lay l) { return l == Lay::R ? "replicated" : l == Lay::S ? "sliced" : "local"; }

struct GVar {
  std::string name;
  std::string dtype;  // "f32" | "f64"
  Lay lay = Lay::R;
  enum Kind {
    In,
    InOut,
    Out,
    Temp,
    Scalar,
    IntScalar
  } kind = In;
  bool tensor = true;
  bool readable = true;  // out: after its first write
  bool exact = true;     // an input value (never written)
};

struct Ex {
  std::string t;
  std::string dtype;
  Lay lay = Lay::R;
  bool tensor = false;
  bool lit = false;  // literals only: untyped until its context types it
};

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed), seed_(seed) {}

  // The program text; *scalars gets a value for every scalar input.
  std::string program(std::map<std::string, double>* scalars) {
    const char* shapes[] = {"[N]", "[2, N]", "[N, 3]"};
    shape_ = shapes[pick(3)];
    int nin = 1 + pick(3), ninout = pick(3), nout = 1 + pick(2);
    for (int i = 0; i < nin; ++i) addVar("x" + std::to_string(i), GVar::In);
    for (int i = 0; i < ninout; ++i) addVar("y" + std::to_string(i), GVar::InOut);
    for (int i = 0; i < nout; ++i) addVar("z" + std::to_string(i), GVar::Out);
    int nscal = pick(3);
    for (int i = 0; i < nscal; ++i) {
      GVar v{"s" + std::to_string(i), fdt(), Lay::R, GVar::Scalar, false, true, true};
      vars_.push_back(v);
      (*scalars)[v.name] = 0.5 + unitRand();
    }
    if (pick(3) == 0) {
      vars_.push_back({"k", "i32", Lay::R, GVar::IntScalar, false, true, true});
      (*scalars)["k"] = double(1 + pick(3));
    }
    bool scalarResult = pick(3) == 0;
    std::string resLay = pick(2) ? "replicated" : "local";
    std::string resDt = fdt();
    if (resLay == "local" && !has(Lay::L)) resLay = "replicated";

    std::ostringstream decl;
    decl << "program p" << seed_ << "\n";
    for (const GVar& v : vars_) {
      if (v.kind == GVar::In || v.kind == GVar::InOut || v.kind == GVar::Out)
        decl << "  "
             << (v.kind == GVar::In      ? "in"
                 : v.kind == GVar::InOut ? "inout"
                                         : "out")
             << " " << v.name << " : " << v.dtype << shape_ << " " << layName(v.lay) << "\n";
    }
    if (scalarResult) decl << "  out r0 : " << resDt << " " << resLay << "\n";
    std::string sdecl;
    for (const GVar& v : vars_)
      if (v.kind == GVar::Scalar || v.kind == GVar::IntScalar)
        sdecl += (sdecl.empty() ? "" : ", ") + v.name + " : " + v.dtype;
    if (!sdecl.empty()) decl << "  scalar " << sdecl << "\n";
    decl << "\n";

    std::ostringstream body;
    int nstmts = 1 + pick(6);
    std::vector<int> outs;
    for (size_t i = 0; i < vars_.size(); ++i)
      if (vars_[i].kind == GVar::Out) outs.push_back(int(i));
    int total = std::max(nstmts, int(outs.size()) + (scalarResult ? 1 : 0));
    int temps = 0;
    for (int s = 0; s < total; ++s) {
      const int left = total - s;
      int unwritten = 0;
      for (int o : outs) unwritten += vars_[size_t(o)].readable ? 0 : 1;
      const bool mustResult = scalarResult && left == 1;
      const bool mustOut = !mustResult && left <= unwritten + (scalarResult ? 1 : 0);
      std::string line;
      for (int attempt = 0; attempt < 50 && line.empty(); ++attempt) {
        if (mustResult || (scalarResult && !mustOut && pick(6) == 0 && !resultDone_)) {
          line = reductionStmt("r0", resDt, resLay == "replicated" ? Lay::R : Lay::L);
          if (line.empty() && mustResult && attempt == 49)  // nothing to reduce: a scalar of that layout
            line = "r0 = " + resDt + (resLay == "replicated" ? "(nranks) * 0.5" : "(rank) * 0.5");
          if (!line.empty()) resultDone_ = true;
          continue;
        }
        int choice = mustOut ? 0 : pick(4);
        if (choice == 0 || choice == 1) {  // write an out / inout
          std::vector<int> cands;
          for (size_t i = 0; i < vars_.size(); ++i) {
            const GVar& v = vars_[i];
            if (mustOut ? (v.kind == GVar::Out && !v.readable)
                        : (v.kind == GVar::Out || v.kind == GVar::InOut))
              cands.push_back(int(i));
          }
          if (cands.empty()) continue;
          int vi = cands[size_t(pick(int(cands.size())))];
          line = store(vi);
        } else if (choice == 2 && pick(3) == 0) {  // a scalar temp from a whole-tensor reduction
          std::string name = "u" + std::to_string(temps++);
          Lay l = pick(3) == 0 && has(Lay::L) ? Lay::L : Lay::R;
          std::string dt = fdt();
          line = reductionStmt(name, dt, l);
          if (!line.empty()) vars_.push_back({name, dt, l, GVar::Temp, false, true, false});
        } else {  // a temp
          Lay l = Lay(pick(3));
          if (!can(l)) l = Lay::R;
          std::string dt = fdt();
          auto e = gen(2 + pick(2), l, dt);
          if (!e) continue;
          std::string name = "t" + std::to_string(temps++);
          line = name + " = " + (e->lit ? dt + "(" + e->t + ")" : e->t);
          vars_.push_back({name, dt, l, GVar::Temp, e->tensor, true, false});
        }
      }
      if (!line.empty()) body << "  " << line << "\n";
    }
    return decl.str() + body.str();
  }

 private:
  int pick(int n) { return int(rng_() % uint64_t(n)); }
  double unitRand() { return double(rng_() >> 11) * 0x1.0p-53; }
  std::string fdt() { return pick(2) ? "f32" : "f64"; }

  void addVar(const std::string& name, GVar::Kind k) {
    GVar v{name, fdt(), Lay(pick(3)), k, true, k != GVar::Out, k != GVar::Out};
    vars_.push_back(v);
  }
  bool has(Lay l) const {
    for (const GVar& v : vars_)
      if (v.lay == l && v.readable && v.tensor && v.kind != GVar::Scalar) return true;
    return false;
  }
  // An expression of exactly layout l can be produced.
  bool can(Lay l) const {
    if (l == Lay::R) return true;
    if (l == Lay::S) return has(Lay::S) || (!collUsed_ && has(Lay::L));
    return has(Lay::L);
  }
  static Ex cast(Ex e, const std::string& dt) {
    if (e.dtype == dt) return e;
    e.t = dt + "(" + e.t + ")";
    e.dtype = dt;
    return e;
  }
  std::string lit() {
    const char* lits[] = {"0.5", "2", "1.25", "3", "0.75", "1e-3", "0.125"};
    return lits[pick(7)];
  }

  // A leaf of exactly layout l and dtype dt; exactOnly: an input value (for comparisons).
  std::optional<Ex> leaf(Lay l, const std::string& dt, bool exactOnly = false, bool tensorOnly = false) {
    std::vector<const GVar*> cands;
    for (const GVar& v : vars_) {
      if (!v.readable || v.lay != l) continue;
      if (exactOnly && !v.exact) continue;
      if (tensorOnly && !v.tensor) continue;
      cands.push_back(&v);
    }
    const bool extra = l == Lay::R && !tensorOnly;  // literals, nranks
    const int nextra = extra ? 2 : 0;
    if (l == Lay::L && !tensorOnly && !exactOnly) cands.push_back(nullptr);  // rank
    if (cands.empty() && nextra == 0) {
      if (l == Lay::S && !collUsed_ && !exactOnly) return collective(1, Lay::S, dt);
      return std::nullopt;
    }
    int i = pick(int(cands.size()) + nextra);
    if (i >= int(cands.size())) {
      if (i == int(cands.size()) || exactOnly) return Ex{lit(), dt, Lay::R, false, true};
      return Ex{dt + "(nranks)", dt, Lay::R, false};
    }
    const GVar* v = cands[size_t(i)];
    if (v == nullptr) return Ex{dt + "(rank)", dt, Lay::L, false};
    if (v->kind == GVar::IntScalar) return Ex{dt + "(" + v->name + ")", dt, Lay::R, false};
    return cast(Ex{v->name, v->dtype, v->lay, v->tensor}, dt);
  }

  std::optional<Ex> collective(int depth, Lay l, const std::string& dt) {
    if (collUsed_) return std::nullopt;
    const char* ops[] = {"sum", "avg", "min", "max", "prod"};
    std::string op = ops[pick(5)];
    std::optional<Ex> a;
    std::string call;
    if (l == Lay::S || (l == Lay::R && pick(2))) {
      if (!has(Lay::L)) {
        if (l == Lay::S) return std::nullopt;
      } else {
        collUsed_ = true;
        a = tensorExpr(depth, Lay::L, dt);
        if (!a) return std::nullopt;
        call = (l == Lay::S ? "reduce_scatter(" : "allreduce(") + op + ", " + a->t + ")";
        return Ex{call, dt, l, true};
      }
    }
    if (!has(Lay::S)) return std::nullopt;
    collUsed_ = true;
    a = tensorExpr(depth, Lay::S, dt);
    if (!a) return std::nullopt;
    return Ex{"all_gather(" + a->t + ")", dt, Lay::R, true};
  }

  // An expression that is certainly a tensor: a tensor leaf, possibly combined with more.
  std::optional<Ex> tensorExpr(int depth, Lay l, const std::string& dt) {
    auto t = leaf(l, dt, false, true);
    if (!t) return std::nullopt;
    if (depth <= 0 || pick(2)) return t;
    auto o = gen(depth - 1, pick(2) ? l : Lay::R, dt);
    if (!o) return t;
    const char* ops[] = {" + ", " - ", " * "};
    return Ex{"(" + t->t + ops[pick(3)] + o->t + ")", dt, l, true};
  }

  // A bool condition of layout l or R from exact values.
  std::optional<Ex> cond(Lay l) {
    const char* cmps[] = {" < ", " <= ", " > ", " >= ", " == ", " != "};
    std::string dt = fdt();
    auto a = leaf(pick(2) ? l : Lay::R, dt, true);
    auto b = leaf(pick(2) ? l : Lay::R, dt, true);
    if (!a || !b || (a->lit && b->lit)) return std::nullopt;
    Ex c{a->t + cmps[pick(6)] + b->t, "bool", combine(a->lay, b->lay), a->tensor || b->tensor};
    if (pick(4) == 0) {
      auto d = leaf(l, dt, true);
      if (d) {
        c.t = "(" + c.t + (pick(2) ? ") && (" : ") || (") + d->t + " > 0)";
        c.lay = combine(c.lay, d->lay);
        c.tensor = c.tensor || d->tensor;
      }
    }
    if (pick(5) == 0) c.t = "!(" + c.t + ")";
    return c;
  }
  static Lay combine(Lay a, Lay b) {
    if (a == Lay::R) return b;
    return a;  // b is R or equal (never L with S)
  }

  // Two operand layouts whose combination is exactly l.
  std::pair<Lay, Lay> split(Lay l) {
    if (l == Lay::R) return {Lay::R, Lay::R};
    int k = pick(3);
    if (k == 0) return {l, l};
    if (k == 1) return {l, Lay::R};
    return {Lay::R, l};
  }

  std::optional<Ex> gen(int depth, Lay l, const std::string& dt) {
    if (!can(l)) return std::nullopt;
    if (depth <= 0 || pick(4) == 0) return leaf(l, dt);
    int k = pick(collUsed_ ? 9 : 10);
    auto [la, lb] = split(l);
    auto sub = [&](Lay x) { return gen(depth - 1, x, dt); };
    switch (k) {
      case 0:
      case 1:
      case 2: {
        auto a = sub(la), b = sub(lb);
        if (!a || !b) return std::nullopt;
        const char* ops[] = {" + ", " - ", " * "};
        return Ex{"(" + a->t + ops[k] + b->t + ")", dt, combine(a->lay, b->lay), a->tensor || b->tensor,
                  a->lit && b->lit};
      }
      case 3: {
        auto a = sub(la), b = sub(lb);
        if (!a || !b) return std::nullopt;
        return Ex{"(" + a->t + " / (abs(" + b->t + ") + 1))", dt, combine(a->lay, b->lay),
                  a->tensor || b->tensor, a->lit && b->lit};
      }
      case 4: {
        auto a = sub(l);
        if (!a) return std::nullopt;
        int u = pick(4);
        std::string t = u == 0   ? "sqrt(abs(" + a->t + ") + 0.25)"
                        : u == 1 ? "abs(" + a->t + ")"
                        : u == 2 ? "-" + a->t
                                 : "exp(min(max(" + a->t + ", -2), 2))";
        return Ex{t, dt, a->lay, a->tensor, a->lit};
      }
      case 5: {
        auto a = sub(la), b = sub(lb);
        if (!a || !b) return std::nullopt;
        return Ex{std::string(pick(2) ? "min(" : "max(") + a->t + ", " + b->t + ")", dt,
                  combine(a->lay, b->lay), a->tensor || b->tensor, a->lit && b->lit};
      }
      case 6: {  // cast from the other float type
        std::string other = dt == "f32" ? "f64" : "f32";
        auto a = gen(depth - 1, l, other);
        if (!a) return std::nullopt;
        return cast(*a, dt);
      }
      case 7:
      case 8: {
        auto c = cond(l);
        auto a = sub(pick(2) ? l : Lay::R), b = sub(pick(2) ? l : Lay::R);
        if (!c || !a || !b) return std::nullopt;
        Lay r = combine(combine(c->lay, a->lay), b->lay);
        if (r != l) {  // make it exactly l: add a leaf of layout l
          auto x = leaf(l, dt);
          if (!x) return std::nullopt;
          return Ex{"(select(" + c->t + ", " + a->t + ", " + b->t + ") + " + x->t + ")", dt, l, true};
        }
        return Ex{"select(" + c->t + ", " + a->t + ", " + b->t + ")", dt, r,
                  c->tensor || a->tensor || b->tensor, a->lit && b->lit};
      }
      default:
        return collective(depth - 1, l, dt);
    }
  }

  // "name = red(X)" with the result of layout l (R: X sliced or replicated; L: X local).
  std::string reductionStmt(const std::string& name, const std::string& dt, Lay l) {
    std::vector<Lay> xls;
    if (l == Lay::L)
      xls.push_back(Lay::L);
    else {
      if (has(Lay::R)) xls.push_back(Lay::R);
      if (can(Lay::S)) xls.push_back(Lay::S);
    }
    if (xls.empty()) return "";
    Lay xl = xls[size_t(pick(int(xls.size())))];
    std::string xdt = fdt();
    auto x = tensorExpr(1 + pick(2), xl, xdt);
    if (!x) return "";
    int k = pick(3);
    std::string r = k == 0 ? "norm(" + x->t + ")" : k == 1 ? "max(" + x->t + ")" : "sum(abs(" + x->t + "))";
    if (xdt != dt) r = dt + "(" + r + ")";
    return name + " = " + r;
  }

  // "v = expr" for a declared out/inout var, with an expression layout the store allows.
  std::string store(int vi) {
    GVar& v = vars_[size_t(vi)];
    Lay el = v.lay;
    if (pick(3) == 0)
      el = Lay::R;  // replicated into anything: fill / implicit slice
    else if (v.lay == Lay::R && pick(3) == 0 && can(Lay::S))
      el = Lay::S;  // implicit all_gather
    if (!can(el)) el = Lay::R;
    auto e = gen(2 + pick(2), el, v.dtype);
    if (!e) return "";
    std::string rhs = e->lit ? v.dtype + "(" + e->t + ")" : e->t;
    if (v.readable && pick(2)) rhs = v.name + " * 0.5 + " + rhs;  // read-modify-write
    v.readable = true;
    v.exact = false;
    return v.name + " = " + rhs;
  }

  std::mt19937_64 rng_;
  uint64_t seed_;
  std::string shape_;
  std::vector<GVar> vars_;
  bool collUsed_ = false;
  bool resultDone_ = false;
};

uint64_t envU64(const char* name, uint64_t dflt) {
  const char* s = std::getenv(name);
  return s && *s ? std::strtoull(s, nullptr, 10) : dflt;
}

struct GenProgram {
  uint64_t seed = 0;
  std::string text;
  std::optional<ir::Program> checked;
  std::map<std::string, double> scalars;
  int64_t N = 1;
};

// The generated programs (shared by the nranks cases; generated once per process).
const std::vector<GenProgram>& programs(int* rejected, std::string* rejectedText) {
  static std::vector<GenProgram> progs;
  static int rej = 0;
  static std::string rejText;
  static bool done = false;
  if (!done) {
    done = true;
    const uint64_t count = envU64("FCCL_FUSED_PROPERTY_PROGRAMS", 200);
    const uint64_t seed0 = envU64("FCCL_FUSED_PROPERTY_SEED", 1);
    for (uint64_t i = 0; i < count; ++i) {
      GenProgram g;
      g.seed = seed0 + i;
      Gen gen(g.seed);
      g.text = gen.program(&g.scalars);
      g.N = kSizes[g.seed % (sizeof(kSizes) / sizeof(kSizes[0]))];
      std::string errors;
      g.checked = parseCheck(g.text, &errors);
      if (!g.checked) {
        ++rej;
        rejText += "seed " + std::to_string(g.seed) + ":\n" + g.text + errors + "\n";
        continue;
      }
      progs.push_back(std::move(g));
    }
  }
  *rejected = rej;
  *rejectedText = rejText;
  return progs;
}

TEST(PropertyGenerator, CheckerAcceptsEveryGeneratedProgram) {
  int rejected = 0;
  std::string text;
  const auto& progs = programs(&rejected, &text);
  EXPECT_EQ(rejected, 0) << "generator bug: the checker rejected these programs:\n" << text;
  EXPECT_GT(progs.size(), 0u);
  // The generator covers what it claims: count features over the accepted programs.
  int coll = 0, sliced = 0, local = 0, sel = 0, red = 0, f64 = 0;
  for (const GenProgram& g : progs) {
    coll += g.text.find("allreduce(") != std::string::npos ||
            g.text.find("reduce_scatter(") != std::string::npos ||
            g.text.find("all_gather(") != std::string::npos;
    sliced += g.text.find("sliced") != std::string::npos;
    local += g.text.find("local") != std::string::npos;
    sel += g.text.find("select(") != std::string::npos;
    red += g.text.find("norm(") != std::string::npos || g.text.find("sum(abs") != std::string::npos;
    f64 += g.text.find("f64") != std::string::npos;
  }
  std::cout << progs.size() << " programs: " << coll << " with a collective, " << sliced << " with sliced, "
            << local << " with local, " << sel << " with select, " << red << " with a reduction, " << f64
            << " with f64\n";
  if (progs.size() >= 50) {
    EXPECT_GT(coll, int(progs.size()) / 5);
    EXPECT_GT(sel, int(progs.size()) / 10);
    EXPECT_GT(red, int(progs.size()) / 20);
  }
}

class Property : public ::testing::TestWithParam<int> {};

TEST_P(Property, EveryScheduleMatchesReference) {
  const int nranks = GetParam();
  int rejected = 0;
  std::string rejText;
  const auto& progs = programs(&rejected, &rejText);

  std::vector<Case> cases(progs.size());
  std::vector<bool> usable(progs.size(), false);
  std::string refErrors;
  for (size_t i = 0; i < progs.size(); ++i) {
    const GenProgram& g = progs[i];
    Case& c = cases[i];
    c.nranks = nranks;
    c.label = "program seed " + std::to_string(g.seed) + " N=" + std::to_string(g.N);
    for (const std::string& s : g.checked->symbols) c.symbols[s] = g.N;
    c.scalars = g.scalars;
    const uint64_t seed = g.seed;
    std::string err;
    if (!buildCase(
            *g.checked, &c,
            [seed](const std::string& name, int rank, int64_t x) {
              return -1 + 2 * unit(seed, hashName(name), uint64_t(rank), uint64_t(x));
            },
            1, &err)) {
      refErrors +=
          "seed " + std::to_string(g.seed) + ": the reference rejects it: " + err + "\n" + g.text + "\n";
      continue;
    }
    usable[i] = true;
  }
  EXPECT_TRUE(refErrors.empty()) << "generator bug:\n" << refErrors;

  // One flag per program (threads share memory): which ones failed anywhere.
  auto failed = std::make_shared<std::vector<std::atomic<int>>>(progs.size());
  fccltest::RunResult rr = runRanks(
      nranks, Mode::Threads,
      [&, failed](fcclComm_t comm, int rank, int n) {
        std::vector<std::string> failing, details;
        for (size_t i = 0; i < progs.size(); ++i) {
          if (!usable[i]) continue;
          for (const char* sched : kSchedules) {
            std::string what = cases[i].label + ", schedule " + scheduleName(sched) + ", " +
                               std::to_string(n) + " ranks as threads",
                        d;
            fccltest::noteProgress(what);
            if (!runCaseOnRank(comm, rank, progs[i].text, *progs[i].checked, sched, cases[i], what, false,
                               &d)) {
              (*failed)[i] = 1;
              failing.push_back(what);
              details.push_back(d);
            }
          }
        }
        recordCaseFailures(failing, details);
      },
      100);
  EXPECT_TRUE(rr.ok) << rr.report;
  for (size_t i = 0; i < progs.size(); ++i)
    if ((*failed)[i])
      ADD_FAILURE() << "mismatch on " << nranks << " ranks: program seed " << progs[i].seed
                    << " N=" << progs[i].N << " (reproduce: FCCL_FUSED_PROPERTY_SEED=" << progs[i].seed
                    << " FCCL_FUSED_PROPERTY_PROGRAMS=1)\n"
                    << progs[i].text;
}

INSTANTIATE_TEST_SUITE_P(Ranks, Property, ::testing::Values(1, 2, 3, 4),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return "n" + std::to_string(i.param);
                         });

}  // namespace
