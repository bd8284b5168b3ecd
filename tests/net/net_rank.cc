// net_rank.cc - one rank of a multi-host test (tests/net/net_test.sh runs one per network
// namespace, or two sharing a namespace). It joins through FCCL_COMM_ID (rank 0 hosts the root)
// with NET_RANK / NET_NRANKS, or, without NET_RANK, as a launcher started it
// (fcclCommInitFromEnv: fcclrun, torchrun, mpirun, srun), then, by mode:
//   check     every collective (tests/harness/coll_check.h: exact inputs, guard bytes, inputs
//             unchanged) over sizes from 1 element to several FIFO slots of several tasks, in
//             and out of place, for float32 sum, int32 max, float64 avg (exact: small integers),
//             bfloat16 sum, and AllReduce with a float32 PreMulSum; then the stock SGD program fused across
//             the hosts, 3 steps, checked exactly against a float64 replay (every value a small dyadic
//             rational).
//   soak S    `check` over and over for S seconds (the stranger test connects meanwhile).
//   victim K  rank K kills itself (SIGKILL) 300 ms after a first allreduce; every other rank's
//             next allreduce must fail with fcclRemoteError within 1.5 s, and ranks reached
//             from K over sockets must name "rank K" and K's host (NET_VICTIM_HOST).
// Exit 0: everything as expected; 1: a check failed (the reasons on stderr).
#include <signal.h>
#include <unistd.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>
#include "coll_check.h"
#include "fccl.h"

using namespace fccltest;

namespace {

int gRank = -1;
char gHost[64] = "?";

#define FAIL(...)                                               \
  do {                                                          \
    fprintf(stderr, "net_rank: rank %d on %s: ", gRank, gHost); \
    fprintf(stderr, __VA_ARGS__);                               \
    fprintf(stderr, "\n");                                      \
    return false;                                               \
  } while (0)
#define CHECK_FCCL(call, comm)                                                                          \
  do {                                                                                                  \
    fcclResult_t r_ = (call);                                                                           \
    if (r_ != fcclSuccess) FAIL("%s -> %s: %s", #call, fcclGetErrorString(r_), fcclGetLastError(comm)); \
  } while (0)

int envInt(const char* name) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') {
    fprintf(stderr, "net_rank: %s is not set\n", name);
    exit(2);
  }
  return atoi(v);
}

bool runCase(fcclComm_t comm, const CollCase& c, int rank, int n) {
  CollRun run(c, rank, n);
  fcclResult_t r;
  if (c.coll == Coll::SendRecv) {
    fcclGroupStart();
    r = run.issue(comm);
    fcclResult_t e = fcclGroupEnd();
    if (r == fcclSuccess) r = e;
  } else {
    r = run.issue(comm);
  }
  if (r != fcclSuccess)
    FAIL("%s: %s: %s", c.describe(n).c_str(), fcclGetErrorString(r), fcclGetLastError(comm));
  if (!run.verify()) FAIL("%s: wrong result (details above)", c.describe(n).c_str());
  return true;
}

bool collectives(fcclComm_t comm, int rank, int n, int* cases) {
  struct TypeOp {
    fcclDataType_t dt;
    fcclRedOp_t op;
  };
  const TypeOp typeOps[] = {
      {fcclFloat32, fcclSum}, {fcclInt32, fcclMax}, {fcclFloat64, fcclAvg}, {fcclBfloat16, fcclSum}};
  // 1 element, a partial slot, 12000 (48 KiB of f32: the exchange AllReduce at 2 ranks, the ring
  // beyond), two slots, and 600 K elements: many slots of two 64+ KiB tasks.
  const size_t counts[] = {1, 1000, 12000, 70000, 600000};
  for (int ci = 0; ci < kNumColls; ++ci) {
    const Coll coll = Coll(ci);
    for (const TypeOp& to : typeOps) {
      if (!collReduces(coll) && to.op != fcclSum) continue;
      for (size_t count : counts) {
        // The per-rank collectives move count x n elements: keep them within a few MiB.
        size_t cnt = (coll == Coll::AllGather || coll == Coll::ReduceScatter || coll == Coll::AlltoAll)
                         ? (count + size_t(n) - 1) / size_t(n)
                         : count;
        for (int inPlace = 0; inPlace < (collSupportsInPlace(coll) ? 2 : 1); ++inPlace) {
          CollCase c;
          c.coll = coll;
          c.dt = to.dt;
          c.op = to.op;
          c.count = cnt;
          c.inPlace = inPlace != 0;
          c.root = collHasRoot(coll) ? int(count % size_t(n)) : 0;
          c.seed = 7 + count + size_t(ci) * 13;
          if (!runCase(comm, c, rank, n)) return false;
          ++*cases;
        }
      }
    }
  }
  // PreMulSum through every AllReduce algorithm across hosts (exchange when tiny, ring or
  // two-level beyond): the scalar applies once to each rank's input.
  float half = 0.5f;
  fcclRedOp_t premul;
  CHECK_FCCL(fcclRedOpCreatePreMulSum(&premul, &half, fcclFloat32, fcclScalarHostImmediate, comm), comm);
  for (size_t count : counts) {
    for (int inPlace = 0; inPlace < 2; ++inPlace) {
      CollCase c;
      c.coll = Coll::AllReduce;
      c.dt = fcclFloat32;
      c.op = premul;
      c.preMul = true;
      c.preMulScalar = 0.5;
      c.count = count;
      c.inPlace = inPlace != 0;
      c.seed = 99 + count;
      if (!runCase(comm, c, rank, n)) return false;
      ++*cases;
    }
  }
  CHECK_FCCL(fcclRedOpDestroy(premul, comm), comm);
  return true;
}

