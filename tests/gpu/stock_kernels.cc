// stock_kernels.cc - runs the CUDA kernels fccl's code generator emits for every stock program
// (fusion/stock/*.fccl, and tests/fusion/programs/*.fccl) on a GPU and compares every output with the float64
// reference interpreter (fusion/ref/interpreter.h). A plain program: the GPU machine may lack GoogleTest.
//
// How: each program is parsed, checked, lowered with the default pipeline, emitted as one CUDA
// translation unit (emitScheduleCuda), compiled with NVRTC for the device's arch and loaded with
// the driver API. For nranks in {1,2,3} and N in {1,7,1000003} (every shape symbol = N) the
// ranks are simulated on one GPU, each with device buffers in storage form (schedule.h: sliced
// = its sliceRange), and the steps run as src/program_runtime.cc runs them: Pointwise launches
// the step's kernel over its range (scalar statements' result[] slots feed later steps);
// Fused reduce-scatters the input on the host (double, rounded to the dtype), launches the
// reduced-chunk kernel over the rank's slice in up to three chunks (so `begin` moves), then
// all-gathers `gather` with device copies; Collective and Reduction steps run on the host in
// double with the reference's semantics (rank order, NaN-ignoring min/max). Unlike the runtime,
// every tensor temporary gets storage, not only schedule.buffers (a stray store must not take
// down the context and the remaining cases; a stray read still reads poison).
//
// Checks, per rank: every out/inout tensor and scalar result against the reference on the same
// inputs, with tests/fused/fused_util.h's TOLERANCE for the "f32 path" (every stock output is on
// it: 1e-5 * (|ref| + max(M, F)), + 1 ulp for f16/bf16, integers and bool exact, a non-finite
// reference matched exactly); `in` tensors unchanged. Outputs and temporaries start as 0xFF
// bytes (NaN, -1, bool 255), so an element no kernel wrote fails. max_err = the largest
// |got - ref| / tolerance (<= 1 passes); kernels = kernel launches in the case; time = the
// case's device run (uploads, launches, host collectives, downloads) in ms.
// Exit: 0 all passed, 1 a failure, 2 no CUDA device (after the host-side compiles), 3 the
// --timeout watchdog fired. --no-gpu runs only the host parts (compile, inputs, reference).
// Past STYLE's ~600 lines in one file on purpose: it is the one source the GPU machine builds
// for this check, read top to bottom in sections (elements, inputs, compile, case and reference,
// comparison, simulated ranks, driver); class Sim is the part to split out if it grows.
#include <cuda.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fusion/check/checker.h"
#include "fusion/codegen/cuda_emit.h"
#include "fusion/codegen/nvrtc_compile.h"
#include "fusion/parse/parser.h"
#include "fusion/passes/lower.h"
#include "fusion/passes/registry.h"
#include "fusion/ref/interpreter.h"
#include "fusion/ref/round.h"
#include "src/base/half.h"

