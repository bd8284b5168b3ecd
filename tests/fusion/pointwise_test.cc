// pointwise_test.cc - the CPU tile VM (fusion/exec/pointwise.h) against the float64
// reference interpreter: every op x dtype, tile-boundary counts, sliced bindings, tile-local vs
// buffered temporaries, dropout's independence from tiling, NaN/inf and integer semantics.
#include "fusion/exec/pointwise.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "fusion/ref/interpreter.h"
#include "fusion/ref/round.h"
#include "src/base/half.h"
#include "test_util.h"

namespace fccl::fusion {
namespace {

using ir::DType;
using ir::Program;

constexpr int kT = PointwiseKernel::kTileElems;
const int64_t kCounts[] = {0, 1, kT - 1, kT, kT + 1, 3 * kT + 7};

// One tensor in its storage form (dtype bytes), holding logical elements [base, base + size).
struct Buffer {
  DType dtype = DType::F32;
  int64_t base = 0;
  std::vector<unsigned char> bytes;

  Buffer(DType t, int64_t b, int64_t n)
      : dtype(t),
        base(b),
        bytes(static_cast<size_t>(std::max<int64_t>(n, 1) * ir::dtypeBytes(t))) {}  // never null
  void* at(int64_t i) { return bytes.data() + (i - base) * ir::dtypeBytes(dtype); }
  void set(int64_t i, double x) {
    x = ir::ref::roundTo(dtype, x);
    void* p = at(i);
    switch (dtype) {
      case DType::F64:
        std::memcpy(p, &x, 8);
        break;
      case DType::F32: {
        float f = static_cast<float>(x);
        std::memcpy(p, &f, 4);
        break;
      }
      case DType::F16: {
        half_t h = toHalf(static_cast<float>(x));
        std::memcpy(p, &h, 2);
        break;
      }
      case DType::BF16: {
        bfloat16_t h = toBfloat16(static_cast<float>(x));
        std::memcpy(p, &h, 2);
        break;
      }
      case DType::I32: {
        int32_t v = static_cast<int32_t>(x);
        std::memcpy(p, &v, 4);
        break;
      }
      case DType::I64: {  // the reference saturates to 2^63 as a double
        int64_t v = x >= 0x1p63 ? INT64_MAX : static_cast<int64_t>(x);
        std::memcpy(p, &v, 8);
        break;
      }
      default: {
        uint8_t v = x != 0;
        std::memcpy(p, &v, 1);
        break;
      }
    }
  }
  double get(int64_t i) {
    const void* p = at(i);
    switch (dtype) {
      case DType::F64: {
        double v;
        std::memcpy(&v, p, 8);
        return v;
      }
      case DType::F32: {
        float v;
        std::memcpy(&v, p, 4);
        return v;
      }
      case DType::F16: {
        half_t v;
        std::memcpy(&v, p, 2);
        return toFloat(v);
      }
      case DType::BF16: {
        bfloat16_t v;
        std::memcpy(&v, p, 2);
        return toFloat(v);
      }
      case DType::I32: {
        int32_t v;
        std::memcpy(&v, p, 4);
        return v;
      }
      case DType::I64: {
        int64_t v;
        std::memcpy(&v, p, 8);
        return static_cast<double>(v);
      }
      default: {
        uint8_t v;
        std::memcpy(&v, p, 1);
        return v;
      }
    }
  }
};

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

// A program run both ways on one rank: inputs from `gen(var name, i)`, every tensor stored over
// [0, n) (base 0) unless `base` says otherwise.
struct Harness {
  Program p;
  int64_t n = 0;
  std::map<std::string, std::vector<double>> in;  // logical inputs per tensor
  std::map<std::string, double> scalars;
  std::map<std::string, Buffer> bufs;
  Bindings b;

