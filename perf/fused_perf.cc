// fused_perf.cc - what fusion buys, against the baselines a careful user would write. For each
// stock optimizer (-p sgd|adam|adamw|lamb|all) after a float32 gradient allreduce, per size:
//   fused  fcclProgramLaunch of the stock program (fusion/stock/<p>.fccl) with the default
//          schedule: a reduce-scatter whose reduced hook runs the update on this rank's slice,
//          then the all-gather of w; m, v (sgd: buf) are sliced.
//   zero   ZeRO-1, unfused: fcclReduceScatter(g), the update on this rank's slice with sliced
//          state, fcclAllGather(w) in place.
//   ddp    DDP: fcclAllReduce(g), then the update on all N elements with full state, every rank.
//   mpi    MPI_Allreduce(g), then the ddp update (mpirun launch only).
// The baselines' update loops are perf/loops.cc, compiled with the JIT's flags, computing what
// the program computes in the same order and precision: only the schedule differs.
// Each row also prints the memory ceiling measured right before it (loops.h kernels on buffers of
// the row's size, all ranks at once, best of 3) and each variant's time as a fraction of its
// traffic bound: bytes per element per rank (the model printed in the header) x count / ceiling.
// Check (-c K): K times, from a non-zero state (w, m, v or buf), 4 steps with a new gradient each
// step on every variant; then every rank's w and its slice of the state must equal zero's within
// |x - ref| <= 1e-5 * max(|ref|, 1e-2 * max|ref| over the tensor). #wrong counts the elements
// that differ, over every rank and variant. Every call's return code is checked, timed or not.
// Launch: mpirun -np N fused_perf ... | fused_perf -t N (threads) | torchrun-style env.
// One file past 600 lines on purpose: the variants, the check that compares them and the table
// that reports them share one Bench and read best side by side.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "fccl.h"
#include "loops.h"
#ifdef FCCL_PERF_MPI
#include <mpi.h>
#endif