namespace {

namespace ir = fccl::ir;
namespace ref = fccl::ir::ref;
namespace fu = fccl::fusion;
namespace cg = fccl::fusion::codegen;
using ir::DType;
using Clock = std::chrono::steady_clock;

constexpr int kRanks[] = {1, 2, 3};
constexpr int64_t kSizes[] = {1, 7, 1000003};
constexpr uint64_t kSeed = 20250611;
constexpr int kThreads = 256, kMaxBlocks = 1024, kChunks = 3, kShowBad = 5;
static_assert(sizeof(CUdeviceptr) == 8, "FcclHookArgs holds 8-byte device pointers");

std::string strf(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}
double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// ---- CUDA driver calls: every return code checked; a failure throws with the call's text.
struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
std::string cuName(CUresult r) {
  const char *name = nullptr, *text = nullptr;
  cuGetErrorName(r, &name);
  cuGetErrorString(r, &text);
  if (r == CUDA_ERROR_STUB_LIBRARY) return strf("%d: the toolkit's stub libcuda, no driver here", int(r));
  return strf("%d %s (%s)", int(r), name ? name : "?", text ? text : "?");
}
void cuCheck(CUresult r, const char* call, int line) {
  if (r != CUDA_SUCCESS) throw CudaError(strf("line %d: %s -> %s", line, call, cuName(r).c_str()));
}
#define CU(call) cuCheck((call), #call, __LINE__)

// ---- Elements in storage form <-> double (stores round like the reference's, round.h).
double load(DType t, const uint8_t* p, size_t i) {
  auto get = [&](auto x) {
    std::memcpy(&x, p + i * sizeof x, sizeof x);
    return x;
  };
  switch (t) {
    case DType::F64:
      return get(double{});
    case DType::F32:
      return get(float{});
    case DType::F16:
      return fccl::toFloat(get(fccl::half_t{}));
    case DType::BF16:
      return fccl::toFloat(get(fccl::bfloat16_t{}));
    case DType::I32:
      return get(int32_t{});
    case DType::I64:
      return double(get(int64_t{}));
    default:
      return p[i];  // bool as its raw byte: poison (255) is no bool
  }
}
int64_t toInt(double x) {  // saturating, NaN -> 0 (never UB)
  if (std::isnan(x)) return 0;
  return x >= 9223372036854775807.0 ? INT64_MAX : x <= -9223372036854775808.0 ? INT64_MIN : int64_t(x);
}
void store(DType t, uint8_t* p, size_t i, double x) {
  x = ref::roundTo(t, x);  // exact in every narrower conversion below
  auto put = [&](auto v) { std::memcpy(p + i * sizeof v, &v, sizeof v); };
  switch (t) {
    case DType::F64:
      return put(x);
    case DType::F32:
      return put(float(x));
    case DType::F16:
      return put(fccl::toHalf(float(x)));
    case DType::BF16:
      return put(fccl::toBfloat16(float(x)));
    case DType::I32:
      return put(int32_t(toInt(x)));
    case DType::I64:
      return put(toInt(x));
    default:
      p[i] = x != 0 ? 1 : 0;
  }
}

// ---- Inputs: tests/fused/fused_util.cc's ranges for the stock programs (copied: that file
// needs GoogleTest and libfccl). Well-conditioned values; f16 gradients are multiples of 2^-10.
uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
double unit(uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  return double(splitmix(kSeed ^ splitmix(a ^ splitmix(b ^ splitmix(c)))) >> 11) * 0x1.0p-53;
}
uint64_t hashName(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (char ch : s) h = (h ^ uint8_t(ch)) * 1099511628211ull;
  return h;
}
double uni(const std::string& name, int rank, int64_t g, double lo, double hi) {
  return lo + (hi - lo) * unit(hashName(name), uint64_t(rank), uint64_t(g));
}
double dyadic(const std::string& name, int rank, int64_t g) {
  return (std::floor(unit(hashName(name), uint64_t(rank), uint64_t(g)) * 129) - 64) / 1024;
}
double optimizerValue(const std::string& name, int rank, int64_t g) {
  if (name == "g") return uni(name, rank, g, -0.1, 0.1);
  if (name == "w" || name == "master" || name == "w16") return uni("master", rank, g, 0.5, 1.5);
  if (name == "m") return uni(name, rank, g, -0.01, 0.01);
  if (name == "v") return uni(name, rank, g, 1e-4, 1e-3);
  if (name == "buf") return uni(name, rank, g, -0.05, 0.05);
  return uni(name, rank, g, -1, 1);
}

using ValueFn = std::function<double(const std::string& name, int rank, int64_t g)>;
struct Spec {
  std::map<std::string, double> scalars, floors;  // floors: F per output (default 1)
  ValueFn values = optimizerValue;
};
Spec stockSpec(const std::string& prog, int64_t N, int nranks) {
  Spec s;
  const std::map<std::string, double> adam = {
      {"lr", 1e-3}, {"beta1", 0.9}, {"beta2", 0.999}, {"eps", 1e-8}, {"step", 3}};
  if (prog == "sgd") {  // nesterov: both branches over the sweep (every N is odd)
    s.scalars = {{"lr", 0.05},
                 {"momentum", 0.9},
                 {"dampening", 0.1},
                 {"weight_decay", 0.01},
                 {"nesterov", double((N + nranks) % 2)}};
    s.floors = {{"buf", 0.05}};
  } else if (prog == "adam" || prog == "adamw" || prog == "lamb" || prog == "mixed_precision") {
    s.scalars = adam;
    if (prog == "adamw" || prog == "lamb") s.scalars["weight_decay"] = 0.01;
    if (prog == "mixed_precision") s.scalars["inv_scale"] = 0.125;
    s.floors = {{"m", 0.01}, {"v", 1e-4}};
    if (prog == "mixed_precision")
      s.values = [](const std::string& n, int r, int64_t g) {
        return n == "g" ? dyadic(n, r, g) : optimizerValue(n, r, g);
      };
  } else if (prog == "loss_scaling") {  // N == 7: +inf in the last rank's gradient (skip path)
    s.scalars = {{"lr", 0.1}, {"scale", 1024}};
    s.values = [N, nranks](const std::string& n, int r, int64_t g) {
      if (n != "g") return optimizerValue(n, r, g);
      return N == 7 && r == nranks - 1 && g == N / 2 ? double(INFINITY) : dyadic(n, r, g);
    };
  } else if (prog == "clip_global_norm") {
    s.scalars = {{"lr", 0.1}, {"max_norm", 1.0}};
  } else if (prog == "bias_dropout_residual") {
    s.scalars = {{"p", 0.25}, {"seed", 987654321.0 + double(N)}};
    s.values = [](const std::string& n, int r, int64_t g) {
      return n == "bias" ? uni(n, r, g, -0.5, 0.5) : uni(n, r, g, -1, 1);
    };
  } else if (prog == "features") {
    s.scalars = {{"a", 0.75}, {"k", 2}, {"big", 12345}, {"on", 1}};
    s.values = [](const std::string& n, int r, int64_t g) {
      if (n != "r") return uni(n, r, g, -1, 1);
      const double m = uni(n, r, g, 0.5, 0.8);  // |r| in [0.5, 0.8]: r + 1 >= 0.2, norm(r) > a
      return unit(77, uint64_t(g)) < 0.5 ? -m : m;
    };
  }
  return s;
}

// ---- Host side of a program: parse, check, lower, emit; NVRTC per arch.
struct Compiled {
  ir::Program checked;  // what the reference runs
  fu::Schedule sched;   // what the kernels implement (sched.program: the lowered program)
  std::string source;
  size_t slots = 0;  // FcclHookArgs slots: vars + materialized nodes (cuda_emit.h)
  std::vector<int> kernelSteps;
};

bool readsSlot(const ir::Program& p, ir::NodeId id) {
  if (cg::nodeSlot(p, id) >= 0) return true;
  const ir::Node& n = p.node(id);
  for (int i = 0; i < ir::opArity(n.op); ++i)
    if (readsSlot(p, n.args[size_t(i)])) return true;
  return false;
}

bool compileProgram(const std::string& path, Compiled* c, std::string* err) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream text;
  text << f.rdbuf();
  ir::Diagnostics d(path);
  std::optional<ir::Program> p = ir::parse::parseProgram(text.str(), d);
  if (p) p = ir::check::check(*p, d);
  if (!p) return *err = "parse/check: " + d.str(), false;
  c->checked = *p;
  if (!fu::lower(*p, fu::passes::defaultPipeline(), &c->sched, nullptr, err)) return false;
  if ((c->source = cg::emitScheduleCuda(c->sched, err)).empty()) return false;
  const ir::Program& lp = c->sched.program;
  c->slots = lp.vars.size();
  for (ir::NodeId id = 0; id < ir::NodeId(lp.nodes.size()); ++id) c->slots += cg::nodeSlot(lp, id) >= 0;
  c->slots = std::max<size_t>(c->slots, 1);
  for (size_t k = 0; k < c->sched.steps.size(); ++k) {
    const fu::Step& s = c->sched.steps[k];
    if (s.kind != fu::StepKind::Pointwise && s.kind != fu::StepKind::Fused) continue;
    c->kernelSteps.push_back(int(k));
    for (int32_t st : s.stmts)  // this test fills no node slots (lowering moves them into vars)
      if (readsSlot(lp, lp.stmts[size_t(st)].value))
        return *err = strf("step %zu reads a collective/reduction node slot (unsupported here)", k), false;
  }
  return true;
}