  Harness(const std::string& src, int64_t count) : p(compileText(src)), n(count) {
    b.tensors.resize(p.vars.size());
    b.scalars.resize(p.vars.size());
  }
  void input(const std::string& name, std::vector<double> v) { in[name] = std::move(v); }
  void scalar(const std::string& name, double v) {
    scalars[name] = v;
    b.scalars[static_cast<size_t>(p.findVar(name))] = v;
  }
  // Storage for every declared tensor over [lo, hi) (and any named temporaries).
  void bind(int64_t lo, int64_t hi, const std::vector<std::string>& temps = {}) {
    bufs.clear();
    for (size_t v = 0; v < p.vars.size(); ++v) {
      const ir::Var& var = p.vars[v];
      const bool temp = std::find(temps.begin(), temps.end(), var.name) != temps.end();
      if (var.isScalar() || (!var.isTensorDecl() && !temp)) {
        b.tensors[v] = {};
        continue;
      }
      auto [it, ok] = bufs.emplace(var.name, Buffer(var.dtype, lo, hi - lo));
      auto src = in.find(var.name);
      for (int64_t i = lo; i < hi; ++i)
        it->second.set(i, src != in.end() ? src->second[static_cast<size_t>(i)] : 0);
      b.tensors[v] = {it->second.at(lo), lo};
    }
  }
  ir::ref::Outputs reference() {
    ir::ref::Inputs ri;
    ri.nranks = 1;
    ri.symbols["N"] = n;
    ri.scalars = scalars;
    ri.tensors.resize(1);
    for (auto& [name, v] : in) ri.tensors[0][name] = v;
    ir::ref::Outputs out;
    std::string err;
    EXPECT_TRUE(ir::ref::run(p, ri, &out, &err)) << err;
    return out;
  }
};

// Distance in units of the last place of `t` at the reference value (0 when equal, both NaN,
// or equal infinities).
double ulps(DType t, double got, double want) {
  if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want) ? 0 : 1e9;
  if (got == want) return 0;
  if (std::isinf(got) || std::isinf(want)) return 1e9;
  if (!ir::isFloat(t)) return 1e9;
  const int p = t == DType::F64 ? 53 : t == DType::F32 ? 24 : t == DType::F16 ? 11 : 8;
  const int emin = t == DType::F64 ? -1022 : t == DType::F16 ? -14 : -126;
  int e = 0;
  std::frexp(want, &e);
  const double ulp = std::ldexp(1.0, std::max(e - 1, emin) - (p - 1));
  return std::fabs(got - want) / ulp;
}

std::vector<double> floatValues(int64_t n, uint32_t seed) {
  std::vector<double> v(static_cast<size_t>(n));
  uint32_t s = seed;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = (static_cast<double>(s >> 8) / (1 << 24) - 0.5) * 8;  // [-4, 4)
  }
  return v;
}
std::vector<double> intValues(int64_t n, uint32_t seed, int range) {
  std::vector<double> v(static_cast<size_t>(n));
  uint32_t s = seed;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<int>((s >> 8) % static_cast<uint32_t>(2 * range + 1)) - range;
  }
  return v;
}

