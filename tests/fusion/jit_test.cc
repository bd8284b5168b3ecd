// jit_test.cc - the CPU JIT (fusion/jit/cpu_jit.h) against the tile VM it replaces: every
// Pointwise/Fused step of every stock program lowered with the default pipeline, every op on
// every dtype, every cast, dropout, scalar results, aliased bindings - bit for bit (NaN == NaN),
// at counts around tile and vector boundaries with sliced bindings (base != 0). Then the cache
// (hits, a private directory), failures (no compiler, a failing compiler) and concurrent compiles.
// Needs a C++ compiler on PATH (`c++`), like the library's JIT itself.
#include "fusion/jit/cpu_jit.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>

#include "fusion/exec/pointwise.h"
#include "fusion/passes/lower.h"
#include "fusion/passes/registry.h"
#include "fusion/ref/round.h"
#include "src/base/half.h"
#include "test_util.h"

namespace fccl::fusion {
namespace {

using ir::DType;
using ir::Program;
namespace fs = std::filesystem;

const int64_t kCounts[] = {0, 1, 7, 511, 513, 10007};

// A private directory under the system temp dir; `fresh` empties it first (a cold cache).
std::string cacheDir(const std::string& name, bool fresh) {
  const fs::path d = fs::temp_directory_path() / ("fccl-jit-test-" + std::to_string(getuid())) / name;
  if (fresh) fs::remove_all(d);
  return d.string();
}
jit::JitOptions options(const std::string& dir = cacheDir("shared", false)) {
  jit::JitOptions o;
  o.cacheDir = dir;
  return o;
}

Program compileText(const std::string& src) {
  std::string errors;
  auto p = ir::test::compile(src, &errors);
  EXPECT_TRUE(p.has_value()) << errors << "\n" << src;
  return p ? *p : Program{};
}
std::vector<int32_t> allStmts(const Program& p) {
  std::vector<int32_t> s;
  for (size_t i = 0; i < p.stmts.size(); ++i) s.push_back(static_cast<int32_t>(i));
  return s;
}

uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A value of dtype t for element i of var v: mostly in [-4, 4), sometimes 0, -0, inf or NaN.
double valueFor(DType t, int var, int64_t i) {
  const uint64_t h = mix(static_cast<uint64_t>(var) * 1000003u + static_cast<uint64_t>(i) + 17);
  if (t == DType::Bool) return static_cast<double>(h & 1);
  if (ir::isInteger(t)) return static_cast<double>(static_cast<int>(h % 101) - 50);
  switch (h % 97) {
    case 0:
      return 0.0;
    case 1:
      return -0.0;
    case 2:
      return INFINITY;
    case 3:
      return NAN;
    default:
      return (static_cast<double>(h >> 11) / 9007199254740992.0 - 0.5) * 8;
  }
}

void store(DType t, double x, void* p) {
  x = ir::ref::roundTo(t, x);
  switch (t) {
    case DType::F64:
      std::memcpy(p, &x, 8);
      break;
    case DType::F32: {
      const float f = static_cast<float>(x);
      std::memcpy(p, &f, 4);
      break;
    }
    case DType::F16: {
      const half_t h = toHalf(static_cast<float>(x));
      std::memcpy(p, &h, 2);
      break;
    }
    case DType::BF16: {
      const bfloat16_t h = toBfloat16(static_cast<float>(x));
      std::memcpy(p, &h, 2);
      break;
    }
    case DType::I32: {
      const int32_t v = static_cast<int32_t>(x);
      std::memcpy(p, &v, 4);
      break;
    }
    case DType::I64: {
      const int64_t v = static_cast<int64_t>(x);
      std::memcpy(p, &v, 8);
      break;
    }
    default: {
      const uint8_t v = x != 0;
      std::memcpy(p, &v, 1);
      break;
    }
  }
}

// Equal bits, or both NaN (a NaN's sign and payload are not part of the contract).
bool sameElement(DType t, const unsigned char* a, const unsigned char* b) {
  const int n = ir::dtypeBytes(t);
  if (std::memcmp(a, b, static_cast<size_t>(n)) == 0) return true;
  switch (t) {
    case DType::F64: {
      double x, y;
      std::memcpy(&x, a, 8);
      std::memcpy(&y, b, 8);
      return x != x && y != y;
    }
    case DType::F32: {
      float x, y;
      std::memcpy(&x, a, 4);
      std::memcpy(&y, b, 4);
      return x != x && y != y;
    }
    case DType::F16: {
      half_t x, y;
      std::memcpy(&x, a, 2);
      std::memcpy(&y, b, 2);
      return std::isnan(toFloat(x)) && std::isnan(toFloat(y));
    }
    case DType::BF16: {
      bfloat16_t x, y;
      std::memcpy(&x, a, 2);
      std::memcpy(&y, b, 2);
      return std::isnan(toFloat(x)) && std::isnan(toFloat(y));
    }
    default:
      return false;
  }
}

// One statement list run by the VM and by the JIT over logical [begin, begin + n) on storage
// starting at base = begin - 3, from identical inputs; every tensor and scalar result compared.
// Temporaries the statements assign are bound only when `bindTemps` (the optional store).
void compareWithVm(const Program& p, const std::vector<int32_t>& stmts, const jit::CpuJitKernel& jk,
                   const PointwiseKernel& vm, int64_t n, bool bindTemps) {
  const int64_t begin = 1000 + n % 5, base = begin - 3, stored = n + 6;
  std::vector<bool> assigned(p.vars.size(), false);
  for (int32_t s : stmts) assigned[static_cast<size_t>(p.stmts[static_cast<size_t>(s)].var)] = true;
  std::vector<std::vector<unsigned char>> mem[2];
  Bindings b[2];
  for (int k = 0; k < 2; ++k) {
    mem[k].resize(p.vars.size());
    b[k].tensors.resize(p.vars.size());
    b[k].scalars.resize(p.vars.size());
    b[k].rank = 1;
    b[k].nranks = 3;
  }
  for (size_t v = 0; v < p.vars.size(); ++v) {
    const ir::Var& var = p.vars[v];
    if (var.isScalar()) {
      const double x = var.dtype == DType::Bool   ? 1
                       : ir::isInteger(var.dtype) ? 3 + static_cast<double>(v)
                                                  : 0.3;
      b[0].scalars[v] = b[1].scalars[v] = x;
      continue;
    }
    if (var.kind == ir::VarKind::Temp && assigned[v] && !bindTemps) continue;
    const size_t eb = static_cast<size_t>(ir::dtypeBytes(var.dtype));
    for (int k = 0; k < 2; ++k) {
      mem[k][v].resize(static_cast<size_t>(stored) * eb);
      for (int64_t i = 0; i < stored; ++i)
        store(var.dtype, valueFor(var.dtype, static_cast<int>(v), base + i),
              mem[k][v].data() + static_cast<size_t>(i) * eb);
      b[k].tensors[v] = {mem[k][v].data(), base};
    }
  }
  std::vector<double> sv = b[0].scalars, sj = b[1].scalars;
  vm.runScalars(b[0], &sv);
  jk.runScalars(b[1], &sj);
  vm.run(begin, begin + n, b[0]);
  jk.run(begin, begin + n, b[1]);
  ASSERT_EQ(sv.size(), sj.size());
  for (size_t v = 0; v < sv.size(); ++v)
    EXPECT_TRUE(sv[v] == sj[v] || (sv[v] != sv[v] && sj[v] != sj[v]))
        << "scalar " << p.vars[v].name << ": VM " << sv[v] << ", JIT " << sj[v];
  for (size_t v = 0; v < p.vars.size(); ++v) {
    const size_t eb = static_cast<size_t>(ir::dtypeBytes(p.vars[v].dtype));
    int bad = 0;
    for (int64_t i = 0; i < stored && !mem[0][v].empty() && bad < 3; ++i) {
      const size_t off = static_cast<size_t>(i) * eb;
      if (!sameElement(p.vars[v].dtype, mem[0][v].data() + off, mem[1][v].data() + off)) {
        ++bad;
        double x = 0, y = 0;
        if (p.vars[v].dtype == DType::F32) {
          float f, g;
          std::memcpy(&f, mem[0][v].data() + off, 4);
          std::memcpy(&g, mem[1][v].data() + off, 4);
          x = f, y = g;
        }
        ADD_FAILURE() << p.vars[v].name << "[" << base + i << "] differs (n = " << n << ", f32: VM " << x
                      << ", JIT " << y << ")";
      }
    }
  }
}

// Compiles stmts both ways and compares at every count, temporaries bound and not.
void checkStatements(const Program& p, const std::vector<int32_t>& stmts, const std::string& what) {
  SCOPED_TRACE(what);
  PointwiseKernel vm;
  jit::CpuJitKernel jk(options());
  std::string err;
  ASSERT_TRUE(vm.compile(p, stmts, &err)) << err;
  ASSERT_TRUE(jk.compile(p, stmts, &err)) << err;
  for (int64_t n : kCounts)
    for (bool temps : {true, false}) compareWithVm(p, stmts, jk, vm, n, temps);
}

TEST(Jit, StockProgramsMatchTheVmBitwise) {
  int steps = 0;
  for (const std::string& path : ir::test::corpus("programs")) {
    const Program checked = compileText(ir::test::readFile(path));
    Schedule s;
    std::string err;
    ASSERT_TRUE(lower(checked, passes::defaultPipeline(), &s, nullptr, &err)) << path << ": " << err;
    for (size_t i = 0; i < s.steps.size(); ++i) {
      const Step& st = s.steps[i];
      if (st.kind != StepKind::Pointwise && st.kind != StepKind::Fused) continue;
      // From the statements (a hook's `v = all_gather(X)` stores X at v's indices).
      checkStatements(s.program, st.stmts, path + " step " + std::to_string(i));
      ++steps;
    }
  }
  EXPECT_GT(steps, 0);
  std::printf("%d steps compared\n", steps);
}

// Every pointwise op on each type, one statement per op, in one program (one compile).
TEST(Jit, EveryOpOnEveryDtype) {
  for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I32, DType::I64}) {
    const std::string T = ir::dtypeName(t);
    std::string src = "program ops\n  in x : " + T + "[N] local\n  in y : " + T + "[N] local\n" +
                      "  in c : bool[N] local\n  scalar k : i32, a : " + T + ", p : f32, seed : i64\n";
    std::vector<std::string> exprs = {"x + y",
                                      "x - y",
                                      "x * y",
                                      "x / y",
                                      "-x",
                                      "abs(x)",
                                      "min(x, y)",
                                      "max(x, y)",
                                      "x ^ 3",
                                      "select(c, x, y)",
                                      "x * a + " + T + "(k) * 0",
                                      "select(x < y && c || !(x >= y), x, y)",
                                      "a / 2 + x"};
    std::vector<std::string> bools = {"x < y",  "x <= y",     "x > y",   "x >= y",        "x == y",
                                      "x != y", "c && x < y", "c || !c", "!(x == y) != c"};
    if (ir::isFloat(t)) {
      for (const char* e : {"sqrt(x)", "rsqrt(x)", "exp(x)", "log(x)", "x ^ y", "x ^ k", "pow(x, 2)",
                            "dropout(x, p, seed)", "dropout(x * a, 0.5, 7)", "select(isfinite(x / y), x, y)"})
        exprs.push_back(e);
      bools.push_back("isfinite(x * y)");
    } else {
      exprs.push_back("x ^ y");
    }
    std::string body;
    int i = 0;
    for (const std::string& e : exprs) {
      src += "  out o" + std::to_string(i) + " : " + T + "[N] local\n";
      body += "  o" + std::to_string(i++) + " = " + e + "\n";
    }
    for (const std::string& e : bools) {
      src += "  out o" + std::to_string(i) + " : bool[N] local\n";
      body += "  o" + std::to_string(i++) + " = " + e + "\n";
    }
    const Program p = compileText(src + body);
    checkStatements(p, allStmts(p), "ops on " + T);
  }
}