bool nvrtc(const Compiled& c, const std::string& arch, std::string* ptx, std::string* err) {
  std::string log;
  if (cg::compileWithNvrtc(c.source, c.checked.name, arch, ptx, &log)) return true;
  *err = "NVRTC (" + arch + "): " + log;
  return false;
}

// ---- One case: inputs in storage form and the reference's outputs.
struct Case {
  int nranks = 1;
  int64_t N = 0;
  Spec spec;
  std::map<std::string, int64_t> symbols;
  std::vector<ref::TensorMap> inputs;  // per rank, every in/inout tensor, rounded
  ref::Outputs want;
  std::map<std::string, double> maxAbs;  // M per output: largest finite |ref|
};

int64_t countOf(const ir::Program& p, const ir::Var& v, const std::map<std::string, int64_t>& sym) {
  int64_t n = 1;
  for (const ir::Dim& d : v.shape) n *= d.sym >= 0 ? sym.at(p.symbols[size_t(d.sym)]) : d.size;
  return n;
}
ir::SliceRange storageOf(const ir::Program& p, const ir::Var& v, const Case& k, int r) {
  const int64_t n = countOf(p, v, k.symbols);
  return v.layout == ir::Layout::Sliced ? ir::sliceRange(n, r, k.nranks) : ir::SliceRange{0, n};
}

bool buildCase(const ir::Program& p, Case* k, std::string* err) {
  for (const std::string& s : p.symbols) k->symbols[s] = k->N;
  k->spec = stockSpec(p.name, k->N, k->nranks);
  k->inputs.assign(size_t(k->nranks), {});
  for (const ir::Var& v : p.vars) {
    if ((v.kind != ir::VarKind::In && v.kind != ir::VarKind::InOut) || v.isScalar()) continue;
    for (int r = 0; r < k->nranks; ++r) {
      const ir::SliceRange s = storageOf(p, v, *k, r);
      std::vector<double>& d = k->inputs[size_t(r)][v.name];
      d.resize(size_t(s.size()));
      const int who = v.layout == ir::Layout::Local ? r : 0;
      for (int64_t i = 0; i < s.size(); ++i)
        d[size_t(i)] = ref::roundTo(v.dtype, k->spec.values(v.name, who, s.begin + i));
    }
  }
  ref::Inputs in{k->nranks, k->symbols, k->spec.scalars, k->inputs};
  if (!ref::run(p, in, &k->want, err)) return *err = "reference: " + *err, false;
  auto seen = [&](const std::string& name, double x) {
    if (std::isfinite(x)) k->maxAbs[name] = std::max(k->maxAbs[name], std::fabs(x));
  };
  for (int r = 0; r < k->nranks; ++r) {
    for (const auto& [name, vec] : k->want.tensors[size_t(r)])
      for (double x : vec) seen(name, x);
    for (const auto& [name, x] : k->want.scalars[size_t(r)]) seen(name, x);
  }
  return true;
}