// SGD (fusion/stock/sgd.fccl) fused across the hosts, against a float64 replay. Gradients,
// weights and momentum are small integers, lr and momentum 1/2, so every value is exact in f32.
bool fusedSgd(fcclComm_t comm, int rank, int n) {
  const char* text = nullptr;
  CHECK_FCCL(fcclProgramGetStock("sgd", &text), comm);
  fcclProgram_t prog = nullptr;
  CHECK_FCCL(fcclProgramCreate(&prog, text, "sgd.fccl"), comm);
  CHECK_FCCL(fcclProgramCompile(prog, comm, nullptr), comm);
  const size_t N = 300007;
  size_t b = 0, e = 0;
  CHECK_FCCL(fcclSliceRange(comm, rank, N, &b, &e), comm);
  std::vector<float> g(N), w(N), buf(e - b);
  std::vector<double> rw(N), rbuf(N);
  for (size_t i = 0; i < N; ++i) {
    w[i] = float(int(i % 11) - 5);
    rw[i] = w[i];
    rbuf[i] = double(int(i % 5) - 2);
  }
  for (size_t i = b; i < e; ++i) buf[i - b] = float(rbuf[i]);
  const fcclScalarBinding_t scalars[] = {
      {"lr", 0.5}, {"momentum", 0.5}, {"dampening", 0.0}, {"weight_decay", 0.0}, {"nesterov", 0.0}};
  for (int step = 1; step <= 3; ++step) {
    for (size_t i = 0; i < N; ++i) g[i] = float((rank + 1) * (int((i + size_t(step)) % 7) - 3));
    const fcclTensorBinding_t tensors[] = {{"g", g.data(), N}, {"w", w.data(), N}, {"buf", buf.data(), N}};
    CHECK_FCCL(fcclProgramLaunch(prog, tensors, 3, scalars, 5, nullptr, comm, nullptr), comm);
    // The replay: gs = mean over ranks of (r+1) * k = (n+1)/2 * k.
    for (size_t i = 0; i < N; ++i) {
      const double gs = double(n + 1) / 2.0 * double(int((i + size_t(step)) % 7) - 3);
      rbuf[i] = 0.5 * rbuf[i] + gs;
      rw[i] = rw[i] - 0.5 * rbuf[i];
    }
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < N; ++i)
      if (double(w[i]) != rw[i] && bad++ == 0) first = i;
    for (size_t i = b; i < e; ++i)
      if (double(buf[i - b]) != rbuf[i] && bad++ == 0) first = i;
    if (bad > 0)
      FAIL("fused sgd step %d: %zu wrong values, first at %zu: w %g (want %g)", step, bad, first,
           double(w[first]), rw[first]);
  }
  CHECK_FCCL(fcclProgramDestroy(prog), comm);
  return true;
}

bool checkAll(fcclComm_t comm, int rank, int n) {
  int cases = 0;
  if (!collectives(comm, rank, n, &cases)) return false;
  if (!fusedSgd(comm, rank, n)) return false;
  printf("net_rank: rank %d of %d on %s: %d collective cases and the fused SGD passed\n", rank, n, gHost,
         cases);
  fflush(stdout);
  return true;
}