struct OpCase {
  const char* expr;  // over x, y (same dtype), k (i32 scalar); result z
  bool floats, ints, boolResult;
  double ulpF32, ulpSmall;  // allowed distance: f32 results; f16/bf16 results (f64: exact)
  bool positive = false;    // x, y > 0 (sqrt, log, pow)
};
const OpCase kOps[] = {
    {"x + y", true, true, false, 0, 0},
    {"x - y", true, true, false, 0, 0},
    {"x * y", true, true, false, 0, 0},
    {"x / y", true, true, false, 0, 0},
    {"-x", true, true, false, 0, 0},
    {"abs(x)", true, true, false, 0, 0},
    {"min(x, y)", true, true, false, 0, 0},
    {"max(x, y)", true, true, false, 0, 0},
    {"sqrt(x)", true, false, false, 0, 0, true},
    {"rsqrt(x)", true, false, false, 1, 1, true},
    {"exp(x)", true, false, false, 1, 1},
    {"log(x)", true, false, false, 1, 1, true},
    {"x ^ y", true, false, false, 1, 1, true},
    {"x ^ k", true, false, false, 1, 1},
    {"x ^ 3", false, true, false, 0, 0},
    {"x < y", true, true, true, 0, 0},
    {"x <= y", true, true, true, 0, 0},
    {"x > y", true, true, true, 0, 0},
    {"x >= y", true, true, true, 0, 0},
    {"x == y", true, true, true, 0, 0},
    {"x != y", true, true, true, 0, 0},
    {"isfinite(x / y)", true, false, true, 0, 0},
    {"select(x < y, x, y * 2)", true, true, false, 0, 0},
    {"!(x < y) && (y > 0 || x == y)", true, true, true, 0, 0},
    {"x * 3 - y / 2 + 1", true, true, false, 4, 1},
    {"select(x < 0, -x, x) + min(x, 0) * 0.25", true, false, false, 2, 1},
};
const DType kNumeric[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I32, DType::I64};

TEST(Pointwise, EveryOpEveryDtypeMatchesReference) {
  for (const OpCase& op : kOps) {
    for (DType t : kNumeric) {
      if (ir::isFloat(t) ? !op.floats : !op.ints) continue;
      const std::string tn = ir::dtypeName(t);
      const std::string zt = op.boolResult ? "bool" : tn;
      const std::string src = "program t\n  in x : " + tn + "[N] replicated\n  in y : " + tn +
                              "[N] replicated\n  out z : " + zt +
                              "[N] replicated\n  scalar k : i32\n  z = " + op.expr + "\n";
      for (int64_t n : kCounts) {
        SCOPED_TRACE(std::string(op.expr) + " on " + tn + ", n = " + std::to_string(n));
        Harness h(src, n);
        std::vector<double> x = ir::isFloat(t) ? floatValues(n, 1) : intValues(n, 1, 50);
        std::vector<double> y = ir::isFloat(t) ? floatValues(n, 2) : intValues(n, 2, 9);
        if (op.positive)
          for (auto* v : {&x, &y})
            for (double& e : *v) e = std::fabs(e) + 0.125;
        if (n > 3 && ir::isFloat(t)) {  // exact ties and zeros
          y[0] = x[0];
          x[1] = 0;
          y[2] = 0;
        }
        h.input("x", x);
        h.input("y", y);
        h.scalar("k", 3);
        h.bind(0, n);
        PointwiseKernel k;
        std::string err;
        ASSERT_TRUE(k.compile(h.p, allStmts(h.p), &err)) << err;
        ASSERT_TRUE(k.checkBindings(h.b, &err)) << err;
        k.run(0, n, h.b);
        const auto want = h.reference().tensors[0]["z"];
        const DType zd = op.boolResult ? DType::Bool : t;
        const double tol = zd == DType::F32                          ? op.ulpF32
                           : (zd == DType::F16 || zd == DType::BF16) ? op.ulpSmall
                                                                     : 0;
        int bad = 0;
        for (int64_t i = 0; i < n && bad < 5; ++i) {
          const double got = h.bufs.at("z").get(i);
          if (ulps(zd, got, want[static_cast<size_t>(i)]) > tol) {
            ++bad;
            ADD_FAILURE() << "z[" << i << "] = " << got << ", reference " << want[static_cast<size_t>(i)]
                          << " (x " << x[static_cast<size_t>(i)] << ", y " << y[static_cast<size_t>(i)]
                          << ")";
          }
        }
      }
    }
  }
}