// ---- Comparison: the error of one element as a fraction of its tolerance (inf: mismatch).
double ulpOf(DType t, double x) {
  const int p = t == DType::F16 ? 11 : 8, emin = t == DType::F16 ? -14 : -126;
  int e = 0;
  std::frexp(std::fabs(x), &e);
  return std::ldexp(1.0, (x == 0 ? emin : std::max(e - 1, emin)) - (p - 1));
}
double errorRatio(DType t, double got, double want, double M, double F) {
  if (std::isnan(want)) return std::isnan(got) ? 0 : INFINITY;
  if (!std::isfinite(want) || !ir::isFloat(t)) return got == want ? 0 : INFINITY;
  if (!std::isfinite(got)) return INFINITY;
  double tol = 1e-5 * (std::fabs(want) + std::max(M, F));
  if (t == DType::F16 || t == DType::BF16) tol += ulpOf(t, want);
  return std::fabs(got - want) / tol;
}

struct Result {
  bool pass = true;
  double maxErr = 0;
  int launches = 0;
  int shown = 0;
  std::string examples, counts;  // the first kShowBad bad elements; bad elements per var and rank
  bool check(const std::string& what, DType t, int r, int64_t i, double got, double want, double M,
             double F) {
    const double e = errorRatio(t, got, want, M, F);
    maxErr = std::max(maxErr, e);
    if (e <= 1) return true;
    pass = false;
    if (shown++ < kShowBad)
      examples +=
          strf("    %s rank %d [%lld]: got %.9g want %.9g\n", what.c_str(), r, (long long)i, got, want);
    return false;
  }
  void fail(const std::string& why) {
    pass = false;
    counts += "    " + why + "\n";
  }
};

// ---- The simulated ranks on one GPU.
struct DevMem {  // owns one allocation
  CUdeviceptr p = 0;
  size_t bytes = 0;
  explicit DevMem(size_t b) : bytes(b) {
    if (b) CU(cuMemAlloc(&p, b));
  }
  DevMem(DevMem&& o) noexcept : p(o.p), bytes(o.bytes) { o.p = 0; }
  DevMem(const DevMem&) = delete;
  ~DevMem() {
    if (p) cuMemFree(p);
  }
};

class Sim {
 public:
  Sim(const Compiled& c, const std::vector<CUfunction>& fns, const Case& k, int* launches)
      : c_(c),
        p_(c.sched.program),
        fns_(fns),
        k_(k),
        n_(k.nranks),
        results_(8 * c.slots),
        launches_(launches) {
    sc_.assign(size_t(n_), std::vector<double>(p_.vars.size(), NAN));
    mem_.resize(size_t(n_));
    for (int r = 0; r < n_; ++r)
      for (size_t v = 0; v < p_.vars.size(); ++v) {
        const ir::Var& var = p_.vars[v];
        if (var.isScalar()) {
          if (var.kind == ir::VarKind::Scalar || var.kind == ir::VarKind::InOut)
            sc_[size_t(r)][v] = k.spec.scalars.at(var.name);
          mem_[size_t(r)].emplace_back(0);
          continue;
        }
        mem_[size_t(r)].emplace_back(size_t(storageOf(p_, var, k, r).size()) *
                                     size_t(ir::dtypeBytes(var.dtype)));
        const DevMem& m = mem_[size_t(r)].back();
        if (var.kind == ir::VarKind::In || var.kind == ir::VarKind::InOut)
          upload(r, int(v), k.inputs[size_t(r)].at(var.name));
        else if (m.bytes)
          CU(cuMemsetD8(m.p, 0xFF, m.bytes));
      }
  }

  void run() {
    for (size_t s = 0; s < c_.sched.steps.size(); ++s) {
      const fu::Step& st = c_.sched.steps[s];
      switch (st.kind) {
        case fu::StepKind::Pointwise:
          pointwise(st, kernel(s));
          break;
        case fu::StepKind::Fused:
          fused(st, kernel(s));
          break;
        case fu::StepKind::Collective:
          collective(st);
          break;
        case fu::StepKind::Reduction:
          reduction(st);
          break;
      }
    }
  }

  void compare(Result* res) {
    for (size_t v = 0; v < p_.vars.size(); ++v) {
      const ir::Var& var = p_.vars[v];
      if (!var.isTensorDecl()) continue;
      const double M = k_.maxAbs.count(var.name) ? k_.maxAbs.at(var.name) : 0;
      const double F = k_.spec.floors.count(var.name) ? k_.spec.floors.at(var.name) : 1.0;
      for (int r = 0; r < n_; ++r) {
        if (var.isScalar()) {
          res->check(var.name, var.dtype, r, 0, sc_[size_t(r)][v], k_.want.scalars[size_t(r)].at(var.name), M,
                     F);
          continue;
        }
        const std::vector<double> got = download(r, int(v));
        const bool in = var.kind == ir::VarKind::In;  // must come back bit for bit
        const std::vector<double>& want =
            in ? k_.inputs[size_t(r)].at(var.name) : k_.want.tensors[size_t(r)].at(var.name);
        if (got.size() != want.size()) {
          res->fail(strf("%s rank %d: %zu elements stored, the reference has %zu", var.name.c_str(), r,
                         got.size(), want.size()));
          continue;
        }
        const int64_t base = storageOf(p_, var, k_, r).begin;
        size_t bad = 0;
        for (size_t i = 0; i < got.size(); ++i)
          bad +=
              !res->check(var.name, in ? DType::I64 : var.dtype, r, base + int64_t(i), got[i], want[i], M, F);
        if (bad > 0)
          res->fail(strf("%s rank %d: %zu of %zu elements %s", var.name.c_str(), r, bad, got.size(),
                         in ? "of this in tensor changed" : "out of tolerance"));
      }
    }
  }