namespace fccl::perf {
namespace {

enum Variant {
  kFused,
  kZero,
  kDdp,
  kMpi,
  kVariants
};
const char* const kVariantNames[kVariants] = {"fused", "zero", "ddp", "mpi"};

constexpr int kCheckSteps = 4;  // steps per check run
constexpr int kTimedStep = 10;  // the step count (Adam's bias corrections) while timed
constexpr double kTol = 1e-5;

struct Optimizer {
  const char* name;
  int nstate;  // sliced state tensors
  const char* state[2];
  bool avg;  // the program reduces with avg (else with sum and divides itself)
  // Bytes of memory traffic per element per rank (inputs read once, outputs written once,
  // FIFO slots in cache) at n ranks: b + c/n, one {b, c} per variant.
  double model[kVariants][2];
  const char* notes;  // what the models count that is particular to this program
};

// S state tensors of 4 bytes: fused reads g (4), writes w's other slices (4(n-1)/n) and on its
// slice reads and writes w and the state (8(1+S)/n): 8 + (4+8S)/n. zero adds the reduce-scatter's
// slice of gs (written, read back: 8/n) and the all-gather's read of the own slice (4/n):
// 8 + (16+8S)/n. ddp: the allreduce reads g and writes gs (8), the update reads gs, w, state and
// writes w, state (4(3+2S)): 20 + 8S. LAMB: see its notes.
const Optimizer kOptimizers[] = {
    {"sgd", 1, {"buf", nullptr}, true, {{8, 12}, {8, 24}, {28, 0}, {28, 0}}, ""},
    {"adam", 2, {"m", "v"}, false, {{8, 20}, {8, 32}, {36, 0}, {36, 0}}, ""},
    {"adamw", 2, {"m", "v"}, true, {{8, 20}, {8, 32}, {36, 0}, {36, 0}}, ""},
    {"lamb",
     2,
     {"m", "v"},
     true,
     {{12, 48}, {8, 44}, {48, 0}, {48, 0}},
     "#   lamb: fused runs its schedule's 6 steps (fcclc --print-ir-after=schedule): the reduce-scatter's\n"
     "#   hook writes gs's slice (4/n) and u (4/n) besides m, v; norm(w) reads all of w (4); norm(u)\n"
     "#   reads u (4/n); a pass reads w, u and writes all_gather_in (12/n); the all-gather reads it and\n"
     "#   writes all of w (4/n + 4). zero and ddp store u in pass 1 (norms from cache) and read w, u,\n"
     "#   write w in pass 2 (12 per element updated).\n"},
};
constexpr int kNumOptimizers = sizeof(kOptimizers) / sizeof(kOptimizers[0]);

double model(const Optimizer& o, int v, int n) { return o.model[v][0] + o.model[v][1] / n; }

double nowSec() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// -C 1: the CPU time this rank's thread spent (what it did, not what a loaded machine made it
// wait for; waits spin, then yield, so a descheduled peer costs little of it).
double cpuSec() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// A value in [-1, 1) from (seed, stream, index): the same on every rank for replicated tensors.
float pattern(uint64_t seed, uint64_t stream, uint64_t i) {
  return float(int64_t(mix(seed, stream, i) >> 40) - (int64_t(1) << 23)) * 0x1p-23f;
}

// ---- Ranks: who we are and how values are combined ---------------------------------------------

class Ctx {
 public:
  virtual ~Ctx() = default;
  int rank = 0, nranks = 1;
  fcclComm_t comm = nullptr;
  bool mpi = false;  // MPI is initialized: the mpi variant runs
  virtual double reduce(double v, Agg how) = 0;
  void barrier() { reduce(0.0, Agg::kSum); }
  [[noreturn]] virtual void fatal(const std::string& msg) {
    std::fflush(stdout);
    std::fprintf(stderr, "fused_perf: %s: rank %d: %s\n", hostName().c_str(), rank, msg.c_str());
    std::fflush(stderr);
    _exit(2);
  }
  void check(fcclResult_t r, const char* what) {
    if (r != fcclSuccess)
      fatal(std::string(what) + ": " + fcclGetErrorString(r) + ": " + fcclGetLastError(comm));
  }
};

// Threads and torchrun-style processes: the communicator under test combines the values.
class CommCtx : public Ctx {
 public:
  double reduce(double v, Agg how) override {
    double buf = how == Agg::kRank0 && rank != 0 ? 0.0 : v;
    fcclRedOp_t op = how == Agg::kMin ? fcclMin : how == Agg::kMax ? fcclMax : fcclSum;
    check(fcclAllReduce(&buf, &buf, 1, fcclFloat64, op, comm, nullptr), "fcclAllReduce of the timings");
    return how == Agg::kAvg ? buf / nranks : buf;
  }
};

#ifdef FCCL_PERF_MPI
class MpiCtx : public Ctx {
 public:
  double reduce(double v, Agg how) override {
    double in = how == Agg::kRank0 && rank != 0 ? 0.0 : v, out = 0;
    MPI_Op op = how == Agg::kMin ? MPI_MIN : how == Agg::kMax ? MPI_MAX : MPI_SUM;
    MPI_Allreduce(&in, &out, 1, MPI_DOUBLE, op, MPI_COMM_WORLD);
    return how == Agg::kAvg ? out / nranks : out;
  }
  [[noreturn]] void fatal(const std::string& msg) override {
    std::fflush(stdout);
    std::fprintf(stderr, "fused_perf: %s: rank %d: %s\n", hostName().c_str(), rank, msg.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 2);
    _exit(2);
  }
};
#endif

// ---- One optimizer at one size -----------------------------------------------------------------

struct Bench {
  Ctx& c;
  const Optimizer& opt;
  fcclProgram_t prog;
  size_t n = 0;               // logical elements
  size_t slice = 0;           // S = ceil(n / nranks): the reduce-scatter's and all-gather's block
  size_t begin = 0, len = 0;  // this rank's slice [begin, begin + len)
  std::vector<float> g;       // padded to nranks * S for the reduce-scatter
  std::vector<float> wF, sF[2];
  std::vector<float> wZ, sZ[2], gsZ, uZ;
  std::vector<float> wD, sD[2], gsD, uD;
  OptimParams p;