TEST(Jit, CastsBetweenEveryDtype) {
  const DType all[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I32, DType::I64, DType::Bool};
  std::string decl = "program casts\n", body;
  for (DType from : all)
    decl += std::string("  in x") + ir::dtypeName(from) + " : " + ir::dtypeName(from) + "[N] local\n";
  int i = 0;
  for (DType from : all)
    for (DType to : all) {
      decl += "  out z" + std::to_string(i) + " : " + ir::dtypeName(to) + "[N] local\n";
      // x * 1000: values past the f16 range and the i32 saturation points of a float.
      const std::string x = std::string("x") + ir::dtypeName(from);
      const std::string arg = ir::isFloat(from) ? x + " * 1000000000" : x;
      body += "  z" + std::to_string(i++) + " = " + ir::dtypeName(to) + "(" + arg + ")\n";
    }
  const Program p = compileText(decl + body);
  checkStatements(p, allStmts(p), "casts");
}

TEST(Jit, TemporariesScalarResultsAndRank) {
  const Program p = compileText(
      "program t\n  in x : f32[N] local\n  inout w : f32[N] local\n  out h : f16[N] local\n"
      "  out r : f32 local\n  out q : i32 local\n  scalar a : f32, k : i32\n"
      "  s = a * 2 + f32(rank) * f32(nranks)\n  r = s / 3\n  q = k * nranks - rank\n"
      "  t = x * s + w\n  u = t * t\n  w = t - u * r\n  h = f16(u + w)\n");
  checkStatements(p, allStmts(p), "temporaries");
}