 private:
  CUfunction kernel(size_t step) const {
    const auto it = std::find(c_.kernelSteps.begin(), c_.kernelSteps.end(), int(step));
    return fns_.at(size_t(it - c_.kernelSteps.begin()));
  }
  const ir::Var& var(int v) const { return p_.vars[size_t(v)]; }
  int64_t count(int v) const { return countOf(p_, var(v), k_.symbols); }

  std::vector<double> download(int r, int v) const {
    const DevMem& m = mem_[size_t(r)][size_t(v)];
    std::vector<uint8_t> b(m.bytes);
    if (m.bytes) CU(cuMemcpyDtoH(b.data(), m.p, m.bytes));
    std::vector<double> out(m.bytes / size_t(ir::dtypeBytes(var(v).dtype)));
    for (size_t i = 0; i < out.size(); ++i) out[i] = load(var(v).dtype, b.data(), i);
    return out;
  }
  void upload(int r, int v, const std::vector<double>& x) {
    const DevMem& m = mem_[size_t(r)][size_t(v)];
    const size_t eb = size_t(ir::dtypeBytes(var(v).dtype));
    if (x.size() * eb != m.bytes)
      throw std::runtime_error(strf("upload of %zu elements into %s (rank %d): its storage differs", x.size(),
                                    var(v).name.c_str(), r));
    std::vector<uint8_t> b(x.size() * eb);
    for (size_t i = 0; i < x.size(); ++i) store(var(v).dtype, b.data(), i, x[i]);
    if (!b.empty()) CU(cuMemcpyHtoD(m.p, b.data(), b.size()));
  }

