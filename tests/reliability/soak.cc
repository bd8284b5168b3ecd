// soak.cc - fccl_soak: a seeded random sequence of collectives, point-to-point pairs, groups
// and fused programs on N ranks (threads or forked processes), every result verified. Every
// rank derives op #k from (seed, k) alone, so all ranks agree on the sequence without talking.
//
//   fccl_soak [--ranks N] [--ops K] [--seed S] [--mode threads|processes] [--max-count C]
//             [--programs 0|1] [--timeout-ms T] [--deadline-s D] [--expect-killed R]
//
//   --timeout-ms   the communicator's config.timeoutMs (every wait of the library gives up then)
//   --deadline-s   the harness deadline for the whole run; a rank still running then is a hang
//   --expect-killed R  for fault injection (FCCL_FAULT_INJECT=kill:R:op): rank R must die by a
//                  signal, and every other rank must finish or fail with a text naming "rank R".
//   --corrupt-op K self-test of the checking: rank 0 flips one bit of the result of the first
//                  AllReduce with count > 0 at op >= K, before verifying it (must exit 2).
//   --self-kill R:K self-test of --expect-killed without FCCL_FAULT_INJECT: rank R (processes
//                  only) SIGKILLs itself before op K.
//   --self-delay R:K:MS self-test of the timeout paths: rank R sleeps MS ms before op K (MS past
//                  --timeout-ms: exit 3; past --deadline-s too: exit 4).
//
// Ops (weights in planOp): AllReduce, Reduce, Broadcast, ReduceScatter, AllGather, AlltoAll and
// the ring Send/Recv of tests/harness/coll_check (all dtypes, sum/prod/max/min/avg and
// PreMulSum, in-place and out-of-place, random roots, unaligned pointers, Reduce with NULL
// recvbuff off root); random send/recv pairs (a random matching of the ranks, one-way outside a
// group or both ways inside one); groups of 2-4 of the above; the stock fused programs
// (fusion/stock, and tests/fusion/programs/features) with a random schedule. Counts
// 0..--max-count elements (per-rank-block collectives: 0..C/N), skewed to small sizes, with primes.
//
// Verification: collectives through CollRun (coll_check.h): inputs make every reduction exact
// in every dtype (small integers for sum, 1 or 2 for prod, any value for max/min and copies),
// so results compare bit for bit, except avg and PreMulSum on floats: |got - ref| <= tol *
// max(1, |ref|), tol 1e-2 bf16, 1e-3 f16, 1e-6 f32, 1e-12 f64, ref in float64. Guard bytes and
// unchanged inputs are checked too. Send/recv pairs: bytes exact, nothing past the end written.
// Fused programs: fusedtest::runCaseOnRank against the float64 reference interpreter with the
// tolerance table of tests/fused/fused_util.h.
//
// Output: per rank "SOAK rank R: ok, K ops", or on a library error "SOAK rank R: error at op #k
// (<what>): <result name>: <fcclGetLastError text>" (the rank then aborts its communicator and
// stops). A wrong result does not stop a rank (the ranks stay in step); the first one is printed.
// Exit codes: 0 all ranks ok; 2 a wrong result anywhere; 3 a library error (or an unexpected
// death) and nothing wrong; 4 a rank hung past the deadline; 5 --expect-killed not met.
//
// FCCL_JIT defaults to 0 here (the tile VM, proven bitwise equal to the JIT by
// tests/fusion/jit_test.cc): a cold JIT cache would cost each process ~15 s of compiling.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "coll_check.h"
#include "dtypes.h"
#include "fused_util.h"
#include "harness.h"

