// executor.cc - the host executor (plan.h): every operation of a plan on the calling thread,
// through one lifecycle - the algorithm context (connectors, scratch, wait context), the call
// published on the board and its wire tag, the algorithm the plan chose, the board's finish
// mark - and failures that leave peers mid-operation recorded on the communicator.
#include <string>
#include <vector>
#include "collectives/hooks.h"
#include "src/base/checks.h"
#include "src/base/debug.h"
#include "src/base/dtype.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "src/callboard.h"
#include "src/comm.h"
#include "src/fault.h"
#include "src/plan.h"

namespace fccl {

namespace {

CallBoard* ownBoard(fcclComm* comm) { return comm->boards.empty() ? nullptr : comm->boards[comm->rank]; }

// The context of one operation. Collectives then publish their call (startCall); p2p batches
// do not (their sequence numbers are per pair of ranks, not shared by all).
CollContext makeContext(fcclComm* comm, CollKind kind, size_t chunkBytes) {
  CollContext ctx;
  ctx.rank = comm->rank;
  ctx.nranks = comm->nranks;
  ctx.conns = &comm->conns;
  ctx.chunkBytes = chunkBytes;
  ctx.directBytes = comm->tuning.directMaxBytes;
  ctx.scratch = comm->scratch.data();
  ctx.wait.abortFlag = &comm->abortFlag;
  ctx.wait.timeoutMs = comm->timeoutMs;
  ctx.wait.spinLimit = comm->spinLimit;
  ctx.wait.rank = comm->rank;
  ctx.wait.opName = collName(kind);
  ctx.wait.opSeq = comm->opCount;
  ctx.wait.watch = &comm->monitor;
  if (!comm->driver.transports.empty()) ctx.wait.driver = &comm->driver;
  ctx.direct = &comm->direct;
  ctx.directViews = comm->directViews.data();
  return ctx;
}

// Collective #opCount starts: its call goes on the board before any data moves, and its tag
// (a hash of the whole call) goes on every chunk, so ranks that disagree fail instead of
// combining the wrong data.
fcclResult_t startCall(fcclComm* comm, CollContext& ctx, const PlanOp& op) {
  const CollTask& t = op.task;
  const CallWords call = packCall(t, int(op.algo), comm->programHash, comm->programName);
  ctx.tag = callTag(call, comm->opCount);
  ctx.wait.compareCalls = true;
  boardPublish(ownBoard(comm), comm->opCount, call);
  return comm->faultsArmed ? faultPoint(comm, comm->opCount, collName(t.kind)) : fcclSuccess;
}

// The communicator is unusable from now on; peers learn why from the board (the first failure's
// origin and sentence, so a chain of ranks stopping reports the rank that started it).
fcclResult_t recordFailure(fcclComm* comm, fcclResult_t res) {
  if (res == fcclSuccess) return res;
  int expected = fcclSuccess;
  if (!comm->asyncError.compare_exchange_strong(expected, res)) return res;
  comm->lastErrorText = lastError();
  int origin = comm->rank;
  std::string text = comm->lastErrorText;
  const int peer = comm->failedPeer.load() - 1;
  if (peer >= 0 && peer < comm->nranks) {
    int peerOrigin = -1;
    std::string peerText;
    if (comm->boards[peer] != nullptr &&
        boardState(comm->boards[peer], &peerOrigin, &peerText) != BoardState::Running) {
      origin = peerOrigin >= 0 ? peerOrigin : peer;
      text = peerText;
    }
  }
  boardSetState(ownBoard(comm), BoardState::Failed, origin, text);
  return res;
}

// AlltoAll beyond the direct size: n pairwise exchanges progressing together.
fcclResult_t runAlltoAll(fcclComm* comm, CollContext& ctx, const CollTask& t) {
  const std::vector<CollTask> p2p = alltoAllAsP2p(t, comm->nranks);
  return runP2p(ctx, p2p.data(), p2p.size());
}

fcclResult_t runOp(fcclComm* comm, CollContext& ctx, const PlanOp& op) {
  if (op.algo == Algo::Direct) return runDirect(ctx, op.task);
  if (op.algo == Algo::Exchange) return runExchangeAllReduce(ctx, op.task);
  if (op.hook != nullptr) return runRingHooked(ctx, op.task, *op.hook);
  if (op.task.kind == CollKind::AlltoAll) return runAlltoAll(comm, ctx, op.task);
  const Rings& r = comm->rings;
  if (op.algo == Algo::Hier) {
    const RingView local{r.local.data(), int(r.local.size()), r.localPos};
    const RingView cross{r.cross.data(), int(r.cross.size()), r.crossPos};
    if (!comm->hierLogged) {
      comm->hierLogged = true;
      FCCL_INFO(kLogTuning, "AllReduce of %zu elements: two-level (%zu ranks per host, %d hosts; %s)",
                op.task.count, r.local.size(), r.nhosts, env().algo.empty() ? "cost model" : "FCCL_ALGO");
    }
    return runHierAllReduce(ctx, op.task, local, cross);
  }
  // The ring grouped by host, where the placement of results does not follow ring positions
  // (ReduceScatter and AllGather blocks, and a fused program's slices, are by rank).
  const CollKind k = op.task.kind;
  if (!r.flatIsRankOrder && (k == CollKind::AllReduce || k == CollKind::Broadcast || k == CollKind::Reduce)) {
    ctx.ring = r.flat.data();
    ctx.rank = r.flatPos;
  }
  return runRing(ctx, op.task);
}

// Collective #opCount: published, run, marked finished.
fcclResult_t runCollective(fcclComm* comm, const PlanOp& op) {
  ++comm->opCount;
  CollContext ctx = makeContext(comm, op.task.kind, op.chunkBytes);
  FCCL_TRACE_LOG(kLogColl, "%s #%llu count %zu type %s algo %s", collName(op.task.kind),
                 (unsigned long long)comm->opCount, op.task.count, dtypeName(op.task.type),
                 algoName(op.algo));
  FCCL_CHECK(startCall(comm, ctx, op));
  fcclResult_t res = runOp(comm, ctx, op);
  if (res == fcclSuccess) boardFinish(ownBoard(comm), comm->opCount);
  return res;
}

class HostExecutor final : public Executor {
 public:
  fcclResult_t run(fcclComm* comm, const Plan& plan) override {
    logSetRank(comm->rank);
    comm->activeCalls.fetch_add(1);
    fcclResult_t res = fcclSuccess;
    if (!plan.p2p.empty()) {
      // Point-to-point batches involve only some ranks, so they must not advance opCount (the
      // collective sequence every rank shares); they count separately.
      CollContext ctx = makeContext(comm, plan.p2p[0].kind, comm->tuning.chunkBytes);
      ctx.wait.opSeq = ++comm->p2pCount;
      ctx.wait.opName = plan.p2pName;
      res = runP2p(ctx, plan.p2p.data(), plan.p2p.size());
    }
    const FnHook* failedHook = nullptr;
    for (size_t i = 0; i < plan.colls.size() && res == fcclSuccess; ++i) {
      res = runCollective(comm, plan.colls[i]);
      if (res != fcclSuccess && plan.colls[i].hook != nullptr && res == plan.colls[i].hook->status)
        failedHook = plan.colls[i].hook;
    }
    // A hook's failure happens after every chunk moved: peers are in step, the comm stays
    // usable. Anything else may have left peers mid-operation.
    if (res != fcclSuccess && failedHook == nullptr) recordFailure(comm, res);
    comm->driver.kick();  // sends posted last go out now, not at the progress thread's next nap
    comm->activeCalls.fetch_sub(1);
    return res;
  }
};

}  // namespace

Executor& hostExecutor() {
  static HostExecutor e;
  return e;
}

}  // namespace fccl