  // FcclHookArgs (fusion/codegen/cuda_prelude.cc) for k slots: void* ptr[k]; long long base[k];
  // FcclScalar scalar[k] (8-byte union: .f double, .i long long); FcclScalar* result; int nranks;
  // int rank. 24k + 16 bytes, no padding.
  std::vector<uint8_t> hookArgs(int r) const {
    const size_t k = c_.slots;
    std::vector<uint8_t> a(24 * k + 16, 0);
    auto put = [&](size_t off, auto x) { std::memcpy(a.data() + off, &x, sizeof x); };
    for (size_t v = 0; v < p_.vars.size(); ++v) {
      const double x = sc_[size_t(r)][v];
      if (!var(int(v)).isScalar()) {
        put(8 * v, mem_[size_t(r)][v].p);
        put(8 * (k + v), (long long)storageOf(p_, var(int(v)), k_, r).begin);
      } else if (ir::isFloat(var(int(v)).dtype)) {
        put(8 * (2 * k + v), x);
      } else {
        put(8 * (2 * k + v), (long long)toInt(x));
      }
    }
    put(24 * k, results_.p);
    put(24 * k + 8, int(n_));
    put(24 * k + 12, int(r));
    return a;
  }
  void launch(CUfunction f, void** params, int64_t n) {
    const unsigned blocks = unsigned(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, kMaxBlocks));
    CU(cuLaunchKernel(f, blocks, 1, 1, kThreads, 1, 1, 0, nullptr, params, nullptr));
    CU(cuCtxSynchronize());
    ++*launches_;
  }

  // runtime.cc runPointwise: the first target's range (a scalar target: [0, 1)); scalar
  // statements run even where the range is empty.
  void pointwise(const fu::Step& s, CUfunction f) {
    if (s.stmts.empty()) return;
    const int first = p_.stmts[size_t(s.stmts[0])].var;
    bool scalars = false;
    for (int32_t st : s.stmts) scalars |= var(p_.stmts[size_t(st)].var).isScalar();
    for (int r = 0; r < n_; ++r) {
      const ir::SliceRange rg = var(first).isScalar()           ? ir::SliceRange{0, 1}
                                : s.extent == fu::Extent::Slice ? ir::sliceRange(count(first), r, n_)
                                                                : ir::SliceRange{0, count(first)};
      if (rg.size() == 0 && !scalars) continue;
      CU(cuMemsetD8(results_.p, 0xFF, results_.bytes));
      std::vector<uint8_t> a = hookArgs(r);
      long long b = rg.begin, e = rg.end;
      void* params[] = {a.data(), &b, &e};
      launch(f, params, rg.size());
      if (!scalars) continue;
      std::vector<uint8_t> out(results_.bytes);
      CU(cuMemcpyDtoH(out.data(), results_.p, out.size()));
      for (int32_t st : s.stmts) {
        const int v = p_.stmts[size_t(st)].var;
        if (!var(v).isScalar()) continue;
        const uint8_t* slot = out.data() + 8 * size_t(v);
        sc_[size_t(r)][size_t(v)] =
            ir::isFloat(var(v).dtype) ? load(DType::F64, slot, 0) : load(DType::I64, slot, 0);
      }
    }
  }

  static std::vector<double> across(ir::RedOp op, const std::vector<std::vector<double>>& x) {
    std::vector<double> out = x[0];
    for (size_t r = 1; r < x.size(); ++r) {
      if (x[r].size() != out.size()) throw std::runtime_error("ranks hold different element counts");
      for (size_t i = 0; i < out.size(); ++i)
        out[i] = op == ir::RedOp::Prod  ? out[i] * x[r][i]
                 : op == ir::RedOp::Min ? std::fmin(out[i], x[r][i])
                 : op == ir::RedOp::Max ? std::fmax(out[i], x[r][i])
                                        : out[i] + x[r][i];
    }
    if (op == ir::RedOp::Avg)
      for (double& v : out) v /= double(x.size());
    return out;
  }
  std::vector<std::vector<double>> all(int v) const {
    std::vector<std::vector<double>> x;
    for (int r = 0; r < n_; ++r) x.push_back(download(r, v));
    return x;
  }

  // Reduce-scatter on the host; the chunk kernel over the rank's slice; all-gather on device.
  void fused(const fu::Step& s, CUfunction f) {
    const std::vector<double> red = across(s.redop, all(s.input));
    const size_t eb = size_t(ir::dtypeBytes(var(s.reduced).dtype));
    for (int r = 0; r < n_; ++r) {
      const ir::SliceRange own = ir::sliceRange(count(s.input), r, n_);
      if (own.size() == 0) continue;  // lower.h: no hook on an empty slice
      if (var(s.reduced).layout != ir::Layout::Sliced || count(s.reduced) != count(s.input))
        throw std::runtime_error("the reduced temporary is not a sliced tensor of the input's size");
      upload(r, s.reduced, std::vector<double>(red.begin() + own.begin, red.begin() + own.end));
      for (int j = 0; j < kChunks; ++j) {
        long long b = own.begin + own.size() * j / kChunks, e = own.begin + own.size() * (j + 1) / kChunks;
        if (b == e) continue;
        CUdeviceptr chunk = mem_[size_t(r)][size_t(s.reduced)].p + size_t(b - own.begin) * eb;
        std::vector<uint8_t> a = hookArgs(r);
        void* params[] = {a.data(), &chunk, &b, &e};
        launch(f, params, e - b);
      }
    }
    for (int g : s.gather) {
      if (var(g).layout == ir::Layout::Sliced)
        throw std::runtime_error("gathered var " + var(g).name + " is sliced");
      const size_t geb = size_t(ir::dtypeBytes(var(g).dtype));
      for (int o = 0; o < n_; ++o) {
        const ir::SliceRange so = ir::sliceRange(count(g), o, n_);
        for (int r = 0; r < n_; ++r)
          if (r != o && so.size() > 0)
            CU(cuMemcpyDtoD(mem_[size_t(r)][size_t(g)].p + size_t(so.begin) * geb,
                            mem_[size_t(o)][size_t(g)].p + size_t(so.begin) * geb, size_t(so.size()) * geb));
      }
    }
  }

  void collective(const fu::Step& s) {
    const std::vector<std::vector<double>> x = all(s.input);
    std::vector<std::vector<double>> y(static_cast<size_t>(n_));
    const int root = int(s.root >= 0 ? toInt(sc_[0][size_t(s.root)]) : s.rootValue);
    const bool rooted = s.op == ir::Op::Broadcast || s.op == ir::Op::Reduce;
    if (rooted && (root < 0 || root >= n_)) throw std::runtime_error(strf("root %d out of range", root));
    std::vector<double> v;
    if (s.op == ir::Op::AllReduce || s.op == ir::Op::ReduceScatter || s.op == ir::Op::Reduce)
      v = across(s.redop, x);
    if (s.op == ir::Op::AllGather)
      for (const auto& part : x) v.insert(v.end(), part.begin(), part.end());
    for (int r = 0; r < n_; ++r) {
      switch (s.op) {
        case ir::Op::AllReduce:
        case ir::Op::AllGather:
          y[size_t(r)] = v;
          break;
        case ir::Op::Broadcast:
          y[size_t(r)] = x[size_t(root)];
          break;
        case ir::Op::Reduce:
          y[size_t(r)] = r == root ? v : x[size_t(r)];
          break;
        case ir::Op::ReduceScatter: {
          const ir::SliceRange sr = ir::sliceRange(int64_t(v.size()), r, n_);
          y[size_t(r)].assign(v.begin() + sr.begin, v.begin() + sr.end);
          break;
        }
        default:
          throw std::runtime_error(strf("%s is not a collective step", ir::opName(s.op)));
      }
      if (y[size_t(r)].size() * size_t(ir::dtypeBytes(var(s.output).dtype)) !=
          mem_[size_t(r)][size_t(s.output)].bytes)
        throw std::runtime_error(
            strf("%s: result size differs from %s's storage", ir::opName(s.op), var(s.output).name.c_str()));
      upload(r, s.output, y[size_t(r)]);
    }
  }

  // runtime.cc runReduction: a partial per rank over its storage, combined across ranks when
  // the operand is sliced; the scalar is rounded to its dtype, as a store would.
  void reduction(const fu::Step& s) {
    const ir::Stmt& st = p_.stmts[size_t(s.stmts.at(0))];
    const ir::Node& red = p_.node(st.value);
    const ir::Node& arg = p_.node(red.args[0]);
    if (arg.op != ir::Op::Ref) throw std::runtime_error("a reduction operand is not a variable");
    std::vector<double> part(static_cast<size_t>(n_));
    for (int r = 0; r < n_; ++r) {
      double acc = red.op == ir::Op::MaxAll ? -INFINITY : 0.0;
      for (double x : download(r, arg.var))
        acc = red.op == ir::Op::Norm     ? acc + x * x
              : red.op == ir::Op::Sum    ? acc + x
              : red.op == ir::Op::MaxAll ? std::fmax(acc, x)
                                         : (acc != 0 || !std::isfinite(x) ? 1.0 : 0.0);
      part[size_t(r)] = acc;
    }
    if (red.crossRank) {  // the tiny allreduce, in rank order
      const bool max = red.op == ir::Op::MaxAll || red.op == ir::Op::AnyNonfinite;
      double g = part[0];
      for (int r = 1; r < n_; ++r) g = max ? std::fmax(g, part[size_t(r)]) : g + part[size_t(r)];
      std::fill(part.begin(), part.end(), g);
    }
    for (int r = 0; r < n_; ++r) {
      const double v = red.op == ir::Op::Norm ? std::sqrt(part[size_t(r)]) : part[size_t(r)];
      sc_[size_t(r)][size_t(st.var)] = ref::roundTo(var(st.var).dtype, v);
    }
  }

  const Compiled& c_;
  const ir::Program& p_;
  const std::vector<CUfunction>& fns_;
  const Case& k_;
  const int n_;
  std::vector<std::vector<DevMem>> mem_;  // [rank][var]: storage of every tensor var
  std::vector<std::vector<double>> sc_;   // [rank][var]: scalar values
  DevMem results_;                        // FcclHookArgs::result
  int* launches_;
};

