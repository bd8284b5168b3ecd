// fused_perf.cc - what fusion buys: Adam after a gradient allreduce, three ways, per size:
//   fused    fcclProgramLaunch of the DESIGN.md Adam program (default pipeline: reduce-scatter,
//            the update on this rank's slice inside the reduced hook, all-gather of w);
//            m and v are sliced (each rank keeps 1/n of them, ZeRO-style).
//   unfused  fcclAllReduce(g -> gs), then a separate update pass over all N elements on every
//            rank (hand-written C++ loop, -O3), with full-size m and v, as a DDP user runs it.
//   mpi      MPI_Allreduce(g -> gs), then the same update pass (when launched under mpirun).
// Launch: mpirun -np N fused_perf [-b 1M] [-e 64M] [-f 4] [-n 10] [-w 2] [-c 1]
//         or fused_perf -t N (ranks as threads; no MPI column).
// Checked (-c 1): fused w equals unfused w within 1e-5 relative, per element; #wrong counts
// the elements that are not.
// Memory traffic per element per rank (float32, n ranks), the numbers the table prints:
//   unfused: allreduce reads g, writes gs (8 B) + update reads gs,m,v,w and writes m,v,w (28 B) = 36 B
//   fused:   reads g, writes w (8 B) + on the slice reads m,v,w and writes m,v (20/n B)
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
#ifdef FCCL_PERF_MPI
#include <mpi.h>
#endif

namespace {

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

constexpr float kLr = 1e-3f, kB1 = 0.9f, kB2 = 0.999f, kEps = 1e-8f;
constexpr int kStep = 3;

struct Opts {
  size_t minBytes = 1u << 20, maxBytes = 64u << 20, factor = 4;
  int iters = 10, warmup = 2, check = 1, threads = 1;
};

void usage() {
  std::printf(
      "USAGE: fused_perf [-b minbytes] [-e maxbytes] [-f factor] [-n iters] [-w warmup] [-c 0/1] [-t "
      "nthreads]\n"
      "  Adam on float32 gradients of each size: fused program vs fcclAllReduce + update vs MPI_Allreduce + "
      "update.\n");
}

bool parse(int argc, char** argv, Opts* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h") return usage(), false;
    if (i + 1 >= argc) {
      std::fprintf(stderr, "fused_perf: %s needs a value\n", a.c_str());
      return false;
    }
    const char* v = argv[++i];
    size_t bytes = 0;
    if (a == "-b" && fccl::perf::parseSize(v, &bytes))
      o->minBytes = bytes;
    else if (a == "-e" && fccl::perf::parseSize(v, &bytes))
      o->maxBytes = bytes;
    else if (a == "-f")
      o->factor = std::max(2, atoi(v));
    else if (a == "-n")
      o->iters = std::max(1, atoi(v));
    else if (a == "-w")
      o->warmup = std::max(0, atoi(v));
    else if (a == "-c")
      o->check = atoi(v);
    else if (a == "-t")
      o->threads = std::max(1, atoi(v));
    else {
      std::fprintf(stderr, "fused_perf: bad option %s %s\n", a.c_str(), v);
      return false;
    }
  }
  return true;
}

// The update a DDP user runs after the allreduce: every element, every rank.
void adamUpdate(const float* gsum, float* w, float* m, float* v, size_t n, int nranks) {
  const float c1 = 1.0f - std::pow(kB1, float(kStep)), c2 = 1.0f - std::pow(kB2, float(kStep));
  const float inv = 1.0f / float(nranks);
  for (size_t i = 0; i < n; ++i) {
    float gs = gsum[i] * inv;
    float mi = kB1 * m[i] + (1 - kB1) * gs;
    float vi = kB2 * v[i] + (1 - kB2) * gs * gs;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] - kLr * (mi / c1) / (std::sqrt(vi / c2) + kEps);
  }
}