TEST(Pointwise, CastsBetweenEveryDtype) {
  const DType all[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I32, DType::I64, DType::Bool};
  const double vals[] = {0,         -0.0,     1,         -1,   2.5,   -2.5, 3.5,          0.1,
                         1e-8,      65519.0,  65520.0,   1e10, -1e10, 3e9,  2147483647.0, -2147483648.0,
                         1.0000001, INFINITY, -INFINITY, NAN};
  const int64_t n = std::size(vals);
  for (DType from : all) {
    for (DType to : all) {
      if (from == DType::Bool && to == DType::Bool) continue;
      SCOPED_TRACE(std::string(ir::dtypeName(from)) + " -> " + ir::dtypeName(to));
      const std::string src = std::string("program t\n  in x : ") + ir::dtypeName(from) +
                              "[N] replicated\n  out z : " + ir::dtypeName(to) +
                              "[N] replicated\n  z = " + ir::dtypeName(to) + "(x)\n";
      Harness h(src, n);
      std::vector<double> x(vals, vals + n);
      for (double& v : x) v = ir::ref::roundTo(from, v);  // what the input holds
      h.input("x", x);
      h.bind(0, n);
      PointwiseKernel k;
      std::string err;
      ASSERT_TRUE(k.compile(h.p, allStmts(h.p), &err)) << err;
      k.run(0, n, h.b);
      const auto want = h.reference().tensors[0]["z"];
      for (int64_t i = 0; i < n; ++i)
        EXPECT_EQ(ulps(to, h.bufs.at("z").get(i), want[static_cast<size_t>(i)]), 0)
            << "x = " << x[static_cast<size_t>(i)] << ": got " << h.bufs.at("z").get(i) << ", want "
            << want[static_cast<size_t>(i)];
    }
  }
}

TEST(Pointwise, IntegerDivisionAndCastSemantics) {
  Harness h(
      "program t\n  in a : i32[N] replicated\n  in b : i32[N] replicated\n  in f : f32[N] replicated\n"
      "  out q : i32[N] replicated\n  out c : i32[N] replicated\n  out e : i64[N] replicated\n"
      "  q = a / b\n  c = i32(f)\n  e = i64(a) ^ i64(b)\n",
      6);
  h.input("a", {7, -7, 7, 5, -1, 2});
  h.input("b", {2, 2, 0, -3, -3, 10});
  h.input("f", {2.7, -2.7, 1e10, -1e10, NAN, -0.5});
  h.bind(0, 6);
  PointwiseKernel k;
  std::string err;
  ASSERT_TRUE(k.compile(h.p, allStmts(h.p), &err)) << err;
  k.run(0, 6, h.b);
  const double q[] = {3, -3, 0, -1, 0, 0};                      // truncating; x/0 = 0
  const double c[] = {2, -2, 2147483647, -2147483648.0, 0, 0};  // truncate, saturate, NaN -> 0
  const double e[] = {49, 49, 1, 0, -1, 1024};                  // 5^-3 -> 0, (-1)^-3 = -1
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(h.bufs.at("q").get(i), q[i]) << i;
    EXPECT_EQ(h.bufs.at("c").get(i), c[i]) << i;
    EXPECT_EQ(h.bufs.at("e").get(i), e[i]) << i;
  }
  const auto ref = h.reference();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(ref.tensors[0].at("q")[static_cast<size_t>(i)], q[i]) << i;
    EXPECT_EQ(ref.tensors[0].at("c")[static_cast<size_t>(i)], c[i]) << i;
    EXPECT_EQ(ref.tensors[0].at("e")[static_cast<size_t>(i)], e[i]) << i;
  }
}

