// fccl_main.cc - main() of the fccl perf tools; FCCL_PERF_COLL (a compile definition) names the
// collective: kAllReduce -> all_reduce_perf, and so on. Three launch modes, one binary:
//   -t N                 N ranks as threads of this process (one fcclGetUniqueId, then each
//                        thread fcclCommInitRank).
//   mpirun -np P [-t N]  (built with FCCL_WITH_MPI, seen through OMPI_*/PMI* env): MPI only
//                        broadcasts the unique id and combines timings, #wrong and the device
//                        lines, as nccl-tests does; ranks = P*N.
//   torchrun-style env   RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT: FCCL_COMM_ID is set to
//                        MASTER_ADDR:MASTER_PORT before the first fccl call, so every process
//                        derives the same id and rank 0 hosts the bootstrap root (like
//                        NCCL_COMM_ID). With no MPI to lean on, timings and #wrong are combined
//                        with fcclAllReduce (float64) and the device lines with fcclAllGather
//                        on the communicator under test: simple, and a broken library shows
//                        up as a failure or hang rather than as a silently wrong table.
// Example: ./all_reduce_perf -b 8 -e 256M -f 2 -t 2
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common.h"

#ifdef FCCL_PERF_MPI
#include <mpi.h>
#endif

#ifndef FCCL_PERF_COLL
#error "define FCCL_PERF_COLL to one of kAllReduce, kReduceScatter, ... (see perf/CMakeLists.txt)"
#endif

namespace fccl::perf {
namespace {

constexpr size_t kLineBytes = 160;  // one device line, fixed size for gathers

const char* const kLaunchNotes =
    "Launch: -t N (threads), mpirun -np N"
#ifndef FCCL_PERF_MPI
    " (needs a build with FCCL_WITH_MPI)"
#endif
    ", or torchrun-style env\n"
    "\t(RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; LOCAL_RANK optional).\n";

struct Job {
  int nprocs = 1, proc = 0, nThreads = 1;
  bool mpi = false, env = false;
  int ranks() const { return nprocs * nThreads; }
};

std::string fcclError(fcclResult_t r, fcclComm_t comm) {
  std::string s = fcclGetErrorString(r);
  const char* last = fcclGetLastError(comm);
  if (last && *last) s += std::string(" / ") + last;
  return s;
}

[[noreturn]] void die(const Job& job, const std::string& msg) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s: proc %d: %s\n", hostName().c_str(), job.proc, msg.c_str());
  std::fflush(stderr);
#ifdef FCCL_PERF_MPI
  if (job.mpi) MPI_Abort(MPI_COMM_WORLD, 2);
#endif
  _exit(2);
}

// Combines one double over the threads of this process, then (MPI mode) over processes.
class LocalReducer {
 public:
  explicit LocalReducer(const Job& job) : job_(job) {}
  double reduce(int thread, double v, Agg how) {
    std::unique_lock<std::mutex> lk(m_);
    if (arrived_ == 0) acc_ = identity(how);
    switch (how) {
      case Agg::kRank0:
        if (thread == 0) acc_ = v;
        break;
      case Agg::kMin:
        acc_ = std::min(acc_, v);
        break;
      case Agg::kMax:
        acc_ = std::max(acc_, v);
        break;
      default:
        acc_ += v;
        break;
    }
    uint64_t gen = gen_;
    if (++arrived_ == job_.nThreads) {
      double r = acc_;
#ifdef FCCL_PERF_MPI
      if (job_.mpi && job_.nprocs > 1) {
        // Rank 0's value: the others contribute 0 to a sum.
        double in = how == Agg::kRank0 && job_.proc != 0 ? 0.0 : acc_;
        MPI_Op op = how == Agg::kMin ? MPI_MIN : how == Agg::kMax ? MPI_MAX : MPI_SUM;
        MPI_Allreduce(&in, &r, 1, MPI_DOUBLE, op, MPI_COMM_WORLD);
      }
#endif
      if (how == Agg::kAvg) r /= job_.ranks();
      result_ = r;
      arrived_ = 0;
      gen_++;
      cv_.notify_all();
    } else {
      cv_.wait(lk, [&] { return gen_ != gen; });
    }
    return result_;
  }

