// enqueue.cc - the executor for host buffers: picks the algorithm (tuner), builds the
// algorithm context (connectors, scratch, operation tag, wait context) and runs it on the
// calling thread. Errors that leave peers mid-operation are recorded on the communicator.
#include "src/enqueue.h"
#include <algorithm>
#include <string>
#include "collectives/hooks.h"
#include "collectives/reduce_kernels.h"
#include "src/base/checks.h"
#include "src/base/error.h"
#include "src/callboard.h"
#include "src/fault.h"
#include "src/tuner.h"

namespace fccl {

namespace {

CallBoard* ownBoard(fcclComm* comm) { return comm->boards.empty() ? nullptr : comm->boards[comm->rank]; }

// The context of one operation. Collectives then publish their call (startCall); p2p batches
// do not (their sequence numbers are per pair of ranks, not shared by all).
CollContext makeContext(fcclComm* comm, CollKind kind) {
  CollContext ctx;
  ctx.rank = comm->rank;
  ctx.nranks = comm->nranks;
  ctx.conns = &comm->conns;
  ctx.chunkBytes = comm->tuning.chunkBytes;
  ctx.directBytes = comm->tuning.directMaxBytes;
  ctx.scratch = comm->scratch.data();
  ctx.wait.abortFlag = &comm->abortFlag;
  ctx.wait.timeoutMs = comm->timeoutMs;
  ctx.wait.spinLimit = comm->spinLimit;
  ctx.wait.rank = comm->rank;
  ctx.wait.opName = collName(kind);
  ctx.wait.opSeq = comm->opCount;
  ctx.wait.watch = &comm->monitor;
  ctx.direct = &comm->direct;
  ctx.directViews = comm->directViews.data();
  return ctx;
}

// Collective #opCount starts: its call goes on the board before any data moves, and its tag
// (a hash of the whole call) goes on every chunk, so ranks that disagree fail instead of
// combining the wrong data.
fcclResult_t startCall(fcclComm* comm, CollContext& ctx, const CollTask& t, Algo algo) {
  const CallWords call = packCall(t, int(algo), comm->programHash, comm->programName);
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

fcclResult_t runAlgo(fcclComm* comm, CollContext& ctx, const CollTask& t, Algo algo);

fcclResult_t runCollective(fcclComm* comm, const CollTask& t) {
  ++comm->opCount;
  CollContext ctx = makeContext(comm, t.kind);
  // An input still being produced is consumed chunk by chunk: only the ring waits per chunk.
  Algo algo = t.sendReady != nullptr ? Algo::Ring : chooseAlgo(comm, t);
  FCCL_TRACE_LOG(kLogColl, "%s #%llu count %zu type %s algo %s", collName(t.kind),
                 (unsigned long long)comm->opCount, t.count, dtypeName(t.type), algoName(algo));
  FCCL_CHECK(startCall(comm, ctx, t, algo));
  fcclResult_t res = runAlgo(comm, ctx, t, algo);
  if (res == fcclSuccess) boardFinish(ownBoard(comm), comm->opCount);
  return res;
}

fcclResult_t runAlgo(fcclComm* comm, CollContext& ctx, const CollTask& t, Algo algo) {
  if (algo == Algo::Direct) return runDirect(ctx, t);
  if (t.kind != CollKind::AlltoAll) return runRing(ctx, t);
  // AlltoAll beyond the direct size: n pairwise exchanges progressing together.
  const size_t blockBytes = t.count * dtypeSize(t.type);
  std::vector<CollTask> p2p;
  p2p.reserve(2 * comm->nranks);
  for (int p = 0; p < comm->nranks; ++p) {
    CollTask s = t, r = t;
    s.kind = CollKind::Send;
    s.send = static_cast<const char*>(t.send) + p * blockBytes;
    s.root = p;
    r.kind = CollKind::Recv;
    r.recv = static_cast<char*>(t.recv) + p * blockBytes;
    r.root = p;
    p2p.push_back(s);
    p2p.push_back(r);
  }
  return runP2p(ctx, p2p.data(), p2p.size());
}

}  // namespace

fcclResult_t commCheckUsable(fcclComm* comm, const char* api) {
  int err = comm->asyncError.load();
  if (err == fcclInProgress) {
    // A non-blocking init still running: wait for it here (the call is on the same comm).
    comm->joinInit();
    err = comm->asyncError.load();
  }
  if (comm->abortFlag.load() != 0)
    return setError(fcclInvalidUsage, "%s: rank %d: the communicator was aborted", api, comm->rank);
  if (err != fcclSuccess)
    return setError(static_cast<fcclResult_t>(err),
                    "%s: rank %d: the communicator failed earlier and cannot be used: %s", api, comm->rank,
                    comm->lastErrorText.c_str());
  return fcclSuccess;
}

fcclResult_t executeHooked(fcclComm* comm, const CollTask& task, FnHook& hook) {
  logSetRank(comm->rank);
  comm->activeCalls.fetch_add(1);
  ++comm->opCount;
  CollContext ctx = makeContext(comm, task.kind);
  fcclResult_t res = startCall(comm, ctx, task, Algo::Ring);
  if (res == fcclSuccess) res = runRingHooked(ctx, task, hook);
  if (res == fcclSuccess) boardFinish(ownBoard(comm), comm->opCount);
  // A hook failure happens after every chunk moved: peers are in step, the comm stays usable.
  if (res != fcclSuccess && res != hook.status) recordFailure(comm, res);
  comm->activeCalls.fetch_sub(1);
  return res;
}

fcclResult_t executeTasks(fcclComm* comm, const std::vector<CollTask>& tasks) {
  logSetRank(comm->rank);
  comm->activeCalls.fetch_add(1);
  fcclResult_t res = fcclSuccess;
  std::vector<CollTask> p2p;
  for (const CollTask& t : tasks)
    if (t.kind == CollKind::Send || t.kind == CollKind::Recv) p2p.push_back(t);
  if (!p2p.empty()) {
    // Point-to-point batches involve only some ranks, so they must not advance opCount (the
    // collective sequence every rank shares); they count separately.
    CollContext ctx = makeContext(comm, p2p[0].kind);
    ctx.wait.opSeq = ++comm->p2pCount;
    ctx.wait.opName = p2p.size() == 1 ? collName(p2p[0].kind) : "Send/Recv group";
    res = runP2p(ctx, p2p.data(), p2p.size());
  }
  for (size_t i = 0; i < tasks.size() && res == fcclSuccess; ++i)
    if (tasks[i].kind != CollKind::Send && tasks[i].kind != CollKind::Recv)
      res = runCollective(comm, tasks[i]);
  // Invalid usage detected before anything moved (a self-send without its receive) leaves the
  // communicator intact; anything else may have left peers mid-operation.
  if (res != fcclSuccess) recordFailure(comm, res);
  comm->activeCalls.fetch_sub(1);
  return res;
}

}  // namespace fccl