  Bench(Ctx& ctx, const Optimizer& o, fcclProgram_t pr, size_t count) : c(ctx), opt(o), prog(pr), n(count) {
    slice = (n + c.nranks - 1) / c.nranks;
    size_t b = 0, e = 0;
    c.check(fcclSliceRange(c.comm, c.rank, n, &b, &e), "fcclSliceRange");
    begin = b;
    len = e - b;
    const size_t padded = slice * c.nranks;
    g.assign(padded, 0.0f);
    wF.assign(n, 0.0f);
    wZ.assign(padded, 0.0f);
    wD.assign(n, 0.0f);
    gsZ.assign(slice, 0.0f);
    gsD.assign(n, 0.0f);
    for (int s = 0; s < opt.nstate; ++s) {
      sF[s].assign(len + 1, 0.0f);
      sZ[s].assign(len + 1, 0.0f);
      sD[s].assign(n, 0.0f);
    }
    if (lamb()) {
      uZ.assign(len + 1, 0.0f);
      uD.assign(n, 0.0f);
    }
  }

  bool lamb() const { return std::strcmp(opt.name, "lamb") == 0; }
  fcclRedOp_t op() const { return opt.avg ? fcclAvg : fcclSum; }

  // Every variant's state from the same non-zero values (v >= 0 where it is a second moment).
  void initState(uint64_t seed) {
    for (size_t i = 0; i < n; ++i) wF[i] = wZ[i] = wD[i] = 0.5f * pattern(seed, 1, i);
    for (int s = 0; s < opt.nstate; ++s) {
      const bool second = opt.nstate == 2 && s == 1;
      for (size_t i = 0; i < n; ++i) {
        const float x = pattern(seed, 2 + s, i);
        sD[s][i] = second ? 1e-4f * (1.5f + x) : 1e-2f * x;
      }
      std::copy(sD[s].begin() + begin, sD[s].begin() + begin + len, sF[s].begin());
      std::copy(sD[s].begin() + begin, sD[s].begin() + begin + len, sZ[s].begin());
    }
  }
  // This rank's gradient of step `step`: differs per rank and per step.
  void initGradient(uint64_t seed, int step) {
    for (size_t i = 0; i < n; ++i) g[i] = 1e-2f * pattern(seed * 1000 + step, 100 + c.rank, i);
  }

  void fused() {
    fcclTensorBinding_t t[4] = {{"g", g.data(), n}, {"w", wF.data(), n}};
    int nt = 2;
    for (int s = 0; s < opt.nstate; ++s) t[nt++] = {opt.state[s], sF[s].data(), n};
    fcclScalarBinding_t sc[8];
    int ns = 0;
    sc[ns++] = {"lr", p.lr};
    if (std::strcmp(opt.name, "sgd") == 0) {
      sc[ns++] = {"momentum", p.momentum};
      sc[ns++] = {"dampening", p.dampening};
      sc[ns++] = {"weight_decay", p.weightDecay};
      sc[ns++] = {"nesterov", p.nesterov ? 1.0 : 0.0};
    } else {
      sc[ns++] = {"beta1", p.beta1};
      sc[ns++] = {"beta2", p.beta2};
      sc[ns++] = {"eps", p.eps};
      sc[ns++] = {"step", double(p.step)};
      if (std::strcmp(opt.name, "adam") != 0) sc[ns++] = {"weight_decay", p.weightDecay};
    }
    c.check(fcclProgramLaunch(prog, t, nt, sc, ns, nullptr, c.comm, nullptr), "fcclProgramLaunch");
  }