namespace {

using fccltest::Coll;
using fccltest::CollCase;
using fccltest::CollRun;
using fccltest::Mode;
using fccltest::strf;

struct Options {
  int ranks = 8;
  long ops = 10000;
  uint64_t seed = 1;
  Mode mode = Mode::Processes;
  size_t maxCount = 65536;
  bool programs = true;
  int timeoutMs = 30000;
  int deadlineSec = 600;
  int expectKilled = -1;
  long corruptOp = -1;    // self-test: rank 0 flips a bit of the first AllReduce result at op >= this
  int selfKillRank = -1;  // self-test: this rank SIGKILLs itself before op selfKillOp
  long selfKillOp = -1;
  int selfDelayRank = -1;  // self-test: this rank sleeps selfDelayMs before op selfDelayOp
  long selfDelayOp = -1;
  long selfDelayMs = 0;
};

// ---- Deterministic randomness ----------------------------------------------------------
uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct Rng {
  uint64_t state;
  uint64_t next() { return state = splitmix(state); }
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
  bool chance(int percent) { return (int)below(100) < percent; }
};

const size_t kPrimes[] = {2, 3, 5, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521};

// 0..limit, mostly small (a CI-sized run spends its time on the few large ones); 10% primes.
size_t pickCount(Rng& rng, size_t limit) {
  size_t c;
  int r = (int)rng.below(100);
  if (r < 20) {
    c = rng.below(9);
  } else if (r < 60) {
    c = rng.below(513);
  } else if (r < 85) {
    c = rng.below(4097);
  } else if (r < 95) {
    c = kPrimes[rng.below(sizeof(kPrimes) / sizeof(kPrimes[0]))];
  } else {
    c = rng.below(limit + 1);
  }
  return std::min(c, limit);
}

// ---- The plan of one op (identical on every rank) -----------------------------------------
enum class Kind {
  Coll,
  Group,
  Pairs,
  Program
};

struct PairsPlan {
  fcclDataType_t dt = fcclInt8;
  size_t count = 0;
  std::vector<int> partner;  // per rank; -1: idle in this op
  std::vector<int> dir;      // per rank: 0 this rank sends, 1 it receives, 2 both (in a group)
  uint64_t seed = 0;
};

const char* const kProgramNames[] = {"sgd",
                                     "adam",
                                     "adamw",
                                     "lamb",
                                     "loss_scaling",
                                     "clip_global_norm",
                                     "bias_dropout_residual",
                                     "mixed_precision",
                                     "features"};
constexpr int kNumPrograms = sizeof(kProgramNames) / sizeof(kProgramNames[0]);
const char* const kSchedules[] = {nullptr, "none", "split", "split,reorder", "split,reorder,fuse"};

struct Plan {
  Kind kind = Kind::Coll;
  std::vector<CollCase> colls;  // Coll: one; Group: 2-4
  PairsPlan pairs;
  int program = 0;
  int64_t N = 0;
  int schedule = 0;
  bool withInf = false;
  int steps = 1;
  std::string what(int nranks) const;
};

std::string Plan::what(int nranks) const {
  switch (kind) {
    case Kind::Coll:
      return colls[0].describe(nranks);
    case Kind::Group: {
      std::string s = "group {";
      for (size_t i = 0; i < colls.size(); ++i) s += (i ? "; " : " ") + colls[i].describe(nranks);
      return s + " }";
    }
    case Kind::Pairs:
      return strf("send/recv pairs %s count=%zu", fccltest::dtypeInfo(pairs.dt).name, pairs.count);
    case Kind::Program:
      return strf("program %s N=%lld schedule %s%s steps=%d", kProgramNames[program], (long long)N,
                  fusedtest::scheduleName(kSchedules[schedule]), withInf ? " +inf" : "", steps);
  }
  return "?";
}

CollCase randomColl(Rng& rng, const Options& o, int nranks, bool allowSendRecv) {
  static const Coll kinds[] = {Coll::AllReduce, Coll::AllReduce, Coll::AllReduce,
                               Coll::Reduce,    Coll::Broadcast, Coll::ReduceScatter,
                               Coll::AllGather, Coll::AlltoAll,  Coll::SendRecv};
  const int nkinds = sizeof(kinds) / sizeof(kinds[0]) - (allowSendRecv ? 0 : 1);
  CollCase c;
  c.coll = kinds[rng.below((uint64_t)nkinds)];
  c.dt = fccltest::kAllDtypes[rng.below(fccltest::kNumDtypes)];
  const bool block = c.coll == Coll::ReduceScatter || c.coll == Coll::AllGather || c.coll == Coll::AlltoAll;
  c.count = pickCount(rng, block ? std::max<size_t>(1, o.maxCount / (size_t)nranks) : o.maxCount);
  if (fccltest::collReduces(c.coll)) {
    int op = (int)rng.below(11);  // sum, prod, max, min, avg twice each; 1 in 11 PreMulSum
    if (op == 10) {
      c.preMul = true;
      const fccltest::DtypeInfo& di = fccltest::dtypeInfo(c.dt);
      c.preMulScalar = di.isFloat ? 0.5 : (di.isSigned ? -1.0 : 3.0);
      c.op = fcclSum;  // replaced by the created op on each rank
    } else {
      c.op = (fcclRedOp_t)(op % 5);
    }
  }
  c.inPlace = fccltest::collSupportsInPlace(c.coll) && rng.chance(40);
  c.root = (int)rng.below((uint64_t)nranks);
  static const size_t offsets[] = {1, 2, 3, 4, 8};
  c.byteOffset = rng.chance(20) ? offsets[rng.below(5)] : 0;
  c.nullNonRootRecv = c.coll == Coll::Reduce && !c.inPlace && rng.chance(50);
  c.seed = rng.next();
  return c;
}

Plan planOp(const Options& o, long k, int nranks) {
  Rng rng{splitmix(o.seed) ^ splitmix((uint64_t)k * 0x100000001b3ull + 17)};
  Plan p;
  int r = (int)rng.below(100);
  if (o.programs && r < 3) {
    p.kind = Kind::Program;
    p.program = (int)rng.below(kNumPrograms);
    static const int64_t sizes[] = {1, 7, 61, 1000, 4093};
    p.N = std::min<int64_t>(sizes[rng.below(5)], (int64_t)std::max<size_t>(1, o.maxCount));
    p.schedule = (int)rng.below(5);
    p.withInf = std::string(kProgramNames[p.program]) == "loss_scaling" && rng.chance(30);
    p.steps = rng.chance(20) ? 2 : 1;
  } else if (r < 13 && nranks >= 2) {
    p.kind = Kind::Pairs;
    PairsPlan& q = p.pairs;
    q.dt = fccltest::kAllDtypes[rng.below(fccltest::kNumDtypes)];
    q.count = pickCount(rng, o.maxCount);
    q.seed = rng.next();
    std::vector<int> perm(nranks);
    for (int i = 0; i < nranks; ++i) perm[i] = i;
    for (int i = nranks - 1; i > 0; --i) std::swap(perm[i], perm[rng.below((uint64_t)i + 1)]);
    q.partner.assign(nranks, -1);
    q.dir.assign(nranks, 0);
    for (int i = 0; i + 1 < nranks; i += 2) {
      int a = perm[i], b = perm[i + 1];
      q.partner[a] = b;
      q.partner[b] = a;
      int d = (int)rng.below(3);
      q.dir[a] = d == 2 ? 2 : d;
      q.dir[b] = d == 2 ? 2 : 1 - d;
    }
  } else if (r < 23) {
    p.kind = Kind::Group;
    int m = 2 + (int)rng.below(3);
    for (int i = 0; i < m; ++i) p.colls.push_back(randomColl(rng, o, nranks, true));
  } else {
    p.kind = Kind::Coll;
    p.colls.push_back(randomColl(rng, o, nranks, true));
  }
  return p;
}

// ---- Fused programs ----

struct LoadedProgram {
  std::string text;
  std::optional<fusedtest::ir::Program> program;
  std::string errors;
};

// Parsed once per process (every rank of a process shares them read-only).
const std::vector<LoadedProgram>& loadedPrograms() {
  static const std::vector<LoadedProgram> all = [] {
    std::vector<LoadedProgram> v(kNumPrograms);
    for (int i = 0; i < kNumPrograms; ++i) {
      v[i].text = fusedtest::programText(kProgramNames[i]);
      v[i].program = fusedtest::parseCheck(v[i].text, &v[i].errors, std::string(kProgramNames[i]) + ".fccl");
    }
    return v;
  }();
  return all;
}

const char* resultName(fcclResult_t r) {
  static const char* const names[] = {"fcclSuccess",       "fcclUnhandledCudaError", "fcclSystemError",
                                      "fcclInternalError", "fcclInvalidArgument",    "fcclInvalidUsage",
                                      "fcclRemoteError",   "fcclInProgress"};
  return r >= 0 && r < fcclNumResults ? names[r] : "fcclResult(?)";
}

// ---- One rank ------------------------------------------------------------------------------
// Markers the parent looks for in the harness report.
constexpr const char* kErrorMark = "SOAK-ERROR";
constexpr const char* kMismatchMark = "SOAK-MISMATCH";

class RankSoak {
 public:
  RankSoak(const Options& o, fcclComm_t comm, int rank, int n) : o_(o), comm_(comm), rank_(rank), n_(n) {}
  // False once a library error stopped this rank (already reported, comm aborted).
  bool runOp(long k);