double nowUs() {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Job {
  int rank, nranks;
  bool mpi;
  fcclComm_t comm;
  // Combines v over ranks (max: the slowest rank's time).
  double (*maxOver)(Job&, double);
  std::vector<double>* slots;  // threads: shared scratch for maxOver
  void (*barrier)(Job&);
};

int run(Job& j, const Opts& o) {
  const bool printer = j.rank == 0;
  fcclProgram_t prog;
  if (fcclProgramCreate(&prog, kAdam, "adam") != fcclSuccess ||
      fcclProgramCompile(prog, j.comm, nullptr) != fcclSuccess) {
    std::fprintf(stderr, "fused_perf: rank %d: %s\n", j.rank, fcclGetLastError(j.comm));
    return 1;
  }
  if (printer) {
    std::printf("# fused_perf: Adam after a float32 sum allreduce, %d ranks%s\n", j.nranks,
                j.mpi ? " (MPI column: MPI_Allreduce + update)" : " (threads: no MPI column)");
    std::printf("# bytes of memory traffic per element per rank: unfused 36, fused %.1f (8 + 20/n)\n",
                8.0 + 20.0 / j.nranks);
    std::printf("#%11s %12s %11s %11s %11s %9s %9s %7s\n", "size(B)", "count", "fused(us)", "unfused(us)",
                "mpi(us)", "unf/fus", "mpi/fus", "#wrong");
  }
  int64_t totalWrong = 0;
  for (size_t bytes = o.minBytes; bytes <= o.maxBytes; bytes *= o.factor) {
    const size_t n = bytes / sizeof(float);
    size_t sb, se;
    fcclSliceRange(j.comm, j.rank, n, &sb, &se);
    std::vector<float> g(n), gs(n), w(n), wf(n), m(n), v(n), ms(se - sb + 1), vs(se - sb + 1);
    for (size_t i = 0; i < n; ++i) {
      g[i] = float(int((i * 7 + j.rank * 13) % 29) - 14) * 1e-3f;
      w[i] = wf[i] = float(int(i % 101) - 50) * 1e-2f;
    }
    fcclTensorBinding_t t[4] = {
        {"g", g.data(), n}, {"w", wf.data(), n}, {"m", ms.data(), n}, {"v", vs.data(), n}};
    fcclScalarBinding_t s[5] = {{"lr", kLr}, {"beta1", kB1}, {"beta2", kB2}, {"eps", kEps}, {"step", kStep}};

    // One checked step of each from the same state, then timed repetitions (state evolves).
    if (fcclProgramLaunch(prog, t, 4, s, 5, nullptr, j.comm, nullptr) != fcclSuccess ||
        fcclAllReduce(g.data(), gs.data(), n, fcclFloat32, fcclSum, j.comm, nullptr) != fcclSuccess) {
      std::fprintf(stderr, "fused_perf: rank %d: %s\n", j.rank, fcclGetLastError(j.comm));
      return 1;
    }
    adamUpdate(gs.data(), w.data(), m.data(), v.data(), n, j.nranks);
    int64_t wrong = 0;
    if (o.check)
      for (size_t i = 0; i < n; ++i)
        if (!(std::fabs(wf[i] - w[i]) <= 1e-5f * std::max(1.0f, std::fabs(w[i])))) ++wrong;

    auto timeIt = [&](auto body) {
      for (int i = 0; i < o.warmup; ++i) body();
      j.barrier(j);
      double t0 = nowUs();
      for (int i = 0; i < o.iters; ++i) body();
      return j.maxOver(j, (nowUs() - t0) / o.iters);
    };
    double fused = timeIt([&] { fcclProgramLaunch(prog, t, 4, s, 5, nullptr, j.comm, nullptr); });
    double unfused = timeIt([&] {
      fcclAllReduce(g.data(), gs.data(), n, fcclFloat32, fcclSum, j.comm, nullptr);
      adamUpdate(gs.data(), w.data(), m.data(), v.data(), n, j.nranks);
    });
    double mpi = -1;
#ifdef FCCL_PERF_MPI
    if (j.mpi)
      mpi = timeIt([&] {
        MPI_Allreduce(g.data(), gs.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        adamUpdate(gs.data(), w.data(), m.data(), v.data(), n, j.nranks);
      });
#endif
    wrong = int64_t(j.maxOver(j, double(wrong)));  // any rank's count (they agree)
    totalWrong += wrong;
    if (printer) {
      char mpiCol[32] = "N/A", ratio[32] = "N/A";
      if (mpi >= 0) {
        std::snprintf(mpiCol, sizeof(mpiCol), "%.1f", mpi);
        std::snprintf(ratio, sizeof(ratio), "%.2f", mpi / fused);
      }
      std::printf("%12zu %12zu %11.1f %11.1f %11s %9.2f %9s %7lld\n", bytes, n, fused, unfused, mpiCol,
                  unfused / fused, ratio, (long long)wrong);
    }
  }
  if (printer)
    std::printf("# Out of bounds values : %lld %s\n#\n", (long long)totalWrong, totalWrong ? "FAILED" : "OK");
  fcclProgramDestroy(prog);
  return totalWrong != 0;
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  if (!parse(argc, argv, &o)) return 1;
#ifdef FCCL_PERF_MPI
  int worldSize = 1;
  if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE")) {
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &worldSize);
    fcclUniqueId id;
    if (rank == 0 && fcclGetUniqueId(&id) != fcclSuccess) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
    Job j{rank, worldSize, true, nullptr, nullptr, nullptr, nullptr};
    if (fcclCommInitRank(&j.comm, worldSize, id, rank) != fcclSuccess) MPI_Abort(MPI_COMM_WORLD, 1);
    j.maxOver = [](Job&, double v) {
      double out;
      MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      return out;
    };
    j.barrier = [](Job&) { MPI_Barrier(MPI_COMM_WORLD); };
    int rc = run(j, o);
    fcclCommDestroy(j.comm);
    MPI_Finalize();
    return rc;
  }
#endif
  // Ranks as threads; maxOver goes through the library itself (a one-element allreduce).
  fcclUniqueId id;
  if (fcclGetUniqueId(&id) != fcclSuccess) return 1;
  std::vector<std::thread> threads;
  std::vector<int> rcs(o.threads, 0);
  for (int r = 0; r < o.threads; ++r)
    threads.emplace_back([&, r] {
      Job j{r, o.threads, false, nullptr, nullptr, nullptr, nullptr};
      if (fcclCommInitRank(&j.comm, o.threads, id, r) != fcclSuccess) {
        rcs[r] = 1;
        return;
      }
      j.maxOver = [](Job& jj, double v) {
        fcclAllReduce(&v, &v, 1, fcclFloat64, fcclMax, jj.comm, nullptr);
        return v;
      };
      j.barrier = [](Job& jj) {
        double x = 0;
        fcclAllReduce(&x, &x, 1, fcclFloat64, fcclSum, jj.comm, nullptr);
      };
      rcs[r] = run(j, o);
      fcclCommDestroy(j.comm);
    });
  for (auto& t : threads) t.join();
  return *std::max_element(rcs.begin(), rcs.end());
}