TEST(Jit, ExactlyAliasedBindingsMatchTheVm) {
  // x and w bound to one buffer: the JIT must take its non-restrict loop.
  const Program p = compileText(
      "program t\n  in x : f32[N] local\n  inout w : f32[N] local\n  scalar a : f32\n  w = w * a + x * x\n");
  PointwiseKernel vm;
  jit::CpuJitKernel jk(options());
  std::string err;
  ASSERT_TRUE(vm.compile(p, allStmts(p), &err)) << err;
  ASSERT_TRUE(jk.compile(p, allStmts(p), &err)) << err;
  for (int64_t n : kCounts) {
    std::vector<float> m0(static_cast<size_t>(n) + 1), m1;
    for (size_t i = 0; i < m0.size(); ++i)
      m0[i] = static_cast<float>(valueFor(DType::F32, 0, static_cast<int64_t>(i)));
    m1 = m0;
    Bindings b0, b1;
    b0.tensors = {{m0.data(), 0}, {m0.data(), 0}, {}};
    b1.tensors = {{m1.data(), 0}, {m1.data(), 0}, {}};
    b0.scalars = b1.scalars = {0, 0, 0.5};
    vm.run(0, n, b0);
    jk.run(0, n, b1);
    EXPECT_EQ(0, std::memcmp(m0.data(), m1.data(), m0.size() * 4)) << "n = " << n;
  }
}