TEST(Pointwise, IsFiniteOnNanAndInf) {
  const double xs[] = {0, -0.0, 1, -1e30, INFINITY, -INFINITY, NAN, -NAN, 1e-40, 3.4e38};
  for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16}) {
    Harness h(std::string("program t\n  in x : ") + ir::dtypeName(t) +
                  "[N] replicated\n  out z : bool[N] replicated\n  out w : " + ir::dtypeName(t) +
                  "[N] replicated\n  z = isfinite(x)\n  w = select(isfinite(x), x, 0)\n",
              std::size(xs));
    h.input("x", std::vector<double>(std::begin(xs), std::end(xs)));
    h.bind(0, std::size(xs));
    PointwiseKernel k;
    std::string err;
    ASSERT_TRUE(k.compile(h.p, allStmts(h.p), &err)) << err;
    k.run(0, std::size(xs), h.b);
    for (size_t i = 0; i < std::size(xs); ++i) {
      const double stored = ir::ref::roundTo(t, xs[i]);  // 3.4e38 is inf in f16
      EXPECT_EQ(h.bufs.at("z").get(static_cast<int64_t>(i)), std::isfinite(stored) ? 1 : 0)
          << ir::dtypeName(t) << " " << xs[i];
      EXPECT_EQ(h.bufs.at("w").get(static_cast<int64_t>(i)), std::isfinite(stored) ? stored : 0);
    }
  }
}

const char* kAdam =
    "program adam\n"
    "  in    gs : f32[N] sliced\n"
    "  inout w  : f32[N] sliced\n"
    "  inout m  : f32[N] sliced\n"
    "  inout v  : f32[N] sliced\n"
    "  scalar lr : f32, beta1 : f32, beta2 : f32, eps : f32, step : i32\n"
    "  m  = beta1 * m + (1 - beta1) * gs\n"
    "  v  = beta2 * v + (1 - beta2) * gs * gs\n"
    "  w  = w - lr * (m / (1 - beta1 ^ step)) / (sqrt(v / (1 - beta2 ^ step)) + eps)\n";

void adamInputs(Harness& h) {
  h.input("gs", floatValues(h.n, 11));
  h.input("w", floatValues(h.n, 12));
  std::vector<double> m = floatValues(h.n, 13), v = floatValues(h.n, 14);
  for (double& x : v) x = x * x;
  h.input("m", m);
  h.input("v", v);
  h.scalar("lr", 1e-3);
  h.scalar("beta1", 0.9);
  h.scalar("beta2", 0.999);
  h.scalar("eps", 1e-8);
  h.scalar("step", 7);
}

TEST(Pointwise, AdamWithinStatedToleranceAtEveryTileBoundary) {
  for (int64_t n : kCounts) {
    SCOPED_TRACE(n);
    Harness h(kAdam, n);
    adamInputs(h);
    h.bind(0, n);
    PointwiseKernel k;
    std::string err;
    ASSERT_TRUE(k.compile(h.p, allStmts(h.p), &err)) << err;
    ASSERT_TRUE(k.checkBindings(h.b, &err)) << err;
    k.run(0, n, h.b);
    // The header's bound: relative 1e-6 of the sum of the magnitudes of each update's terms
    // (cancellation in beta1 * m + (1 - beta1) * gs can make the result itself tiny).
    auto ref = h.reference();
    const double b1 = 0.9f, b2 = 0.999f;
    for (int64_t i = 0; i < n; ++i) {
      const size_t u = static_cast<size_t>(i);
      const double g = static_cast<float>(h.in["gs"][u]);
      const double m0 = static_cast<float>(h.in["m"][u]), w0 = static_cast<float>(h.in["w"][u]);
      const double mRef = ref.tensors[0]["m"][u], vRef = ref.tensors[0]["v"][u],
                   wRef = ref.tensors[0]["w"][u];
      const double scale[] = {std::fabs(b1 * m0) + std::fabs((1 - b1) * g), vRef,
                              std::fabs(w0) + std::fabs(wRef - w0)};
      const double want[] = {mRef, vRef, wRef};
      const char* names[] = {"m", "v", "w"};
      for (int j = 0; j < 3; ++j)
        ASSERT_LE(std::fabs(h.bufs.at(names[j]).get(i) - want[j]), 1e-6 * scale[j])
            << names[j] << "[" << i << "]";
    }
    (void)b2;
  }
}