 private:
  bool libError(long k, const std::string& what, fcclResult_t res, const std::string& text);
  void mismatch(long k, const std::string& what, const std::string& detail);
  bool runColls(long k, const Plan& p);
  bool runPairs(long k, const Plan& p);
  bool runProgram(long k, const Plan& p);

  const Options& o_;
  fcclComm_t comm_;
  int rank_, n_;
  bool corrupted_ = false;

 public:
  long counts[4] = {0, 0, 0, 0};  // per Kind
  long calls = 0;                 // fccl collective / send / recv / launch calls issued
};

bool RankSoak::libError(long k, const std::string& what, fcclResult_t res, const std::string& text) {
  printf("SOAK rank %d: error at op #%ld (%s): %s: %s\n", rank_, k, what.c_str(), resultName(res),
         text.c_str());
  fflush(stdout);
  fccltest::recordFailure(__FILE__, __LINE__,
                          strf("%s op #%ld (%s): %s: ", kErrorMark, k, what.c_str(), resultName(res)) + text);
  fcclCommAbort(comm_);
  comm_ = nullptr;
  return false;
}

void RankSoak::mismatch(long k, const std::string& what, const std::string& detail) {
  fccltest::recordFailure(__FILE__, __LINE__,
                          strf("%s op #%ld rank %d (%s)", kMismatchMark, k, rank_, what.c_str()) +
                              (detail.empty() ? "" : ": " + detail));
}

bool RankSoak::runColls(long k, const Plan& p) {
  const std::string what = p.what(n_);
  std::vector<CollCase> cases = p.colls;
  std::vector<fcclRedOp_t> created;
  auto destroyOps = [&] {
    for (fcclRedOp_t op : created) fcclRedOpDestroy(op, comm_);
  };
  for (CollCase& c : cases) {
    if (!c.preMul) continue;
    alignas(8) unsigned char scalar[8] = {};
    if (fccltest::dtypeInfo(c.dt).isFloat)
      fccltest::storeDouble(c.dt, scalar, 0, c.preMulScalar);
    else
      fccltest::storeInt(c.dt, scalar, 0, (uint64_t)(int64_t)c.preMulScalar);
    fcclResult_t r = fcclRedOpCreatePreMulSum(&c.op, scalar, c.dt, fcclScalarHostImmediate, comm_);
    if (r != fcclSuccess) {
      destroyOps();
      return libError(k, what + " [fcclRedOpCreatePreMulSum]", r, fcclGetLastError(comm_));
    }
    created.push_back(c.op);
  }
  std::vector<std::unique_ptr<CollRun>> runs;
  for (const CollCase& c : cases) runs.push_back(std::make_unique<CollRun>(c, rank_, n_));
  // The ring Send/Recv must be in a group; a Group op is one group around everything.
  const bool group = p.kind == Kind::Group || cases[0].coll == Coll::SendRecv;
  fcclResult_t res = fcclSuccess;
  if (group) res = fcclGroupStart();
  const bool started = group && res == fcclSuccess;
  for (auto& run : runs) {
    if (res != fcclSuccess) break;
    res = run->issue(comm_);
  }
  if (group && started) {
    fcclResult_t end = fcclGroupEnd();
    if (res == fcclSuccess) res = end;
  }
  if (res != fcclSuccess) {
    std::string text = fcclGetLastError(comm_);
    destroyOps();
    return libError(k, what, res, text);
  }
  calls += (long)runs.size();
  if (o_.corruptOp >= 0 && k >= o_.corruptOp && rank_ == 0 && !corrupted_) {
    for (size_t i = 0; i < runs.size() && !corrupted_; ++i) {
      if (cases[i].coll != Coll::AllReduce || cases[i].count == 0) continue;
      static_cast<unsigned char*>(runs[i]->recvPtr())[0] ^= 0x10;
      corrupted_ = true;
      printf("SOAK rank 0: self-test: corrupted the result of op #%ld\n", k);
    }
  }
  for (size_t i = 0; i < runs.size(); ++i)
    if (!runs[i]->verify()) mismatch(k, cases[i].describe(n_), "details in the line before");
  destroyOps();
  return true;
}

uint8_t pairByte(uint64_t seed, int sender, size_t i) {
  return (uint8_t)(splitmix(seed ^ splitmix(((uint64_t)sender << 40) ^ i)) >> 24);
}

bool RankSoak::runPairs(long k, const Plan& p) {
  const PairsPlan& q = p.pairs;
  const int peer = q.partner[rank_];
  if (peer < 0) return true;
  const std::string what = p.what(n_) + strf(" peer %d %s", peer,
                                             q.dir[rank_] == 0   ? "send"
                                             : q.dir[rank_] == 1 ? "recv"
                                                                 : "both");
  const size_t bytes = q.count * fccltest::dtypeInfo(q.dt).size;
  constexpr size_t kTail = 64;
  std::vector<uint8_t> send(bytes + 1), recv(bytes + kTail, fccltest::kUnwrittenByte);
  for (size_t i = 0; i < bytes; ++i) send[i] = pairByte(q.seed, rank_, i);
  const int d = q.dir[rank_];
  fcclResult_t res;
  if (d == 2) {
    res = fcclGroupStart();
    if (res == fcclSuccess) {
      res = fcclSend(send.data(), q.count, q.dt, peer, comm_, nullptr);
      if (res == fcclSuccess) res = fcclRecv(recv.data(), q.count, q.dt, peer, comm_, nullptr);
      fcclResult_t end = fcclGroupEnd();
      if (res == fcclSuccess) res = end;
    }
  } else if (d == 0) {
    res = fcclSend(send.data(), q.count, q.dt, peer, comm_, nullptr);
  } else {
    res = fcclRecv(recv.data(), q.count, q.dt, peer, comm_, nullptr);
  }
  if (res != fcclSuccess) return libError(k, what, res, fcclGetLastError(comm_));
  calls += d == 2 ? 2 : 1;
  for (size_t i = 0; i < bytes; ++i) {
    if (send[i] != pairByte(q.seed, rank_, i)) {
      mismatch(k, what, strf("send buffer modified at byte %zu", i));
      break;
    }
  }
  if (d == 0) return true;
  for (size_t i = 0; i < bytes + kTail; ++i) {
    uint8_t want = i < bytes ? pairByte(q.seed, peer, i) : fccltest::kUnwrittenByte;
    if (recv[i] != want) {
      mismatch(k, what,
               strf("first wrong byte %zu (element %zu%s): got 0x%02x, expected 0x%02x", i,
                    i / fccltest::dtypeInfo(q.dt).size, i < bytes ? "" : ", past the end", recv[i], want));
      break;
    }
  }
  return true;
}

bool RankSoak::runProgram(long k, const Plan& p) {
  const std::string what = p.what(n_);
  const LoadedProgram& lp = loadedPrograms()[(size_t)p.program];
  if (!lp.program) {
    mismatch(k, what, "test bug: the stock program does not parse: " + lp.errors);
    return true;
  }
  const fusedtest::ir::Program& prog = *lp.program;
  fusedtest::ProgramSpec spec = fusedtest::stockProgramSpec(kProgramNames[p.program], p.N, p.withInf, n_,
                                                            o_.seed * 1000003 + (uint64_t)k);
  fusedtest::Case c;
  c.label = what;
  c.nranks = n_;
  for (const std::string& sym : prog.symbols) c.symbols[sym] = p.N;
  c.scalars = spec.scalars;
  c.floors = spec.floors;
  std::string err;
  if (!fusedtest::buildCase(prog, &c, spec.values, p.steps, &err)) {
    mismatch(k, what, "test bug: the reference rejects the inputs: " + err);
    return true;
  }
  std::string details;
  if (fusedtest::runCaseOnRank(comm_, rank_, lp.text, prog, kSchedules[p.schedule], c, what, false, &details))
    return true;
  // runCaseOnRank reports a failing API call as "<call> -> <result name> (<code>): <text>".
  for (const char* call :
       {"fcclProgramLaunch", "fcclProgramCreate", "fcclProgramCompile", "fcclSliceRange"}) {
    size_t at = details.find(call);
    if (at == std::string::npos) continue;
    size_t arrow = details.find(" -> ", at);
    std::string rest = arrow == std::string::npos ? details.substr(at) : details.substr(arrow + 4);
    fcclResult_t res = fcclInternalError;  // describeResult: "<error string> (<code>): <text>"
    for (int r = 1; r < fcclNumResults; ++r)
      if (rest.find(strf("%s (%d): ", fcclGetErrorString((fcclResult_t)r), r)) == 0) res = (fcclResult_t)r;
    while (!rest.empty() && rest.back() == '\n') rest.pop_back();
    return libError(k, what + " [" + call + "]", res, rest);
  }
  while (!details.empty() && details.back() == '\n') details.pop_back();
  mismatch(k, what, details);
  return true;
}

bool RankSoak::runOp(long k) {
  if (rank_ == o_.selfKillRank && k == o_.selfKillOp && o_.mode == Mode::Processes) {
    printf("SOAK rank %d: self-test: killing myself before op #%ld\n", rank_, k);
    fflush(stdout);
    raise(SIGKILL);
  }
  if (rank_ == o_.selfDelayRank && k == o_.selfDelayOp) {
    printf("SOAK rank %d: self-test: sleeping %ld ms before op #%ld\n", rank_, o_.selfDelayMs, k);
    fflush(stdout);
    usleep((useconds_t)(o_.selfDelayMs * 1000));
  }
  Plan p = planOp(o_, k, n_);
  fccltest::noteProgress(strf("op #%ld: ", k) + p.what(n_));  // named if this rank hangs or dies
  ++counts[(int)p.kind];
  if (p.kind == Kind::Program) calls += p.steps;
  switch (p.kind) {
    case Kind::Coll:
    case Kind::Group:
      return runColls(k, p);
    case Kind::Pairs:
      return runPairs(k, p);
    case Kind::Program:
      return runProgram(k, p);
  }
  return true;
}

void rankBody(const Options& o, const fcclUniqueId& id, int rank, int n) {
  fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
  config.timeoutMs = o.timeoutMs;
  config.commName = "soak";
  fcclComm_t comm = nullptr;
  fcclResult_t r = fcclCommInitRankConfig(&comm, n, id, rank, &config);
  if (r != fcclSuccess) {
    std::string text = fcclGetLastError(nullptr);
    printf("SOAK rank %d: error at op #-1 (fcclCommInitRankConfig): %s: %s\n", rank, resultName(r),
           text.c_str());
    fflush(stdout);
    fccltest::recordFailure(
        __FILE__, __LINE__,
        strf("%s op #-1 (fcclCommInitRankConfig): %s: ", kErrorMark, resultName(r)) + text);
    if (comm) fcclCommAbort(comm);
    return;
  }
  RankSoak soak(o, comm, rank, n);
  for (long k = 0; k < o.ops; ++k)
    if (!soak.runOp(k)) return;  // reported and aborted
  r = fcclCommDestroy(comm);
  if (r != fcclSuccess) {
    std::string text = fcclGetLastError(nullptr);
    printf("SOAK rank %d: error at op #%ld (fcclCommDestroy): %s: %s\n", rank, o.ops, resultName(r),
           text.c_str());
    fccltest::recordFailure(
        __FILE__, __LINE__,
        strf("%s op #%ld (fcclCommDestroy): %s: ", kErrorMark, o.ops, resultName(r)) + text);
    fflush(stdout);
    return;
  }
  printf("SOAK rank %d: ok, %ld ops\n", rank, o.ops);
  if (rank == 0)
    printf(
        "SOAK rank 0: mix: %ld single collectives, %ld groups, %ld send/recv pairs ops, %ld fused programs; "
        "%ld library calls on this rank\n",
        soak.counts[0], soak.counts[1], soak.counts[2], soak.counts[3], soak.calls);
  fflush(stdout);
}

// ---- The parent: classify the harness report ------------------------------------------------
struct ReportLine {
  int rank;
  std::string text;
};

std::vector<ReportLine> parseReport(const std::string& report) {
  std::vector<ReportLine> out;
  std::istringstream in(report);
  std::string line;
  while (std::getline(in, line)) {
    int rank = -1, used = 0;
    if (sscanf(line.c_str(), "rank %d: %n", &rank, &used) >= 1 && used > 0)
      out.push_back({rank, line.substr((size_t)used)});
    else
      out.push_back({-1, line});
  }
  return out;
}

bool namesRank(const std::string& text, int rank) {
  const std::string pat = strf("rank %d", rank);
  for (size_t at = text.find(pat); at != std::string::npos; at = text.find(pat, at + 1)) {
    size_t end = at + pat.size();
    if (end >= text.size() || !isdigit((unsigned char)text[end])) return true;
  }
  return false;
}

int classify(const Options& o, const fccltest::RunResult& rr) {
  if (rr.ok) {
    if (o.expectKilled >= 0) {
      printf("SOAK: --expect-killed %d, but every rank finished\n", o.expectKilled);
      return 5;
    }
    return 0;
  }
  std::vector<ReportLine> lines = parseReport(rr.report);
  // A wrong result: never acceptable. The line before our marker (same rank) has the details.
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].text.find(kMismatchMark) == std::string::npos) continue;
    printf("SOAK: FIRST MISMATCH: rank %d: %s\n", lines[i].rank, lines[i].text.c_str());
    if (i > 0 && lines[i - 1].rank == lines[i].rank &&
        lines[i - 1].text.find(kMismatchMark) == std::string::npos)
      printf("SOAK:   details: %s\n", lines[i - 1].text.c_str());
    return 2;
  }
  for (const ReportLine& l : lines) {
    if (l.text.find("timeout after") != std::string::npos) {
      printf("SOAK: a rank hung past the %d s deadline: %s\n", o.deadlineSec, l.text.c_str());
      return 4;
    }
  }
  if (o.expectKilled >= 0) {
    bool killed = false;
    std::vector<std::string> bad;
    for (const ReportLine& l : lines) {
      bool signal = l.text.find("killed by signal") != std::string::npos;
      if (l.rank == o.expectKilled) {
        killed = killed || signal;
        continue;
      }
      if (signal) bad.push_back(strf("rank %d: ", l.rank) + l.text);
      if (l.text.find(kErrorMark) != std::string::npos && !namesRank(l.text, o.expectKilled))
        bad.push_back(strf("rank %d: error does not name rank %d: ", l.rank, o.expectKilled) + l.text);
    }
    if (!killed) bad.push_back(strf("rank %d was not killed by a signal", o.expectKilled));
    for (const std::string& b : bad) printf("SOAK: expect-killed violated: %s\n", b.c_str());
    return bad.empty() ? 0 : 5;
  }
  return 3;
}

