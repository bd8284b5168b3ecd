// fused_util.cc - see fused_util.h.
#include "fused_util.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "dtypes.h"
#include "fusion/check/checker.h"
#include "fusion/parse/parser.h"
#include "fusion/ref/round.h"

namespace fusedtest {

using fccltest::recordFailure;
using fccltest::strf;

std::optional<ir::Program> parseCheck(const std::string& text, std::string* errors, const std::string& name) {
  ir::Diagnostics d(name);
  std::optional<ir::Program> p = ir::parse::parseProgram(text, d);
  if (p) p = ir::check::check(*p, d);
  if (errors) *errors = d.str();
  return p;
}

namespace {

bool lowType(ir::DType t) { return t == ir::DType::F32 || t == ir::DType::F16 || t == ir::DType::BF16; }

bool exprLow(const ir::Program& p, ir::NodeId id, const std::vector<bool>& varLow) {
  const ir::Node& n = p.node(id);
  if (n.op == ir::Op::Ref) return varLow[static_cast<size_t>(n.var)];
  if (n.op == ir::Op::Literal || n.op == ir::Op::Rank || n.op == ir::Op::NRanks) return false;
  if (lowType(n.dtype)) return true;
  for (int i = 0; i < ir::opArity(n.op); ++i)
    if (exprLow(p, n.args[static_cast<size_t>(i)], varLow)) return true;
  return false;
}

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

fcclDataType_t toFccl(ir::DType t) {
  switch (t) {
    case ir::DType::F64:
      return fcclFloat64;
    case ir::DType::F32:
      return fcclFloat32;
    case ir::DType::F16:
      return fcclFloat16;
    case ir::DType::BF16:
      return fcclBfloat16;
    case ir::DType::I32:
      return fcclInt32;
    case ir::DType::I64:
      return fcclInt64;
    default:
      return fcclUint8;  // bool: one byte 0/1
  }
}

size_t elemBytes(ir::DType t) { return t == ir::DType::Bool ? 1 : size_t(ir::dtypeBytes(t)); }

void storeElem(ir::DType t, void* base, size_t i, double v) {
  if (t == ir::DType::Bool) {
    static_cast<uint8_t*>(base)[i] = v != 0 ? 1 : 0;
    return;
  }
  if (t == ir::DType::I32 || t == ir::DType::I64) {
    fccltest::storeInt(toFccl(t), base, i, uint64_t(int64_t(v)));
    return;
  }
  fccltest::storeDouble(toFccl(t), base, i, v);
}

double loadElem(ir::DType t, const void* base, size_t i) {
  if (t == ir::DType::Bool) return double(static_cast<const uint8_t*>(base)[i]);
  if (t == ir::DType::I32 || t == ir::DType::I64) return double(fccltest::loadInt(toFccl(t), base, i));
  return fccltest::loadDouble(toFccl(t), base, i);
}

double ulpOf(ir::DType t, double x) {
  int p = t == ir::DType::F16 ? 11 : 8, emin = t == ir::DType::F16 ? -14 : -126;
  x = std::fabs(x);
  int e = 0;
  std::frexp(x, &e);
  int E = x == 0 ? emin : std::max(e - 1, emin);
  return std::ldexp(1.0, E - (p - 1));
}

std::vector<std::string> pipelineOf(const char* schedule) {
  std::vector<std::string> out;
  std::string s = schedule ? schedule : "split,reorder,fuse,overlap";
  if (s == "none") return out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string showVal(double v) { return strf("%.17g", v); }

}  // namespace

std::string programText(const std::string& name) {
  const char* text = nullptr;
  if (fcclProgramGetStock(name.c_str(), &text) == fcclSuccess) return text;
  std::ifstream in(std::string(FCCL_TEST_PROGRAMS_DIR) + "/" + name + ".fccl", std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::map<std::string, bool> lowPrecisionPaths(const ir::Program& p) {
  std::vector<bool> varLow(p.vars.size(), false);  // inputs are exact
  for (const ir::Stmt& s : p.stmts) {
    bool low = exprLow(p, s.value, varLow);
    const ir::Var& v = p.vars[static_cast<size_t>(s.var)];
    varLow[static_cast<size_t>(s.var)] = low || lowType(v.dtype);
  }
  std::map<std::string, bool> out;
  for (size_t i = 0; i < p.vars.size(); ++i)
    if (p.vars[i].kind == ir::VarKind::Out || p.vars[i].kind == ir::VarKind::InOut)
      out[p.vars[i].name] = varLow[i] || lowType(p.vars[i].dtype);
  return out;
}

double unit(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t h = splitmix(seed ^ splitmix(a ^ splitmix(b ^ splitmix(c))));
  return double(h >> 11) * 0x1.0p-53;
}

uint64_t hashName(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (char ch : s) h = (h ^ uint8_t(ch)) * 1099511628211ull;
  return h;
}

int64_t logicalCount(const ir::Program& p, const ir::Var& v, const std::map<std::string, int64_t>& symbols) {
  int64_t n = 1;
  for (const ir::Dim& d : v.shape) n *= d.sym >= 0 ? symbols.at(p.symbols[size_t(d.sym)]) : d.size;
  return n;
}

ir::SliceRange storageRange(const ir::Program& p, const ir::Var& v,
                            const std::map<std::string, int64_t>& symbols, int rank, int nranks) {
  int64_t n = logicalCount(p, v, symbols);
  if (v.layout == ir::Layout::Sliced) return ir::sliceRange(n, rank, nranks);
  return {0, n};
}

bool buildCase(const ir::Program& p, Case* c, const ValueFn& values, int steps, std::string* error) {
  const int n = c->nranks;
  c->inputs.assign(size_t(n), {});
  for (const ir::Var& v : p.vars) {
    if (!(v.kind == ir::VarKind::In || v.kind == ir::VarKind::InOut) || v.isScalar()) continue;
    for (int r = 0; r < n; ++r) {
      ir::SliceRange range = storageRange(p, v, c->symbols, r, n);
      std::vector<double> d(size_t(range.size()));
      for (int64_t k = 0; k < range.size(); ++k)
        d[size_t(k)] =
            ref::roundTo(v.dtype, values(v.name, v.layout == ir::Layout::Local ? r : 0, range.begin + k));
      c->inputs[size_t(r)][v.name] = std::move(d);
    }
  }
  ref::Inputs in;
  in.nranks = n;
  in.symbols = c->symbols;
  in.scalars = c->scalars;
  in.tensors = c->inputs;
  c->steps.clear();
  c->maxAbs.clear();
  for (int s = 0; s < steps; ++s) {
    ref::Outputs out;
    if (!ref::run(p, in, &out, error)) return false;
    for (const ir::Var& v : p.vars) {
      if (v.kind != ir::VarKind::InOut) continue;
      if (v.isScalar())
        in.scalars[v.name] = out.scalars[0][v.name];
      else
        for (int r = 0; r < n; ++r) in.tensors[size_t(r)][v.name] = out.tensors[size_t(r)][v.name];
    }
    for (int r = 0; r < n; ++r) {
      for (auto& [name, vec] : out.tensors[size_t(r)])
        for (double x : vec)
          if (std::isfinite(x)) c->maxAbs[name] = std::max(c->maxAbs[name], std::fabs(x));
      for (auto& [name, x] : out.scalars[size_t(r)])
        if (std::isfinite(x)) c->maxAbs[name] = std::max(c->maxAbs[name], std::fabs(x));
    }
    c->steps.push_back(std::move(out));
  }
  c->lowPrec = lowPrecisionPaths(p);
  return true;
}

double tolerance(ir::DType stored, bool lowPrec, double refv, double M, double F) {
  if (!ir::isFloat(stored)) return 0;
  double scale = std::fabs(refv) + std::max(M, F);
  double tol = (lowPrec || stored != ir::DType::F64 ? kRtolF32 : kRtolF64) * scale;
  if (stored == ir::DType::F16 || stored == ir::DType::BF16) tol += ulpOf(stored, refv);
  return tol;
}

namespace {

// One element comparison; false when out of tolerance.
bool close(ir::DType t, bool low, double ours, double refv, double M, double F, double* tolOut) {
  *tolOut = 0;
  if (!std::isfinite(refv)) {
    if (std::isnan(refv)) return std::isnan(ours);
    return ours == refv;
  }
  if (!std::isfinite(ours)) return false;
  double tol = tolerance(t, low, refv, M, F);
  *tolOut = tol;
  return std::fabs(ours - refv) <= tol;
}

constexpr size_t kGuard = 16;
constexpr uint8_t kGuardByte = 0xA5;
constexpr uint8_t kSentinelByte = 0x7f;  // f32 3.39e38, f64 1.38e306, bool 127: never a result

struct Buffer {
  const ir::Var* var = nullptr;
  int vi = -1;
  size_t count = 0;  // logical
  ir::SliceRange range;
  std::vector<uint8_t> bytes;  // guard | storage | guard
  void* data() { return bytes.data() + kGuard; }
  size_t storageBytes() const { return size_t(range.size()) * elemBytes(var->dtype); }
  bool guardsIntact() const {
    for (size_t i = 0; i < kGuard; ++i)
      if (bytes[i] != kGuardByte || bytes[kGuard + storageBytes() + i] != kGuardByte) return false;
    return true;
  }
};

}  // namespace

bool runCaseOnRank(fcclComm_t comm, int rank, const std::string& text, const ir::Program& p,
                   const char* schedule, const Case& c, const std::string& what, bool checkDumps,
                   std::string* details) {
  bool ok = true;
  auto fail = [&](const std::string& m) {
    if (details)
      *details += what + ": " + m + "\n";
    else
      recordFailure(__FILE__, __LINE__, what + ": " + m);
    ok = false;
  };
  fcclProgram_t prog = nullptr;
  fcclResult_t r = fcclProgramCreate(&prog, text.c_str(), (p.name + ".fccl").c_str());
  if (r != fcclSuccess) {
    const char* log = "";
    if (prog) fcclProgramGetLog(prog, &log);
    fail("fcclProgramCreate -> " + fccltest::describeResult(r, comm) + "\nlog:\n" + log);
    if (prog) fcclProgramDestroy(prog);
    return false;
  }
  fcclProgramOptions_t opts = FCCL_PROGRAM_OPTIONS_INITIALIZER;
  opts.schedule = schedule;
  r = fcclProgramCompile(prog, comm, &opts);
  if (r != fcclSuccess) {
    const char* log = "";
    fcclProgramGetLog(prog, &log);
    fail("fcclProgramCompile -> " + fccltest::describeResult(r, comm) + "\nlog:\n" + log);
    fcclProgramDestroy(prog);
    return false;
  }
  if (checkDumps) {
    std::vector<std::string> stages = {"parse", "check"};
    for (const std::string& s : pipelineOf(schedule)) stages.push_back(s);
    stages.push_back("schedule");
    for (const std::string& s : stages) {
      const char* dump = nullptr;
      r = fcclProgramDump(prog, s.c_str(), &dump);
      if (r != fcclSuccess || dump == nullptr || dump[0] == '\0') {
        fail("fcclProgramDump(\"" + s + "\") -> " + fccltest::describeResult(r, comm));
        continue;
      }
      if (s != "schedule" && std::string(dump).find("program " + p.name) == std::string::npos)
        fail("fcclProgramDump(\"" + s + "\") does not print 'program " + p.name + "':\n" + dump);
    }
  }

  // This rank's own buffers.
  const int n = c.nranks;
  std::vector<Buffer> bufs;
  std::vector<fcclTensorBinding_t> tb;
  std::vector<int> resultVars;  // shape-less out / inout, in declaration order
  for (size_t vi = 0; vi < p.vars.size(); ++vi) {
    const ir::Var& v = p.vars[vi];
    if (!v.isTensorDecl()) continue;
    if (v.isScalar()) {
      resultVars.push_back(int(vi));
      continue;
    }
    Buffer b;
    b.var = &v;
    b.vi = int(vi);
    b.count = size_t(logicalCount(p, v, c.symbols));
    b.range = {0, int64_t(b.count)};
    if (v.layout == ir::Layout::Sliced) {
      size_t beg = 0, end = 0;
      r = fcclSliceRange(comm, rank, b.count, &beg, &end);
      ir::SliceRange want = ir::sliceRange(int64_t(b.count), rank, n);
      if (r != fcclSuccess || int64_t(beg) != want.begin || int64_t(end) != want.end) {
        fail(strf("fcclSliceRange(rank %d, count %zu) -> %d [%zu, %zu), want [%lld, %lld)", rank, b.count,
                  int(r), beg, end, (long long)want.begin, (long long)want.end));
        fcclProgramDestroy(prog);
        return false;
      }
      b.range = {int64_t(beg), int64_t(end)};
    }
    b.bytes.assign(b.storageBytes() + 2 * kGuard, kGuardByte);
    if (v.kind == ir::VarKind::Out) {
      std::memset(b.data(), kSentinelByte, b.storageBytes());
    } else {
      const std::vector<double>& src = c.inputs[size_t(rank)].at(v.name);
      if (src.size() != size_t(b.range.size())) {
        fail(strf("test bug: input '%s' has %zu elements, storage %lld", v.name.c_str(), src.size(),
                  (long long)b.range.size()));
        fcclProgramDestroy(prog);
        return false;
      }
      for (size_t k = 0; k < src.size(); ++k) storeElem(v.dtype, b.data(), k, src[k]);
    }
    bufs.push_back(std::move(b));
  }
  for (Buffer& b : bufs) tb.push_back({b.var->name.c_str(), b.data(), b.count});
  std::vector<std::vector<uint8_t>> inCopies;
  for (Buffer& b : bufs) inCopies.push_back(b.bytes);

  std::map<std::string, double> state = c.scalars;  // inout scalars evolve with the launches
  for (size_t step = 0; step < c.steps.size(); ++step) {
    std::vector<fcclScalarBinding_t> sb;
    for (const ir::Var& v : p.vars)
      if (v.kind == ir::VarKind::Scalar || (v.kind == ir::VarKind::InOut && v.isScalar()))
        sb.push_back({v.name.c_str(), state.at(v.name)});
    std::vector<double> results(resultVars.size() + 1, std::nan(""));
    r = fcclProgramLaunch(prog, tb.data(), int(tb.size()), sb.data(), int(sb.size()), results.data(), comm,
                          nullptr);
    const std::string st = strf(" (launch %zu)", step + 1);
    if (r != fcclSuccess) {
      fail("fcclProgramLaunch" + st + " -> " + fccltest::describeResult(r, comm));
      break;
    }
    const ref::Outputs& want = c.steps[step];
    for (size_t bi = 0; bi < bufs.size(); ++bi) {
      Buffer& b = bufs[bi];
      const ir::Var& v = *b.var;
      if (!b.guardsIntact()) fail("tensor '" + v.name + "': bytes outside its storage were written" + st);
      if (v.kind == ir::VarKind::In) {
        if (b.bytes != inCopies[bi]) fail("in tensor '" + v.name + "' was modified" + st);
        continue;
      }
      const std::vector<double>& wantv = want.tensors[size_t(rank)].at(v.name);
      const double M = c.maxAbs.count(v.name) ? c.maxAbs.at(v.name) : 0;
      const double F = c.floors.count(v.name) ? c.floors.at(v.name) : 1.0;
      const bool low = c.lowPrec.count(v.name) ? c.lowPrec.at(v.name) : true;
      size_t bad = 0;
      std::string first;
      for (size_t k = 0; k < wantv.size(); ++k) {
        double ours = loadElem(v.dtype, b.data(), k), tol = 0;
        if (!close(v.dtype, low, ours, wantv[k], M, F, &tol)) {
          if (bad < 3)
            first += strf("\n    [%lld] ours=%s ref=%s |diff|=%.3g tol=%.3g",
                          (long long)(b.range.begin + int64_t(k)), showVal(ours).c_str(),
                          showVal(wantv[k]).c_str(), std::fabs(ours - wantv[k]), tol);
          ++bad;
        }
      }
      if (bad)
        fail(strf("%s tensor '%s' (%s, %s path, elements [%lld, %lld) of %zu): %zu differ from the reference",
                  ir::varKindName(v.kind), v.name.c_str(),
                  ir::typeString(p, v.dtype, v.shape, v.layout).c_str(), low ? "f32" : "f64",
                  (long long)b.range.begin, (long long)b.range.end, b.count, bad) +
             st + first);
    }
    for (size_t i = 0; i < resultVars.size(); ++i) {
      const ir::Var& v = p.vars[size_t(resultVars[i])];
      double wantv = want.scalars[size_t(rank)].at(v.name), ours = results[i], tol = 0;
      const double M = c.maxAbs.count(v.name) ? c.maxAbs.at(v.name) : 0;
      const double F = c.floors.count(v.name) ? c.floors.at(v.name) : 1.0;
      const bool low = c.lowPrec.count(v.name) ? c.lowPrec.at(v.name) : true;
      if (!close(v.dtype, low, ours, wantv, M, F, &tol))
        fail(strf("scalar result %zu '%s' (%s): ours=%s ref=%s tol=%.3g", i, v.name.c_str(),
                  ir::typeString(p, v.dtype, v.shape, v.layout).c_str(), showVal(ours).c_str(),
                  showVal(wantv).c_str(), tol) +
             st);
      if (v.kind == ir::VarKind::InOut) state[v.name] = ours;
    }
    if (results[resultVars.size()] == results[resultVars.size()])
      fail("fcclProgramLaunch wrote past the scalar results" + st);
  }
  fcclProgramDestroy(prog);
  return ok;
}

void recordCaseFailures(const std::vector<std::string>& failingCases,
                        const std::vector<std::string>& details) {
  if (failingCases.empty()) return;
  // The harness keeps 10 messages of at most 2000 bytes per rank: the list of failing cases
  // first (in chunks), then as many detail blocks as fit.
  std::string chunk = std::to_string(failingCases.size()) + " failing cases on this rank:";
  int used = 0;
  for (const std::string& w : failingCases) {
    if (chunk.size() + w.size() + 3 > 1900) {
      recordFailure(__FILE__, __LINE__, chunk);
      ++used;
      chunk = "(failing cases, continued):";
    }
    chunk += "\n  " + w;
  }
  recordFailure(__FILE__, __LINE__, chunk);
  ++used;
  for (size_t i = 0; i < details.size() && used < 9; ++i, ++used)
    recordFailure(__FILE__, __LINE__, details[i]);
}

// ---- Inputs of the stock programs ----

namespace {

double uni(uint64_t seed, const std::string& name, int rank, int64_t g, double lo, double hi) {
  return lo + (hi - lo) * unit(seed, hashName(name), uint64_t(rank), uint64_t(g));
}

// k / 1024 with |k| <= 64: sums of 8 such values are exact in f16.
double dyadic(uint64_t seed, const std::string& name, int rank, int64_t g) {
  double k = std::floor(unit(seed, hashName(name), uint64_t(rank), uint64_t(g)) * 129) - 64;
  return k / 1024;
}

// The shared optimizer ranges.
double optimizerValue(uint64_t seed, const std::string& name, int rank, int64_t g) {
  if (name == "g") return uni(seed, name, rank, g, -0.1, 0.1);
  if (name == "w" || name == "master") return uni(seed, name, rank, g, 0.5, 1.5);
  if (name == "m") return uni(seed, name, rank, g, -0.01, 0.01);
  if (name == "v") return uni(seed, name, rank, g, 1e-4, 1e-3);
  if (name == "buf") return uni(seed, name, rank, g, -0.05, 0.05);
  return uni(seed, name, rank, g, -1, 1);
}

}  // namespace

ProgramSpec stockProgramSpec(const std::string& prog, int64_t N, bool withInf, int nranks, uint64_t seed) {
  ProgramSpec s;
  std::map<std::string, double> adamScalars = {
      {"lr", 1e-3}, {"beta1", 0.9}, {"beta2", 0.999}, {"eps", 1e-8}, {"step", 3}};
  s.values = [seed](const std::string& name, int rank, int64_t g) {
    return optimizerValue(seed, name, rank, g);
  };
  if (prog == "sgd") {
    s.scalars = {{"lr", 0.05},
                 {"momentum", 0.9},
                 {"dampening", 0.1},
                 {"weight_decay", 0.01},
                 {"nesterov", double(N % 2)}};
    s.floors = {{"buf", 0.05}};
  } else if (prog == "adam") {
    s.scalars = adamScalars;
    s.floors = {{"m", 0.01}, {"v", 1e-4}};
  } else if (prog == "adamw" || prog == "lamb") {
    s.scalars = adamScalars;
    s.scalars["weight_decay"] = 0.01;
    s.floors = {{"m", 0.01}, {"v", 1e-4}};
  } else if (prog == "loss_scaling") {
    s.scalars = {{"lr", 0.1}, {"scale", 1024}};
    const int64_t infAt = N / 2;
    s.values = [seed, withInf, infAt, nranks](const std::string& name, int rank, int64_t g) {
      if (name == "g") {
        if (withInf && rank == nranks - 1 && g == infAt) return double(INFINITY);
        return dyadic(seed, name, rank, g);
      }
      return optimizerValue(seed, name, rank, g);
    };
  } else if (prog == "mixed_precision") {
    s.scalars = adamScalars;
    s.scalars["inv_scale"] = 0.125;
    s.floors = {{"m", 0.01}, {"v", 1e-4}};
    s.values = [seed](const std::string& name, int rank, int64_t g) {
      if (name == "g") return dyadic(seed, name, rank, g);
      if (name == "w16") return optimizerValue(seed, "master", rank, g);
      return optimizerValue(seed, name, rank, g);
    };
  } else if (prog == "clip_global_norm") {
    s.scalars = {{"lr", 0.1}, {"max_norm", 1.0}};  // N=65537 clips, N=1 does not
  } else if (prog == "bias_dropout_residual") {
    s.scalars = {{"p", 0.25}, {"seed", 987654321.0 + double(N)}};
    s.values = [seed](const std::string& name, int rank, int64_t g) {
      if (name == "bias") return uni(seed, name, rank, g, -0.5, 0.5);
      return uni(seed, name, rank, g, -1, 1);
    };
  } else if (prog == "features") {
    s.scalars = {{"a", 0.75}, {"k", 2}, {"big", 12345}, {"on", 1}};
    s.values = [seed](const std::string& name, int rank, int64_t g) {
      if (name == "r") {  // |r| in [0.5, 0.8]: r + 1 >= 0.2 and norm(r) >= 1 > a
        double m = uni(seed, name, rank, g, 0.5, 0.8);
        return unit(seed, 77, uint64_t(g)) < 0.5 ? -m : m;
      }
      return uni(seed, name, rank, g, -1, 1);
    };
  }
  return s;
}

}  // namespace fusedtest