 private:
  static double identity(Agg how) {
    if (how == Agg::kMin) return std::numeric_limits<double>::infinity();
    if (how == Agg::kMax) return -std::numeric_limits<double>::infinity();
    return 0.0;
  }
  const Job& job_;
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t gen_ = 0;
  double acc_ = 0, result_ = 0;
};

class FcclRank : public Rank {
 public:
  FcclRank(const Job& job, fcclComm_t comm, int thread, LocalReducer* local)
      : job_(job), comm_(comm), thread_(thread), local_(local) {
    rank = job.proc * job.nThreads + thread;
    nranks = job.ranks();
  }

  double reduce(double v, Agg how) override {
    if (local_) return local_->reduce(thread_, v, how);
    // torchrun-style env: the communicator under test combines the value.
    double buf = how == Agg::kRank0 && rank != 0 ? 0.0 : v;
    fcclRedOp_t op = how == Agg::kMin ? fcclMin : how == Agg::kMax ? fcclMax : fcclSum;
    fcclResult_t r = fcclAllReduce(&buf, &buf, 1, fcclFloat64, op, comm_, nullptr);
    if (r != fcclSuccess) fatal("fcclAllReduce of the timings failed: " + fcclError(r, comm_));
    return how == Agg::kAvg ? buf / nranks : buf;
  }

  void* run(const Coll& coll, const void* send, void* recv, size_t count, fcclDataType_t type, int op,
            int root, bool, std::string* err) override {
    fcclRedOp_t fop = (fcclRedOp_t)op;  // kOpNames' order is fccl's enum order for 0..4
    if (coll.hasOp && op == kOpMulSum) {
      char scalar[8];
      mulSumScalar(type, rank, scalar);
      fcclResult_t r = fcclRedOpCreatePreMulSum(&fop, scalar, type, fcclScalarHostImmediate, comm_);
      if (r != fcclSuccess) {
        *err = "fcclRedOpCreatePreMulSum: " + fcclError(r, comm_);
        return nullptr;
      }
    }
    fcclResult_t r = coll.run(send, recv, count, type, fop, root, comm_);
    if (coll.hasOp && op == kOpMulSum) fcclRedOpDestroy(fop, comm_);
    if (r != fcclSuccess) {
      *err = fcclError(r, comm_);
      return nullptr;
    }
    return recv;
  }

  void groupStart() override { fcclGroupStart(); }
  void groupEnd() override {
    fcclResult_t r = fcclGroupEnd();
    if (r != fcclSuccess) fatal("fcclGroupEnd: " + fcclError(r, comm_));
  }
  [[noreturn]] void fatal(const std::string& msg) override {
    die(job_, "rank " + std::to_string(rank) + ": " + msg);
  }