TEST(Pointwise, F64ProgramsAreBitwiseTheReference) {
  const int64_t n = 3 * kT + 7;
  const std::string src =
      "program adam64\n  in gs : f64[N] sliced\n  inout w : f64[N] sliced\n  inout m : f64[N] sliced\n"
      "  inout v : f64[N] sliced\n  out z : f64[N] sliced\n"
      "  scalar lr : f64, beta1 : f64, beta2 : f64, eps : f64, step : i32\n"
      "  m  = beta1 * m + (1 - beta1) * gs\n  v  = beta2 * v + (1 - beta2) * gs * gs\n"
      "  w  = w - lr * (m / (1 - beta1 ^ step)) / (sqrt(v / (1 - beta2 ^ step)) + eps)\n"
      "  z = exp(-abs(w)) + log(v + 1) * rsqrt(v + 2) ^ 1.5 - min(m, gs)\n";
  Harness h(src, n);
  adamInputs(h);
  h.bind(0, n);
  PointwiseKernel k;
  std::string err;
  ASSERT_TRUE(k.compile(h.p, allStmts(h.p), &err)) << err;
  k.run(0, n, h.b);
  auto ref = h.reference();
  for (const char* name : {"m", "v", "w", "z"})
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(h.bufs.at(name).get(i), ref.tensors[0][name][static_cast<size_t>(i)]) << name << i;
}

TEST(Pointwise, SlicedBindingsWithNonzeroBase) {
  // Bind only [lo, hi) of every tensor (base = lo), as a rank's slice is stored, and run in
  // uneven pieces; the result equals a full run's elements there.
  const int64_t n = 5 * kT + 3, lo = kT + 17, hi = 4 * kT - 5;
  Harness full(kAdam, n);
  adamInputs(full);
  full.bind(0, n);
  PointwiseKernel k;
  std::string err;
  ASSERT_TRUE(k.compile(full.p, allStmts(full.p), &err)) << err;
  k.run(0, n, full.b);
  Harness part(kAdam, n);
  adamInputs(part);
  part.bind(lo, hi);
  for (int64_t a = lo; a < hi;) {
    const int64_t b = std::min(hi, a + 333);
    k.run(a, b, part.b);
    a = b;
  }
  for (const char* name : {"m", "v", "w"})
    for (int64_t i = lo; i < hi; ++i)
      ASSERT_EQ(part.bufs.at(name).get(i), full.bufs.at(name).get(i)) << name << i;
}

TEST(Pointwise, TileLocalAndBufferedTemporaries) {
  const char* src =
      "program t\n  in x : f16[N] replicated\n  out y : f16[N] replicated\n  out z : f32[N] replicated\n"
      "  t = x * 3 + 0.1\n  y = t - x\n  z = f32(t) * 2\n";
  const int64_t n = 2 * kT + 9;
  Harness h(src, n);
  h.input("x", floatValues(n, 5));
  PointwiseKernel k;
  std::string err;
  ASSERT_TRUE(k.compile(h.p, allStmts(h.p), &err)) << err;
  // Tile-local: t is never stored.
  h.bind(0, n);
  ASSERT_TRUE(k.checkBindings(h.b, &err)) << err;
  k.run(0, n, h.b);
  std::vector<double> yLocal, zLocal;
  for (int64_t i = 0; i < n; ++i) {
    yLocal.push_back(h.bufs.at("y").get(i));
    zLocal.push_back(h.bufs.at("z").get(i));
  }
  // Buffered: the same results, and t's buffer holds t rounded to f16.
  h.bind(0, n, {"t"});
  k.run(0, n, h.b);
  auto ref = h.reference();
  for (int64_t i = 0; i < n; ++i) {
    const size_t u = static_cast<size_t>(i);
    EXPECT_EQ(h.bufs.at("y").get(i), yLocal[u]);
    EXPECT_EQ(h.bufs.at("z").get(i), zLocal[u]);
    const double t = ir::ref::roundTo(DType::F16, h.in["x"][u]) * 3 + 0.1;
    EXPECT_LE(ulps(DType::F16, h.bufs.at("t").get(i), ir::ref::roundTo(DType::F16, t)), 1) << i;
    EXPECT_LE(ulps(DType::F16, yLocal[u], ref.tensors[0]["y"][u]), 1) << i;
    EXPECT_LE(ulps(DType::F32, zLocal[u], ref.tensors[0]["z"][u]), 2) << i;
  }
  // A list without t's assignment reads t from its binding (computed by an earlier step).
  std::vector<double> zBuffered;
  for (int64_t i = 0; i < n; ++i) zBuffered.push_back(h.bufs.at("z").get(i));
  PointwiseKernel k2;
  ASSERT_TRUE(k2.compile(h.p, {2}, &err)) << err;
  ASSERT_EQ(k2.tileInstructions(), 2u);  // widen t from f16; * 2 written straight into z
  h.bufs.at("z").set(0, -1);
  k2.run(0, n, h.b);
  for (int64_t i = 0; i < n; ++i) {
    const double t16 = h.bufs.at("t").get(i);
    EXPECT_EQ(h.bufs.at("z").get(i), static_cast<float>(t16) * 2.0f) << i;
  }
}