[[noreturn]] void usage(const char* msg) {
  fprintf(stderr,
          "fccl_soak: %s\nusage: fccl_soak [--ranks N] [--ops K] [--seed S] [--mode threads|processes]\n"
          "                 [--max-count C] [--programs 0|1] [--timeout-ms T] [--deadline-s D]\n"
          "                 [--expect-killed R] [--corrupt-op K] [--self-kill R:K]\n"
          "                 [--self-delay R:K:MS]\n",
          msg);
  exit(64);
}

long parseLong(const char* flag, const char* v, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  long x = strtol(v, &end, 0);
  if (errno || end == v || *end || x < lo || x > hi) usage(strf("bad value for %s: '%s'", flag, v).c_str());
  return x;
}

Options parseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    if (i + 1 >= argc) usage(("missing value for " + f).c_str());
    const char* v = argv[++i];
    if (f == "--ranks")
      o.ranks = (int)parseLong(argv[i - 1], v, 1, 64);
    else if (f == "--ops")
      o.ops = parseLong(argv[i - 1], v, 0, 1L << 40);
    else if (f == "--seed")
      o.seed = (uint64_t)parseLong(argv[i - 1], v, 0, LONG_MAX);
    else if (f == "--mode" && (std::string(v) == "threads" || std::string(v) == "processes"))
      o.mode = std::string(v) == "threads" ? Mode::Threads : Mode::Processes;
    else if (f == "--max-count")
      o.maxCount = (size_t)parseLong(argv[i - 1], v, 0, 1L << 26);
    else if (f == "--programs")
      o.programs = parseLong(argv[i - 1], v, 0, 1) != 0;
    else if (f == "--timeout-ms")
      o.timeoutMs = (int)parseLong(argv[i - 1], v, 1, 1L << 30);
    else if (f == "--deadline-s")
      o.deadlineSec = (int)parseLong(argv[i - 1], v, 1, 1L << 20);
    else if (f == "--self-kill") {
      if (sscanf(v, "%d:%ld", &o.selfKillRank, &o.selfKillOp) != 2 || o.selfKillRank < 0 || o.selfKillOp < 0)
        usage(strf("bad value for --self-kill: '%s' (want R:K)", v).c_str());
    } else if (f == "--self-delay") {
      if (sscanf(v, "%d:%ld:%ld", &o.selfDelayRank, &o.selfDelayOp, &o.selfDelayMs) != 3 ||
          o.selfDelayRank < 0 || o.selfDelayOp < 0 || o.selfDelayMs < 0 || o.selfDelayMs > 3600000)
        usage(strf("bad value for --self-delay: '%s' (want R:K:MS)", v).c_str());
    } else if (f == "--corrupt-op")
      o.corruptOp = parseLong(argv[i - 1], v, -1, 1L << 40);
    else if (f == "--expect-killed")
      o.expectKilled = (int)parseLong(argv[i - 1], v, -1, 63);
    else
      usage(("unknown flag or value: " + f + " " + v).c_str());
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parseArgs(argc, argv);
  setenv("FCCL_JIT", "0", 0);  // see the header; an explicit FCCL_JIT wins
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (o.programs) loadedPrograms();  // parse before forking: the children share the result
  printf("SOAK: %ld ops, %d ranks as %s, seed %" PRIu64 ", max count %zu, programs %d, timeout %d ms\n",
         o.ops, o.ranks, fccltest::modeName(o.mode), o.seed, o.maxCount, (int)o.programs, o.timeoutMs);
  auto t0 = std::chrono::steady_clock::now();
  fccltest::RunResult rr = fccltest::runRanksRaw(
      o.ranks, o.mode, [&o](const fcclUniqueId& id, int rank, int n) { rankBody(o, id, rank, n); },
      o.deadlineSec);
  double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!rr.report.empty()) printf("SOAK report:\n%s", rr.report.c_str());
  int code = classify(o, rr);
  printf("SOAK summary: ops %ld, ranks %d, mode %s, seed %" PRIu64 ", wall %.2f s, %.1f ops/s%s, exit %d\n",
         o.ops, o.ranks, fccltest::modeName(o.mode), o.seed, sec, sec > 0 ? (double)o.ops / sec : 0.0,
         rr.ok ? "" : " (some rank failed)", code);
  fflush(stdout);
  fflush(stderr);
  _exit(code);  // threads that hung are detached inside the library: no static destructors
}