// ---- The device, the kernels of one program, the driver loop.
bool initDevice(std::string* arch, std::string* why) {
  CUresult r = cuInit(0);
  if (r != CUDA_SUCCESS) return *why = "cuInit -> " + cuName(r), false;
  int count = 0, major = 0, minor = 0, driver = 0;
  if ((r = cuDeviceGetCount(&count)) != CUDA_SUCCESS) return *why = "cuDeviceGetCount -> " + cuName(r), false;
  if (count == 0) return *why = "cuDeviceGetCount found no device", false;
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  char name[256] = {0};
  CU(cuDeviceGet(&dev, 0));
  CU(cuDeviceGetName(name, sizeof name - 1, dev));
  CU(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
  CU(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
  CU(cuDriverGetVersion(&driver));
  CU(cuDevicePrimaryCtxRetain(&ctx, dev));
  CU(cuCtxSetCurrent(ctx));
  *arch = strf("compute_%d%d", major, minor);
  std::printf("device 0 of %d: %s, sm_%d%d, driver API %d.%d, headers %d.%d\n", count, name, major, minor,
              driver / 1000, driver % 1000 / 10, CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);
  return true;
}

// Loads the PTX and finds fccl_kernel_<program>_<step> for every Pointwise/Fused step.
std::vector<CUfunction> loadKernels(const Compiled& c, const std::string& ptx, CUmodule* mod) {
  char log[8192] = {0};
  CUjit_option opt[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void* val[] = {log, reinterpret_cast<void*>(uintptr_t(sizeof log - 1))};
  const CUresult r = cuModuleLoadDataEx(mod, ptx.c_str(), 2, opt, val);
  if (r != CUDA_SUCCESS)
    throw CudaError("cuModuleLoadDataEx -> " + cuName(r) +
                    (r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION ? " (the driver is older than NVRTC)" : "") +
                    "\n" + log);
  std::vector<CUfunction> fns;
  for (int k : c.kernelSteps) {
    const std::string name = strf("fccl_kernel_%s_%d", c.sched.program.name.c_str(), k);
    CUfunction f = nullptr;
    cuCheck(cuModuleGetFunction(&f, *mod, name.c_str()), ("cuModuleGetFunction " + name).c_str(), __LINE__);
#if CUDA_VERSION >= 12040  // the hook ABI: the kernel's first parameter is the host's image
    size_t off = 0, size = 0;
    if (cuFuncGetParamInfo(f, 0, &off, &size) == CUDA_SUCCESS && size != 24 * c.slots + 16)
      throw std::runtime_error(strf("%s: FcclHookArgs is %zu bytes on the device, %zu here", name.c_str(),
                                    size, 24 * c.slots + 16));
#endif
    fns.push_back(f);
  }
  return fns;
}

struct Options {
  std::vector<std::string> dirs = {FCCL_STOCK_PROGRAMS_DIR, FCCL_TEST_PROGRAMS_DIR};
  std::string only;
  bool noGpu = false;
  unsigned timeout = 170;  // seconds; check.sh allows the step 180 (a full run takes ~30 s)
};

void onTimeout(int) {
  const char m[] = "stock_kernels: TIMEOUT: the --timeout watchdog fired; giving up\n";
  (void)!write(2, m, sizeof m - 1);
  _exit(3);
}

bool parseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool more = i + 1 < argc;
    if (a == "--no-gpu")
      o->noGpu = true;
    else if (a == "--programs" && more)
      o->dirs = {argv[++i]};
    else if (a == "--only" && more)
      o->only = argv[++i];
    else if (a == "--timeout" && more)
      o->timeout = unsigned(std::max(1, std::atoi(argv[++i])));
    else
      return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parseArgs(argc, argv, &o)) {
    std::fprintf(stderr, "usage: %s [--no-gpu] [--programs DIR] [--only NAME] [--timeout SECONDS]\n",
                 argv[0]);
    return 64;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::signal(SIGALRM, onTimeout);
  alarm(o.timeout);

  std::vector<std::string> files;
  std::error_code ec;
  std::string dirList;
  for (const std::string& dir : o.dirs) {
    dirList += (dirList.empty() ? "" : " ") + dir;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
      if (e.path().extension() == ".fccl" && (o.only.empty() || e.path().stem() == o.only))
        files.push_back(e.path());
  }
  std::sort(files.begin(), files.end(), [](const std::string& a, const std::string& b) {
    return std::filesystem::path(a).filename() < std::filesystem::path(b).filename();
  });
  if (files.empty()) {
    std::printf("stock_kernels: no programs in %s%s%s\n", dirList.c_str(), o.only.empty() ? "" : " named ",
                o.only.c_str());
    return 1;
  }

  // Host side first (parse, check, lower, emit, NVRTC for sm_90): runs on any machine.
  std::vector<Compiled> progs(files.size());
  std::vector<std::string> progErr(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    std::string ptx;
    if (compileProgram(files[i], &progs[i], &progErr[i]) && nvrtc(progs[i], "compute_90", &ptx, &progErr[i]))
      std::printf("compile %s: ok steps=%zu kernels=%zu slots=%zu ptx=%zu bytes (compute_90)\n",
                  progs[i].sched.program.name.c_str(), progs[i].sched.steps.size(),
                  progs[i].kernelSteps.size(), progs[i].slots, ptx.size());
    else
      std::printf("compile %s: FAIL %s\n", files[i].c_str(), progErr[i].empty() ? "?" : progErr[i].c_str());
  }
  const bool compiled =
      std::all_of(progErr.begin(), progErr.end(), [](const std::string& e) { return e.empty(); });

  std::string arch = "compute_90";
  if (!o.noGpu) {
    std::string why;
    bool ok = false;
    try {
      ok = initDevice(&arch, &why);
    } catch (const std::exception& e) {
      why = e.what();
    }
    if (!ok) {
      std::printf(
          "stock_kernels: no usable CUDA device (%s): no kernel was run (--no-gpu runs only the host "
          "parts)\n",
          why.c_str());
      return compiled ? 2 : 1;
    }
  }

  int passed = 0, total = 0;
  bool broken = false;  // after a CUDA error in a case the context may be unusable: stop using it
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string name = progErr[i].empty() ? progs[i].checked.name : files[i];
    CUmodule mod = nullptr;
    std::vector<CUfunction> fns;
    std::string progFail = progErr[i].empty() ? "" : "did not compile";  // fails all its cases
    if (progFail.empty() && !o.noGpu && !broken) {
      std::string ptx;
      try {
        if (nvrtc(progs[i], arch, &ptx, &progFail)) fns = loadKernels(progs[i], ptx, &mod);
      } catch (const std::exception& e) {
        progFail = e.what();
      }
    }
    for (int n : kRanks)
      for (int64_t N : kSizes) {
        ++total;
        const std::string head = strf("stock %s n=%d N=%lld:", name.c_str(), n, (long long)N);
        if (broken || !progFail.empty()) {
          std::printf("%s FAIL %s\n", head.c_str(),
                      broken ? "not run: an earlier case hit a CUDA error" : progFail.c_str());
          continue;
        }
        Case k;
        k.nranks = n;
        k.N = N;
        std::string caseErr;
        const Clock::time_point t0 = Clock::now();
        if (!buildCase(progs[i].checked, &k, &caseErr)) {
          std::printf("%s FAIL case setup: %s\n", head.c_str(), caseErr.c_str());
          continue;
        }
        if (o.noGpu) {
          ++passed;
          std::printf("%s host ok (inputs + reference %.0f ms), device skipped\n", head.c_str(), msSince(t0));
          continue;
        }
        Result res;
        const Clock::time_point t1 = Clock::now();
        try {
          Sim sim(progs[i], fns, k, &res.launches);
          sim.run();
          sim.compare(&res);
        } catch (const CudaError& e) {
          res.fail(std::string("CUDA error: ") + e.what());
          broken = true;
        } catch (const std::exception& e) {
          res.fail(std::string("error: ") + e.what());
        }
        std::printf("%s %s max_err=%.3g kernels=%d time=%.1f\n%s", head.c_str(), res.pass ? "PASS" : "FAIL",
                    res.maxErr, res.launches, msSince(t1),
                    res.pass ? "" : (res.examples + res.counts).c_str());
        passed += res.pass;
      }
    if (mod != nullptr) cuModuleUnload(mod);
  }
  std::printf("stock_kernels: %d/%d passed%s\n", passed, total,
              o.noGpu ? " (--no-gpu: compile, inputs and reference only; no kernel ran)" : "");
  return passed == total && compiled ? 0 : 1;
}