bool victim(fcclComm_t comm, int rank, int n, int k) {
  std::vector<float> small(64, 1.0f);
  CHECK_FCCL(fcclAllReduce(small.data(), small.data(), small.size(), fcclFloat, fcclSum, comm, nullptr),
             comm);
  if (rank == k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    kill(getpid(), SIGKILL);
  }
  std::vector<float> big(size_t(4) << 20, 1.0f);
  auto t0 = std::chrono::steady_clock::now();
  fcclResult_t r = fcclAllReduce(big.data(), big.data(), big.size(), fcclFloat, fcclSum, comm, nullptr);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string err = fcclGetLastError(comm);
  printf("net_rank: rank %d on %s: allreduce ended after %.3f s (%.3f s after the kill): %s: %s\n", rank,
         gHost, sec, sec - 0.3, fcclGetErrorString(r), err.c_str());
  fflush(stdout);
  if (r != fcclRemoteError) FAIL("expected fcclRemoteError, got %s", fcclGetErrorString(r));
  if (sec > 0.3 + 1.5) FAIL("the dead rank was noticed %.3f s after it died", sec - 0.3);
  const char* host = getenv("NET_VICTIM_HOST");
  // The ranks that talk to k over sockets (its ring neighbours on other hosts) name it.
  const bool neighbour = (rank + 1) % n == k || (k + 1) % n == rank;
  if (neighbour && host != nullptr && getenv("NET_VICTIM_NEIGHBOURS_REMOTE") != nullptr) {
    if (err.find("rank " + std::to_string(k)) == std::string::npos)
      FAIL("the error does not name rank %d", k);
    if (err.find(host) == std::string::npos) FAIL("the error does not name host %s", host);
  }
  fcclCommAbort(comm);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(
        stderr,
        "usage: net_rank check | soak SECONDS | victim RANK   (env: FCCL_COMM_ID, NET_RANK, NET_NRANKS; or "
        "a launcher's)\n");
    return 2;
  }
  const std::string mode = argv[1];
  const bool launched = getenv("NET_RANK") == nullptr;
  int rank = launched ? -1 : envInt("NET_RANK"), n = launched ? 0 : envInt("NET_NRANKS");
  gRank = rank;
  gethostname(gHost, sizeof(gHost) - 1);
  fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
  config.timeoutMs = 60000;
  fcclComm_t comm = nullptr;
  fcclResult_t r;
  if (launched) {
    fcclLaunchInfo_t info;
    r = fcclLaunchInfoFromEnv(&info);
    if (r == fcclSuccess) {
      rank = gRank = info.rank;
      n = info.nranks;
      printf("net_rank: rank %d of %d on %s, local %d of %d, launcher %s, root %s\n", rank, n, gHost,
             info.localRank, info.localRanks, info.launcher, info.root);
      fflush(stdout);
      r = fcclCommInitFromEnv(&comm, &config);
    }
  } else {
    fcclUniqueId id;
    if (fcclGetUniqueId(&id) != fcclSuccess) {
      fprintf(stderr, "net_rank: rank %d: fcclGetUniqueId: %s\n", rank, fcclGetLastError(nullptr));
      return 1;
    }
    r = fcclCommInitRankConfig(&comm, n, id, rank, &config);
  }
  if (r != fcclSuccess) {
    fprintf(stderr, "net_rank: rank %d on %s: init: %s: %s\n", rank, gHost, fcclGetErrorString(r),
            fcclGetLastError(nullptr));
    return 1;
  }
  bool ok = true;
  if (mode == "check") {
    ok = checkAll(comm, rank, n);
  } else if (mode == "soak" && argc > 2) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(atoi(argv[2]));
    int rounds = 0;
    // Every rank decides to go on from rank 0's clock, so all run the same number of rounds.
    for (int more = 1; ok && more;) {
      ok = checkAll(comm, rank, n);
      ++rounds;
      more = std::chrono::steady_clock::now() < end ? 1 : 0;
      if (ok && fcclBroadcast(&more, &more, 1, fcclInt32, 0, comm, nullptr) != fcclSuccess) ok = false;
    }
    printf("net_rank: rank %d: %d rounds\n", rank, rounds);
  } else if (mode == "victim" && argc > 2) {
    return victim(comm, rank, n, atoi(argv[2])) ? 0 : 1;
  } else {
    fprintf(stderr, "net_rank: unknown mode %s\n", mode.c_str());
    return 2;
  }
  if (fcclCommDestroy(comm) != fcclSuccess) ok = false;
  return ok ? 0 : 1;
}