  // The update of `count` elements from gradient gs (divided by gdiv first where the program
  // averages and the collective did not); LAMB's squared norms come back unreduced in sq[2].
  void update(const float* gs, float* w, std::vector<float>* st, float* u, size_t count, int gdiv,
              double* sq) {
    if (std::strcmp(opt.name, "sgd") == 0)
      sgdUpdate(gs, w, st[0].data(), count, gdiv, p);
    else if (std::strcmp(opt.name, "adam") == 0)
      adamUpdate(gs, w, st[0].data(), st[1].data(), count, c.nranks, p);
    else if (std::strcmp(opt.name, "adamw") == 0)
      adamwUpdate(gs, w, st[0].data(), st[1].data(), count, gdiv, p);
    else
      lambPass1(gs, w, st[0].data(), st[1].data(), u, count, gdiv, p, &sq[0], &sq[1]);
  }

  void zero() {
    c.check(fcclReduceScatter(g.data(), gsZ.data(), slice, fcclFloat32, op(), c.comm, nullptr),
            "fcclReduceScatter");
    double sq[2] = {0, 0};
    update(gsZ.data(), wZ.data() + begin, sZ, uZ.data(), len, 1, sq);
    if (lamb()) {
      c.check(fcclAllReduce(sq, sq, 2, fcclFloat64, fcclSum, c.comm, nullptr), "fcclAllReduce of the norms");
      lambPass2(wZ.data() + begin, uZ.data(), len, p.lr * lambTrust(sq[0], sq[1]));
    }
    c.check(fcclAllGather(wZ.data() + size_t(c.rank) * slice, wZ.data(), slice, fcclFloat32, c.comm, nullptr),
            "fcclAllGather");
  }

  void ddpUpdate(int gdiv) {
    double sq[2] = {0, 0};
    update(gsD.data(), wD.data(), sD, uD.data(), n, gdiv, sq);
    if (lamb()) lambPass2(wD.data(), uD.data(), n, p.lr * lambTrust(sq[0], sq[1]));
  }
  void ddp() {
    c.check(fcclAllReduce(g.data(), gsD.data(), n, fcclFloat32, op(), c.comm, nullptr), "fcclAllReduce");
    ddpUpdate(1);
  }
  void mpi() {
#ifdef FCCL_PERF_MPI
    int rc = MPI_Allreduce(g.data(), gsD.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) c.fatal("MPI_Allreduce failed with code " + std::to_string(rc));
    ddpUpdate(opt.avg ? c.nranks : 1);  // MPI has no avg: the update divides, as fccl's avg does
#endif
  }
  void run(int v) {
    switch (v) {
      case kFused:
        return fused();
      case kZero:
        return zero();
      case kDdp:
        return ddp();
      default:
        return mpi();
    }
  }

  // Elements of got[0, count) that differ from want beyond the tolerance.
  static int64_t wrong(const float* got, const float* want, size_t count) {
    float scale = 0;
    for (size_t i = 0; i < count; ++i) scale = std::max(scale, std::fabs(want[i]));
    int64_t bad = 0;
    for (size_t i = 0; i < count; ++i)
      if (!(std::fabs(got[i] - want[i]) <= kTol * std::max(std::fabs(want[i]), 1e-2f * scale))) ++bad;
    return bad;
  }
  // Elements of w and of this rank's state slice where variant `v` (ddp's buffers for ddp and mpi)
  // differs from zero.
  int64_t wrongVsZero(int v) const {
    const bool full = v == kDdp || v == kMpi;
    int64_t bad = wrong(full ? wD.data() : wF.data(), wZ.data(), n);
    for (int s = 0; s < opt.nstate; ++s)
      bad += wrong(full ? sD[s].data() + begin : sF[s].data(), sZ[s].data(), len);
    return bad;
  }