TEST(Jit, RejectsWhatTheVmRejects) {
  const Program p = compileText(
      "program t\n  in x : f32[N] local\n  out y : f32[N] replicated\n  out s : f32 local\n"
      "  y = allreduce(sum, x)\n  s = sum(x)\n");
  jit::CpuJitKernel jk(options());
  std::string err;
  EXPECT_FALSE(jk.compile(p, {0}, &err));
  EXPECT_NE(err.find("collective"), std::string::npos) << err;
  EXPECT_FALSE(jk.compile(p, {1}, &err));
  EXPECT_NE(err.find("whole tensor"), std::string::npos) << err;
  EXPECT_FALSE(jk.ready());
}

const char* kSmall = "program t\n  in x : f32[N] local\n  out y : f32[N] local\n  y = x * 2 + 1\n";

TEST(Jit, SecondCompileIsACacheHit) {
  const Program p = compileText(kSmall);
  const std::string dir = cacheDir("hit", true);
  std::string err;
  jit::CpuJitKernel first(options(dir)), second(options(dir));
  ASSERT_TRUE(first.compile(p, {0}, &err)) << err;
  EXPECT_FALSE(first.cacheHit());
  ASSERT_TRUE(second.compile(p, {0}, &err)) << err;
  EXPECT_TRUE(second.cacheHit());
  EXPECT_EQ(first.library(), second.library());
  // On disk only (not loaded in this process): another directory holding just the .so.
  const std::string other = cacheDir("hit-disk", true);
  ASSERT_TRUE(fs::create_directories(other));
  fs::permissions(other, fs::perms::owner_all);
  const fs::path so = fs::path(other) / fs::path(first.library()).filename();
  fs::copy_file(first.library(), so);
  jit::CpuJitKernel third(options(other));
  ASSERT_TRUE(third.compile(p, {0}, &err)) << err;
  EXPECT_TRUE(third.cacheHit());
  EXPECT_FALSE(fs::exists(fs::path(other) / so.stem().concat(".cc"))) << "the compiler ran";
  std::printf("jit compile: first %.3f s, cached (process) %.6f s, cached (disk) %.6f s\n",
              first.compileSeconds(), second.compileSeconds(), third.compileSeconds());
}