 private:
  const Job& job_;
  fcclComm_t comm_;
  int thread_;
  LocalReducer* local_;
};

// Shared by the threads of this process.
struct Shared {
  fcclUniqueId id;
  std::vector<std::string> lines;  // device line of each thread
  std::vector<Totals> totals;
};

void rankThread(const Job& job, const Options& o, Shared& sh, LocalReducer* local, int t) {
  int rank = job.proc * job.nThreads + t;
  fcclComm_t comm = nullptr;
  fcclResult_t r = fcclCommInitRank(&comm, job.ranks(), sh.id, rank);
  if (r != fcclSuccess)
    die(job, "rank " + std::to_string(rank) + ": fcclCommInitRank: " + fcclError(r, nullptr));
  FcclRank me(job, comm, t, local);
  int dev = -1;
  fcclCommCuDevice(comm, &dev);
  std::string line = deviceLine(rank, 0, dev, "[host] CPU");

  // "# Using devices": every rank's line, printed by rank 0 in rank order.
  std::vector<char> all;
  if (job.env) {
    std::vector<char> mine(kLineBytes, 0);
    std::memcpy(mine.data(), line.data(), std::min(line.size(), kLineBytes - 1));
    all.assign(kLineBytes * job.ranks(), 0);
    r = fcclAllGather(mine.data(), all.data(), kLineBytes, fcclInt8, comm, nullptr);
    if (r != fcclSuccess) me.fatal("fcclAllGather of the device lines: " + fcclError(r, comm));
  } else {
    sh.lines[t] = line;
    me.barrier();
    if (t == 0) {
      std::vector<char> local(kLineBytes * job.nThreads, 0);
      for (int i = 0; i < job.nThreads; i++)
        std::memcpy(&local[i * kLineBytes], sh.lines[i].data(), std::min(sh.lines[i].size(), kLineBytes - 1));
      all = local;
#ifdef FCCL_PERF_MPI
      if (job.mpi) {
        all.assign(local.size() * job.nprocs, 0);
        MPI_Gather(local.data(), (int)local.size(), MPI_CHAR, all.data(), (int)local.size(), MPI_CHAR, 0,
                   MPI_COMM_WORLD);
      }
#endif
    }
  }
  if (rank == 0) {
    printDevicesTitle();
    for (int i = 0; i < job.ranks(); i++) std::fputs(&all[i * kLineBytes], stdout);
    printColumnHeader();
  }
  me.barrier();

  sh.totals[t] = runBenchmark(o, FCCL_PERF_COLL, me);
  me.barrier();
  fcclCommDestroy(comm);
}

int toolMain(int argc, char** argv) {
  const Coll& coll = FCCL_PERF_COLL;
  Options o;
  Tool tool{coll.name, "tgbeifnmwNpcodrzyTCa", {}, kLaunchNotes};
  int rc = parseOptions(argc, argv, tool, &o);
  if (rc >= 0) return rc;

  Job job;
  job.nThreads = o.nThreads;
  auto env = [](const char* n) { return std::getenv(n); };
#ifdef FCCL_PERF_MPI
  if (env("OMPI_COMM_WORLD_SIZE") || env("PMI_SIZE") || env("PMIX_RANK") || env("PMI_RANK")) {
    int provided = 0;  // the thread that combines values varies: calls are serialized
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    MPI_Comm_size(MPI_COMM_WORLD, &job.nprocs);
    MPI_Comm_rank(MPI_COMM_WORLD, &job.proc);
    job.mpi = true;
  }
#endif
  if (!job.mpi) {
    std::string error;
    job.env = torchrunEnv(&job.proc, &job.nprocs, &error);
    if (!error.empty()) die(job, error);
  }

  if (coll.hasRoot && o.root >= job.ranks()) {
    std::fprintf(stderr, "%s: -r %d: there are only %d ranks\n", coll.name, o.root, job.ranks());
    return 1;
  }
  int version = 0;
  fcclGetVersion(&version);
  if (job.proc == 0) {
    printHeader(o, coll.name, version, o.nThreads);
    if (job.env)
      std::printf("# Launch: torchrun-style env, %d processes, FCCL_COMM_ID=%s\n#\n", job.nprocs,
                  env("FCCL_COMM_ID"));
    else if (job.mpi)
      std::printf("# Launch: MPI, %d processes x %d threads\n#\n", job.nprocs, job.nThreads);
    std::fflush(stdout);
  }

  Shared sh;
  sh.lines.resize(job.nThreads);
  sh.totals.resize(job.nThreads);
  if (job.env || job.proc == 0) {
    fcclResult_t r = fcclGetUniqueId(&sh.id);
    if (r != fcclSuccess) die(job, "fcclGetUniqueId: " + fcclError(r, nullptr));
  }
#ifdef FCCL_PERF_MPI
  if (job.mpi) MPI_Bcast(&sh.id, sizeof sh.id, MPI_BYTE, 0, MPI_COMM_WORLD);
#endif

  LocalReducer local(job);
  LocalReducer* lp = job.env ? nullptr : &local;
  std::vector<std::thread> threads;
  for (int t = 1; t < job.nThreads; t++)
    threads.emplace_back(rankThread, std::cref(job), std::cref(o), std::ref(sh), lp, t);
  rankThread(job, o, sh, lp, 0);
  for (auto& th : threads) th.join();

  Totals tot = sh.totals[0];  // already combined over every rank
  if (job.proc == 0) printFooter(tot, coll.name);
#ifdef FCCL_PERF_MPI
  if (job.mpi) MPI_Finalize();
#endif
  return tot.wrong ? 1 : 0;
}

}  // namespace
}  // namespace fccl::perf

int main(int argc, char** argv) { return fccl::perf::toolMain(argc, argv); }