TEST(Pointwise, TemporaryReadInPlaceSurvivesOverwrite) {
  // t aliases x's storage; x is then overwritten in the same tile before t is read.
  Harness h(
      "program t\n  inout x : f32[N] replicated\n  out z : f32[N] replicated\n"
      "  t = x\n  x = x * 10\n  z = t + x\n",
      kT + 3);
  h.input("x", floatValues(kT + 3, 9));
  h.bind(0, kT + 3);
  PointwiseKernel k;
  std::string err;
  ASSERT_TRUE(k.compile(h.p, allStmts(h.p), &err)) << err;
  k.run(0, kT + 3, h.b);
  for (int64_t i = 0; i < kT + 3; ++i) {
    const float x = static_cast<float>(h.in["x"][static_cast<size_t>(i)]);
    EXPECT_EQ(h.bufs.at("z").get(i), x + x * 10.0f) << i;
  }
}

TEST(Pointwise, DropoutIsIndependentOfTilingAndMatchesReference) {
  for (DType t : {DType::F32, DType::F64, DType::F16, DType::BF16}) {
    const std::string tn = ir::dtypeName(t);
    const int64_t n = 7 * kT + 13;
    Harness h("program t\n  in x : " + tn + "[N] replicated\n  out y : " + tn +
                  "[N] replicated\n  scalar p : f32, seed : i64\n  y = dropout(x * 2, p, seed)\n",
              n);
    h.input("x", floatValues(n, 3));
    h.scalar("p", 0.3);
    h.scalar("seed", -12345);
    h.bind(0, n);
    PointwiseKernel k;
    std::string err;
    ASSERT_TRUE(k.compile(h.p, allStmts(h.p), &err)) << err;
    k.run(0, n, h.b);
    std::vector<double> once;
    int dropped = 0;
    for (int64_t i = 0; i < n; ++i) {
      once.push_back(h.bufs.at("y").get(i));
      dropped += once.back() == 0;
    }
    EXPECT_NEAR(dropped, 0.3 * n, 0.05 * n);
    h.bind(0, n);
    for (int64_t a = 0, step = 1; a < n; step = step * 3 + 2) {  // pieces 1, 5, 17, 53, ...
      const int64_t b = std::min(n, a + step);
      k.run(a, b, h.b);
      a = b;
    }
    auto ref = h.reference();
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(h.bufs.at("y").get(i), once[static_cast<size_t>(i)]) << tn << " " << i;
      ASSERT_LE(ulps(t, once[static_cast<size_t>(i)], ref.tensors[0]["y"][static_cast<size_t>(i)]),
                ir::isFloat(t) && ir::dtypeBytes(t) == 2 ? 1 : 0)
          << tn << " " << i;
    }
  }
}