TEST(Jit, MissingOrFailingCompilerIsAClearError) {
  const Program p = compileText(kSmall);
  std::string err;
  jit::JitOptions o = options(cacheDir("nocc", true));
  o.compiler = "/nonexistent/c++";
  jit::CpuJitKernel none(o);
  EXPECT_FALSE(none.compile(p, {0}, &err));
  EXPECT_NE(err.find("cannot run the compiler '/nonexistent/c++'"), std::string::npos) << err;
  EXPECT_FALSE(none.ready());
  o.compiler = "false";  // starts, fails
  jit::CpuJitKernel failing(o);
  EXPECT_FALSE(failing.compile(p, {0}, &err));
  EXPECT_NE(err.find("compiler failed (exit status 1)"), std::string::npos) << err;
}

TEST(Jit, RefusesACacheDirectoryOthersCanWrite) {
  const Program p = compileText(kSmall);
  const std::string dir = cacheDir("open", true);
  ASSERT_TRUE(fs::create_directories(dir));
  ASSERT_EQ(0, chmod(dir.c_str(), 0777));
  jit::CpuJitKernel jk(options(dir));
  std::string err;
  EXPECT_FALSE(jk.compile(p, {0}, &err));
  EXPECT_NE(err.find("writable by group or others"), std::string::npos) << err;
  jit::CpuJitKernel rel(options("relative/dir"));
  EXPECT_FALSE(rel.compile(p, {0}, &err));
  EXPECT_NE(err.find("not an absolute path"), std::string::npos) << err;
}

TEST(Jit, ConcurrentCompilesOfOneKernel) {
  const Program p = compileText(
      "program t\n  in x : f32[N] local\n  out y : f32[N] local\n  scalar a : f32\n  y = x * a - 3\n");
  const std::string dir = cacheDir("concurrent", true);
  jit::CpuJitKernel k[4] = {jit::CpuJitKernel(options(dir)), jit::CpuJitKernel(options(dir)),
                            jit::CpuJitKernel(options(dir)), jit::CpuJitKernel(options(dir))};
  std::string errs[4];
  bool ok[4] = {};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { ok[t] = k[t].compile(p, {0}, &errs[t]); });
  for (auto& th : threads) th.join();
  int compiled = 0;
  for (int t = 0; t < 4; ++t) {
    ASSERT_TRUE(ok[t]) << errs[t];
    compiled += !k[t].cacheHit();
    EXPECT_EQ(k[0].library(), k[t].library());
  }
  EXPECT_EQ(compiled, 1);  // the others waited for it and share the library
  int leftovers = 0;
  for (const auto& e : fs::directory_iterator(dir))
    leftovers += e.path().string().find(".tmp.") != std::string::npos;
  EXPECT_EQ(leftovers, 0);
  std::vector<float> x(100, 2.0f), y(100, -1.0f);
  Bindings b;
  b.tensors = {{x.data(), 0}, {y.data(), 0}, {}};
  b.scalars = {0, 0, 1.5};
  k[3].run(0, 100, b);
  EXPECT_EQ(y[99], 0.0f);  // 2 * 1.5 - 3
}