  // One check run of the given variants (zero among them): kCheckSteps steps of each from the same
  // state, a new gradient every step; adds each one's wrong elements on this rank to bad[].
  void checkRun(uint64_t seed, const std::vector<int>& variants, int64_t* bad) {
    initState(seed);
    for (int step = 1; step <= kCheckSteps; ++step) {
      initGradient(seed, step);
      p.step = step;
      for (int v : variants) {
        c.barrier();
        run(v);
      }
    }
    for (int v : variants)
      if (v != kZero) bad[v] += wrongVsZero(v);
  }
};

struct Row {
  double us[kVariants] = {0};
  double ceiling = 0;
  const char* ceilingKernel = "";
  int64_t wrong[kVariants] = {0};
};

// The memory ceiling at this size: the best rate (bytes read + written per second, all ranks at
// once) of the loops.h kernels over buffers of n floats, best of 3 each. The 12 runs rotate over
// four arrays, so a run never rereads what the run before it left in the caches (at sizes past
// the caches; at sizes within them the ceiling is the caches' own).
void measureCeiling(Bench& b, Row* row) {
  Ctx& c = b.c;
  const size_t n = b.n;
  struct K {
    const char* name;
    double bytesPerElem;
  } kernels[] = {{"read", 4}, {"copy", 8}, {"triad", 12}, {"update", 28}};
  float* arr[4] = {b.g.data(), b.gsD.data(), b.wD.data(), b.sD[0].data()};
  volatile double sink = 0;
  for (int k = 0; k < 4; ++k)
    for (int rep = 0; rep < 3; ++rep) {
      const int i = k * 3 + rep;
      float* a0 = arr[i % 4];
      float* a1 = arr[(i + 1) % 4];
      float* a2 = arr[(i + 2) % 4];
      float* a3 = arr[(i + 3) % 4];
      c.barrier();
      double t0 = nowSec();
      switch (k) {
        case 0:
          sink = sink + readAll(a0, n);
          break;
        case 1:
          copyStreaming(a2, a0, n);
          break;
        case 2:
          triadStreaming(a2, a0, a1, n);
          break;
        default:
          updateInPlace(a0, a1, a2, a3, n);
          break;
      }
      double t = c.reduce(nowSec() - t0, Agg::kMax);
      double gbs = kernels[k].bytesPerElem * double(n) * c.nranks / t / 1e9;
      if (gbs > row->ceiling) {
        row->ceiling = gbs;
        row->ceilingKernel = kernels[k].name;
      }
    }
}

std::string fmt(const char* f, double v) {
  char s[32];
  std::snprintf(s, sizeof s, f, v);
  return s;
}

void printTableHeader(const Ctx& c, const Options& o, const Optimizer& opt, int nvariants) {
  const int n = c.nranks;
  const char* agg = o.average == 0 ? "rank 0's" : o.average == 2 ? "min" : o.average == 3 ? "max" : "mean";
  std::printf(
      "#\n# %s: the stock program (fcclProgramGetStock, fusion/stock/%s.fccl), %d ranks; time per step (us), "
      "%s over ranks\n",
      opt.name, opt.name, n, agg);
  std::printf("# memory traffic per element per rank (bytes; inputs read once, outputs written once):");
  for (int v = 0; v < nvariants; ++v) {
    std::string formula = opt.model[v][1] > 0
                              ? " (" + fmt("%g", opt.model[v][0]) + " + " + fmt("%g", opt.model[v][1]) + "/n)"
                              : "";
    std::printf(" %s %.1f%s", kVariantNames[v], model(opt, v, n), formula.c_str());
  }
  std::printf("\n%s", opt.notes);
  std::printf("# %10s %10s %7s %6s", "size(B)", "count", "ceil", "by");
  for (int v = 0; v < nvariants; ++v) std::printf(" %9s", (std::string(kVariantNames[v]) + "(us)").c_str());
  for (int v = 1; v < nvariants; ++v) std::printf(" %9s", (std::string(kVariantNames[v]) + "/fus").c_str());
  for (int v = 0; v < nvariants; ++v) std::printf(" %6s", (std::string(kVariantNames[v]) + "%").c_str());
  std::printf(" %7s\n", "#wrong");
  std::printf("# %10s %10s %7s %6s\n", "", "(elems)", "(GB/s)", "");
  std::fflush(stdout);
}

// Runs one optimizer over every size; returns #wrong over all sizes.
int64_t runOptimizer(Ctx& c, const Options& o, const Optimizer& opt) {
  const bool printer = c.rank == 0;
  const int nvariants = c.mpi ? kVariants : kMpi;
  // The library's own stock program (fcclProgramGetStock: fusion/stock/<name>.fccl, built in).
  const char* text = nullptr;
  c.check(fcclProgramGetStock(opt.name, &text), "fcclProgramGetStock");
  fcclProgram_t prog = nullptr;
  if (fcclProgramCreate(&prog, text, (std::string(opt.name) + ".fccl").c_str()) != fcclSuccess) {
    const char* log = "";
    if (prog) fcclProgramGetLog(prog, &log);
    c.fatal(std::string("fcclProgramCreate(") + opt.name + "): " + log);
  }
  c.check(fcclProgramCompile(prog, c.comm, nullptr), "fcclProgramCompile");
  if (printer) printTableHeader(c, o, opt, nvariants);
  int64_t total = 0;
  uint64_t seed = 0;
  for (size_t bytes = o.minBytes; bytes <= o.maxBytes;) {
    const size_t count = std::max<size_t>(bytes / sizeof(float), 1);
    Row row;
    {
      Bench b(c, opt, prog, count);
      measureCeiling(b, &row);
      if (o.check > 0) {
        int64_t bad[kVariants] = {0};
        for (int k = 0; k < o.check; ++k) {
          b.checkRun(++seed, {kFused, kZero, kDdp}, bad);
          if (c.mpi) b.checkRun(++seed, {kZero, kMpi}, bad);  // mpi shares ddp's buffers
        }
        for (int v = 0; v < kVariants; ++v) row.wrong[v] = int64_t(c.reduce(double(bad[v]), Agg::kSum));
      }
      // Timed: every variant once per iteration, in turn.
      b.initState(0x7177ed);
      b.initGradient(0x7177ed, 1);
      b.p.step = kTimedStep;
      double sum[kVariants] = {0};
      auto clock = o.ignored == 1 ? cpuSec : nowSec;
      for (int it = -o.warmupIters; it < o.iters; ++it)
        for (int v = 0; v < nvariants; ++v) {
          c.barrier();
          double t0 = clock();
          b.run(v);
          if (it >= 0) sum[v] += clock() - t0;
        }
      for (int v = 0; v < nvariants; ++v) row.us[v] = c.reduce(sum[v] / o.iters, (Agg)o.average) * 1e6;
    }
    int64_t rowWrong = 0;
    for (int v = 0; v < kVariants; ++v) rowWrong += row.wrong[v];
    total += rowWrong;
    if (printer) {
      std::printf("  %10zu %10zu %7.1f %6s", count * sizeof(float), count, row.ceiling, row.ceilingKernel);
      for (int v = 0; v < nvariants; ++v) std::printf(" %9.1f", row.us[v]);
      for (int v = 1; v < nvariants; ++v) std::printf(" %9.2f", row.us[v] / row.us[kFused]);
      for (int v = 0; v < nvariants; ++v) {
        double boundUs = model(opt, v, c.nranks) * double(count) / (row.ceiling * 1e3);
        std::printf(" %6.2f", boundUs / row.us[v]);
      }
      if (o.check > 0)
        std::printf(" %7lld\n", (long long)rowWrong);
      else
        std::printf(" %7s\n", "N/A");
      for (int v = 0; v < kVariants; ++v)
        if (row.wrong[v])
          std::printf("#   %s: %lld elements of w or the state differ from zero's\n", kVariantNames[v],
                      (long long)row.wrong[v]);
      std::fflush(stdout);
    }
    size_t next = o.stepFactor > 1 ? bytes * o.stepFactor : bytes + o.stepBytes;
    if (next <= bytes) break;
    bytes = next;
  }
  c.check(fcclProgramDestroy(prog), "fcclProgramDestroy");
  return total;
}

void printHeaderLines(const Ctx& c, const Options& o, const char* launch) {
  std::printf("# fused_perf: stock optimizers after a float32 gradient allreduce; %d ranks (%s)\n", c.nranks,
              launch);
  std::printf(
      "#   fused  fcclProgramLaunch, default schedule: reduce-scatter, the update in its reduced hook, "
      "all-gather of w\n"
      "#   zero   ZeRO-1 unfused: fcclReduceScatter(g), the update on this rank's slice (sliced state), "
      "fcclAllGather(w) in place\n"
      "#   ddp    fcclAllReduce(g), then the update on all N elements with full state on every rank\n"
      "#   mpi    MPI_Allreduce(g), then the ddp update%s\n",
      c.mpi ? "" : " (not run: needs an mpirun launch)");
  std::printf(
      "# update loops: perf/loops.cc built with the C++ JIT's flags (-O3 -march=native -fno-math-errno "
      "-ffp-contract=off)\n");
  std::printf(
      "# ceil: memory ceiling measured just before each row: the best of 4 kernels (read; copy and triad "
      "with streaming\n#   stores; read 4 + write 3 in place) over buffers of the row's count, all ranks at "
      "once, best of 3 runs each,\n#   bytes read + written per second. var%%: the variant's traffic "
      "bound (model x count / ceil) over its time.\n");
  std::printf(
      "# not in the model: the FIFO slots (every byte a ring step sends is written into a slot by one core "
      "and "
      "read by\n#   another: 16(n-1)/n bytes per element per rank in each fccl variant), and the arithmetic "
      "(Adam: 4 divisions\n#   and a square root per element updated).\n");
  std::printf(
      "# each iteration runs every variant once, in turn; -w %d warm-up and -n %d timed iterations%s\n",
      o.warmupIters, o.iters, o.ignored == 1 ? "; times are CPU times (-C 1)" : "");
  if (o.check)
    std::printf(
        "# check: %d x %d steps from a non-zero state; every rank's w and state slice vs zero's, |x - ref| "
        "<= "
        "%g * max(|ref|, 1e-2 max|ref|)\n",
        o.check, kCheckSteps, kTol);
  std::fflush(stdout);
}

int runAll(Ctx& c, const Options& o, const char* launch) {
  if (c.rank == 0) printHeaderLines(c, o, launch);
  int64_t wrong = 0;
  for (int i = 0; i < kNumOptimizers; ++i)
    if (o.choice < 0 || o.choice == i) wrong += runOptimizer(c, o, kOptimizers[i]);
  if (c.rank == 0) {
    std::printf("#\n# Out of bounds values : %lld %s\n#\n", (long long)wrong, wrong ? "FAILED" : "OK");
    std::fflush(stdout);
  }
  return wrong ? 1 : 0;
}

const Choice kOptimizerChoices[] = {{"sgd", 0},  {"adam", 1}, {"adamw", 2},
                                    {"lamb", 3}, {"all", -1}, {nullptr, 0}};
const Choice kFloatOnly[] = {{"float", 7}, {"float32", 7, false}, {nullptr, 0}};

int fusedMain(int argc, char** argv) {
  Options o;
  o.minBytes = 1u << 20;
  o.maxBytes = 64u << 20;
  o.stepFactor = 4;
  o.iters = 10;
  o.warmupIters = 2;
  o.choice = 1;  // adam
  Tool tool{
      "fused_perf",
      "tbeifnwcdzyTa",
      {{'p', "program", "<optimizer>", "stock optimizer program",
        choiceAt(&Options::choice, kOptimizerChoices)},
       {'d', "datatype", "<type>", "gradient and state type (the stock optimizers are float32 programs)",
        choiceAt(&Options::typeIndex, kFloatOnly)},
       {'c', "check", "<check count>", "runs of 4 steps checked against zero (0 disables)",
        intAt(&Options::check, 0, 1 << 20)},
       {'C', "report_cputime", "<0/1>", "1: time each step by the rank thread's CPU time, not wall-clock",
        intAt(&Options::ignored, 0, 1)}},
      "Defaults: -p adam -b 1M -e 64M -f 4 -n 10 -w 2 -c 1.\n"
      "Launch: mpirun -np N fused_perf (adds the MPI column), fused_perf -t N (threads), or\n"
      "\ttorchrun-style env (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).\n"};
  int rc = parseOptions(argc, argv, tool, &o);
  if (rc >= 0) return rc;
#ifdef FCCL_PERF_MPI
  if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK")) {
    if (o.nThreads != 1) {
      std::fprintf(stderr, "fused_perf: -t %d with mpirun: one rank per process\n", o.nThreads);
      return 1;
    }
    MPI_Init(&argc, &argv);
    MpiCtx c;
    MPI_Comm_rank(MPI_COMM_WORLD, &c.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c.nranks);
    c.mpi = true;
    fcclUniqueId id;
    if (c.rank == 0) c.check(fcclGetUniqueId(&id), "fcclGetUniqueId");
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    c.check(fcclCommInitRank(&c.comm, c.nranks, id, c.rank), "fcclCommInitRank");
    rc = runAll(c, o, "processes, mpirun");
    c.check(fcclCommDestroy(c.comm), "fcclCommDestroy");
    MPI_Finalize();
    return rc;
  }
#endif
  int envRank = 0, envSize = 0;
  std::string error;
  if (torchrunEnv(&envRank, &envSize, &error)) {
    if (!error.empty() || o.nThreads != 1) {
      std::fprintf(stderr, "fused_perf: %s\n",
                   error.empty() ? "-t with RANK/WORLD_SIZE: one rank per process" : error.c_str());
      return 1;
    }
    CommCtx c;
    c.rank = envRank;
    c.nranks = envSize;
    fcclUniqueId id;
    c.check(fcclGetUniqueId(&id), "fcclGetUniqueId");
    c.check(fcclCommInitRank(&c.comm, c.nranks, id, c.rank), "fcclCommInitRank");
    rc = runAll(c, o, "processes, torchrun-style env");
    c.check(fcclCommDestroy(c.comm), "fcclCommDestroy");
    return rc;
  }
  fcclUniqueId id;
  if (fcclGetUniqueId(&id) != fcclSuccess) {
    std::fprintf(stderr, "fused_perf: fcclGetUniqueId: %s\n", fcclGetLastError(nullptr));
    return 1;
  }
  std::vector<std::thread> threads;
  std::vector<int> rcs(o.nThreads, 0);
  for (int r = 0; r < o.nThreads; ++r)
    threads.emplace_back([&, r] {
      CommCtx c;
      c.rank = r;
      c.nranks = o.nThreads;
      c.check(fcclCommInitRank(&c.comm, c.nranks, id, r), "fcclCommInitRank");
      rcs[r] = runAll(c, o, "threads of one process");
      c.check(fcclCommDestroy(c.comm), "fcclCommDestroy");
    });
  for (auto& t : threads) t.join();
  return *std::max_element(rcs.begin(), rcs.end());
}

}  // namespace
}  // namespace fccl::perf

int main(int argc, char** argv) { return fccl::perf::fusedMain(argc, argv); }