TEST(Pointwise, ScalarSubexpressionsRankAndScalarResults) {
  Harness h(
      "program t\n  in x : f32[N] local\n  out y : f32[N] local\n  out s : f64 local\n"
      "  scalar a : f32, k : i32\n"
      "  c = a * 2 + f32(k) / f32(nranks)\n  s = f64(c) + f64(rank)\n  y = x * c + f32(rank)\n",
      kT + 1);
  h.input("x", floatValues(kT + 1, 4));
  h.scalar("a", 1.5);
  h.scalar("k", 5);
  h.b.rank = 2;
  h.b.nranks = 4;
  h.bind(0, kT + 1);
  PointwiseKernel k;
  std::string err;
  ASSERT_TRUE(k.compile(h.p, allStmts(h.p), &err)) << err;
  EXPECT_EQ(k.tileInstructions(), 1u);  // (x * c) + rank, fused, into y; the rest is per call
  k.run(0, kT + 1, h.b);
  const float c = 1.5f * 2 + 5.0f / 4.0f;
  for (int64_t i = 0; i < kT + 1; ++i)
    EXPECT_EQ(h.bufs.at("y").get(i), static_cast<float>(h.in["x"][static_cast<size_t>(i)]) * c + 2.0f);
  std::vector<double> scalars = h.b.scalars;
  k.runScalars(h.b, &scalars);
  EXPECT_EQ(scalars[static_cast<size_t>(h.p.findVar("s"))], static_cast<double>(c) + 2);
}

TEST(Pointwise, ScalarFillsTensor) {
  Harness h(
      "program t\n  out y : bf16[N] replicated\n  out b : bool[N] replicated\n  scalar a : f32\n"
      "  y = bf16(a * 3)\n  b = a > 1\n",
      kT + 2);
  h.scalar("a", 1.1);
  h.bind(0, kT + 2);
  PointwiseKernel k;
  std::string err;
  ASSERT_TRUE(k.compile(h.p, allStmts(h.p), &err)) << err;
  k.run(0, kT + 2, h.b);
  auto ref = h.reference();
  for (int64_t i = 0; i < kT + 2; ++i) {
    EXPECT_EQ(h.bufs.at("y").get(i), ref.tensors[0]["y"][static_cast<size_t>(i)]);
    EXPECT_EQ(h.bufs.at("b").get(i), 1);
  }
}

TEST(Pointwise, RejectsCollectivesReductionsAndUncheckedPrograms) {
  Program p = compileText(
      "program t\n  in g : f32[N] local\n  out w : f32[N] local\n  out s : f32 local\n"
      "  w = allreduce(sum, g)\n  s = norm(g)\n  w = w + 1\n");
  PointwiseKernel k;
  std::string err;
  EXPECT_FALSE(k.compile(p, {0}, &err));
  EXPECT_NE(err.find("collective"), std::string::npos) << err;
  EXPECT_FALSE(k.compile(p, {1}, &err));
  EXPECT_NE(err.find("whole tensor"), std::string::npos) << err;
  EXPECT_FALSE(k.compile(p, {7}, &err));
  EXPECT_TRUE(k.compile(p, {2}, &err)) << err;

  ir::Diagnostics d("<string>");
  auto parsed = ir::parse::parseProgram("program t\n  out w : f32[N] replicated\n  w = 1 + 2\n", d);
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(k.compile(*parsed, {0}, &err));
  EXPECT_NE(err.find("untyped"), std::string::npos) << err;

  ASSERT_TRUE(k.compile(p, {2}, &err)) << err;
  Bindings b;
  EXPECT_FALSE(k.checkBindings(b, &err));
  EXPECT_NE(err.find("not bound"), std::string::npos) << err;
}

}  // namespace
}  // namespace fccl::fusion