// The ring entry (cpu_emit.h RingFusion) of a Fused step: the received partial + the own chunk,
// divided by the avg divisor, then the step, with the forwarded var's values also in the slot -
// bit for bit what the unfused path gives (reduceN's a + b and divide()'s / d in the element
// type into a reduced chunk, run(), copy of the forwarded chunk). Every stock program's Fused
// step with one gathered result, f32 and f64.
template <class T>
void checkRingEntry(const Program& p, const Step& st, const jit::CpuJitKernel& jk, int64_t n, int divisor) {
  const int64_t begin = 2000 + n % 7, stored = n;
  const int rv = st.reduced, fv = st.gather[0];
  std::vector<std::vector<unsigned char>> mem[2];
  Bindings b[2];
  for (int k = 0; k < 2; ++k) {
    mem[k].resize(p.vars.size());
    b[k].tensors.resize(p.vars.size());
    b[k].scalars.resize(p.vars.size());
    b[k].rank = 0;
    b[k].nranks = 2;
  }
  for (size_t v = 0; v < p.vars.size(); ++v) {
    const ir::Var& var = p.vars[v];
    if (var.isScalar()) {
      b[0].scalars[v] = b[1].scalars[v] = ir::isInteger(var.dtype) ? 3 + static_cast<double>(v) : 0.3;
      continue;
    }
    const size_t eb = static_cast<size_t>(ir::dtypeBytes(var.dtype));
    for (int k = 0; k < 2; ++k) {
      mem[k][v].resize(static_cast<size_t>(stored + 1) * eb);
      for (int64_t i = 0; i < stored; ++i)
        store(var.dtype, valueFor(var.dtype, static_cast<int>(v), begin + i),
              mem[k][v].data() + static_cast<size_t>(i) * eb);
      b[k].tensors[v] = {mem[k][v].data(), begin};
    }
  }
  std::vector<T> received(static_cast<size_t>(n) + 1), own(received.size()), reduced(received.size());
  std::vector<T> slot[2] = {std::vector<T>(received.size()), std::vector<T>(received.size())};
  for (int64_t i = 0; i < n; ++i) {
    received[size_t(i)] = static_cast<T>(valueFor(p.vars[size_t(rv)].dtype, 90, i));
    own[size_t(i)] = static_cast<T>(valueFor(p.vars[size_t(rv)].dtype, 91, i));
    const T sum = received[size_t(i)] + own[size_t(i)];
    reduced[size_t(i)] = divisor > 1 ? T(sum / T(divisor)) : sum;
  }
  const std::vector<T> receivedBefore = received, ownBefore = own;
  // Unfused: the reduced chunk bound, the step run, the forwarded chunk copied into the slot.
  b[0].tensors[size_t(rv)] = {reduced.data(), begin};
  jk.run(begin, begin + n, b[0]);
  if (n > 0) std::memcpy(slot[0].data(), b[0].tensors[size_t(fv)].data, size_t(n) * sizeof(T));
  // Ring: the received partial bound; own and the slot passed.
  b[1].tensors[size_t(rv)] = {received.data(), begin};
  jk.runRing(begin, begin + n, b[1], own.data(), slot[1].data(), divisor);
  for (size_t v = 0; v < p.vars.size(); ++v) {
    if (mem[0][v].empty() || int(v) == rv) continue;
    const size_t eb = static_cast<size_t>(ir::dtypeBytes(p.vars[v].dtype));
    for (int64_t i = 0; i < n; ++i)
      if (!sameElement(p.vars[v].dtype, mem[0][v].data() + size_t(i) * eb,
                       mem[1][v].data() + size_t(i) * eb)) {
        ADD_FAILURE() << p.vars[v].name << "[" << i << "] differs (n = " << n << ", divisor " << divisor
                      << ")";
        break;
      }
  }
  for (int64_t i = 0; i < n; ++i)
    if (!sameElement(p.vars[size_t(fv)].dtype, reinterpret_cast<unsigned char*>(&slot[0][size_t(i)]),
                     reinterpret_cast<unsigned char*>(&slot[1][size_t(i)]))) {
      ADD_FAILURE() << "slot[" << i << "] differs (n = " << n << ", divisor " << divisor << ")";
      break;
    }
  const size_t inputBytes = received.size() * sizeof(T);  // memcmp: the inputs hold NaNs
  EXPECT_TRUE(std::memcmp(received.data(), receivedBefore.data(), inputBytes) == 0 &&
              std::memcmp(own.data(), ownBefore.data(), inputBytes) == 0)
      << "the ring entry wrote an input";
}

TEST(Jit, RingEntryEqualsReduceRunAndCopy) {
  int rings = 0;
  for (const std::string& path : ir::test::corpus("programs")) {
    for (const char* dtype : {"f32", "f64"}) {
      std::string text = ir::test::readFile(path);
      if (std::string(dtype) == "f64") {  // the same program in float64
        for (size_t pos = 0; (pos = text.find("f32", pos)) != std::string::npos;) text.replace(pos, 3, "f64");
      }
      std::string errors;
      auto checked = ir::test::compile(text, &errors);
      if (!checked) continue;  // f64 variants a program's checker refuses are not this test's concern
      Schedule s;
      std::string err;
      ASSERT_TRUE(lower(*checked, passes::defaultPipeline(), &s, nullptr, &err)) << path << ": " << err;
      for (const Step& st : s.steps) {
        if (st.kind != StepKind::Fused || st.gather.size() != 1) continue;
        jit::CpuJitKernel jk(options());
        ASSERT_TRUE(jk.compile(st.form, jit::RingFusion{st.reduced, st.gather[0]}, &err)) << err;
        if (!jk.hasRing()) continue;
        SCOPED_TRACE(path + " (" + dtype + ")");
        for (int64_t n : kCounts)
          for (int divisor : {1, 3}) {
            if (std::string(dtype) == "f32")
              checkRingEntry<float>(s.program, st, jk, n, divisor);
            else
              checkRingEntry<double>(s.program, st, jk, n, divisor);
          }
        ++rings;
      }
    }
  }
  std::printf("%d ring entries compared\n", rings);
  EXPECT_GE(rings, 4) << "adam, adamw and sgd in f32 and f64 at least";
}

TEST(Jit, RingEntryOnlyWhereItIsExact) {
  // f16 reduced values (reduceN rounds each sum to half), a reduced var the step stores, and a
  // forwarded var the step never stores get no ring entry; the plain entry still works.
  const char* kHalf =
      "program h\n  in g : f16[N] local\n  inout w : f16[N] replicated\n  w = w - allreduce(sum, g)\n";
  const char* kNotStored =
      "program h\n  in g : f32[N] local\n  inout w : f32[N] replicated\n  inout m : f32[N] sliced\n"
      "  m = m + allreduce(sum, g)\n";
  for (const char* src : {kHalf, kNotStored}) {
    const Program p = compileText(src);
    Schedule s;
    std::string err;
    ASSERT_TRUE(lower(p, passes::defaultPipeline(), &s, nullptr, &err)) << err;
    for (const Step& st : s.steps) {
      if (st.kind != StepKind::Fused) continue;
      jit::CpuJitKernel jk(options());
      int32_t forward = st.gather.empty() ? -1 : st.gather[0];
      for (size_t v = 0; v < p.vars.size() && forward < 0; ++v)
        if (p.vars[v].name == "w") forward = int32_t(v);
      ASSERT_TRUE(jk.compile(st.form, jit::RingFusion{st.reduced, forward}, &err)) << err;
      EXPECT_FALSE(jk.hasRing()) << src;
      EXPECT_TRUE(jk.ready());
    }
  }
}

}  // namespace
}  // namespace fccl::fusion
