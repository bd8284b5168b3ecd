// pipeline_api.cc - the pipeline-parallel stage boundary (fccl.h): an allreduce in tpComm whose
// result goes to the next stage sliced. The sender reduce-scatters over the sliced partition
// (CollKind::ReduceScatterSliced) and sends a header and its slice to its peer on ppComm; the
// receiver checks the header, receives the slice in place in recvbuff and all-gathers it
// (CollKind::AllGatherSliced) in its own tpComm. Both go through executeTasks, not the group
// recorder: the three steps depend on each other.
#include <algorithm>
#include <cstdint>
#include <new>
#include <vector>
#include "collectives/reduce_kernels.h"
#include "src/argcheck.h"
#include "src/base/checks.h"
#include "src/base/error.h"
#include "src/enqueue.h"
#include "src/pipeline_wire.h"

using namespace fccl;

namespace {

CollTask p2pTask(CollKind kind, const void* buf, size_t bytes, int peer) {
  CollTask t;
  t.kind = kind;
  t.send = kind == CollKind::Send ? buf : nullptr;
  t.recv = kind == CollKind::Recv ? const_cast<void*>(buf) : nullptr;
  t.count = bytes;
  t.type = fcclUint8;
  t.op = fcclSum;
  t.root = peer;
  return t;
}

// Both communicators given, distinct, and no group open: the checks before checkTask.
fcclResult_t checkComms(const char* api, fcclComm* tp, fcclComm* pp) {
  if (tp == nullptr) return setError(fcclInvalidArgument, "%s: tpComm is NULL", api);
  if (pp == nullptr) return setError(fcclInvalidArgument, "%s: ppComm is NULL", api);
  if (tp == pp)
    return setError(fcclInvalidArgument, "%s: rank %d: tpComm and ppComm must be different communicators",
                    api, tp->rank);
  if (groupOpen())
    return setError(fcclInvalidUsage, "%s: rank %d: cannot be called inside fcclGroupStart/fcclGroupEnd", api,
                    tp->rank);
  return fcclSuccess;
}

fcclResult_t allReduceSendSliced(const void* sendbuff, size_t count, fcclDataType_t type, fcclRedOp_t op,
                                 int peer, fcclComm* tp, fcclComm* pp, fcclStream_t stream) {
  const char* api = "fcclAllReduceSendSliced";
  FCCL_CHECK(checkComms(api, tp, pp));
  // The reduction is checked as the in-place allreduce it replaces (op, avg divisor, PreMulSum
  // of tpComm), the boundary as the send it replaces.
  CollTask rs;
  rs.kind = CollKind::AllReduce;
  rs.send = sendbuff;
  rs.recv = const_cast<void*>(sendbuff);
  rs.count = count;
  rs.type = type;
  rs.op = op;
  FCCL_CHECK(checkTask(api, tp, stream, &rs));
  CollTask send = p2pTask(CollKind::Send, sendbuff, count, peer);
  send.type = type;
  FCCL_CHECK(checkTask(api, pp, stream, &send));

  const size_t elem = dtypeSize(type);
  const PipeRange own = pipeSliceOf(count, tp->rank, tp->nranks);
  std::vector<char> slice((own.end - own.begin) * elem + 1);
  rs.kind = CollKind::ReduceScatterSliced;
  rs.recv = slice.data();
  FCCL_CHECK(executeTasks(tp, {rs}));

  const PipeHeader h{kPipeMagic, count, uint64_t(type), uint64_t(tp->nranks), uint64_t(tp->rank)};
  return executeTasks(pp, {p2pTask(CollKind::Send, &h, sizeof h, peer),
                           p2pTask(CollKind::Send, slice.data(), (own.end - own.begin) * elem, peer)});
}

fcclResult_t recvAllGather(void* recvbuff, size_t count, fcclDataType_t type, int peer, fcclComm* tp,
                           fcclComm* pp, fcclStream_t stream) {
  const char* api = "fcclRecvAllGather";
  FCCL_CHECK(checkComms(api, tp, pp));
  CollTask recv = p2pTask(CollKind::Recv, recvbuff, count, peer);
  recv.type = type;
  FCCL_CHECK(checkTask(api, pp, stream, &recv));
  CollTask ag;
  ag.kind = CollKind::AllReduce;  // checked as the in-place collective on tpComm
  ag.send = recvbuff;
  ag.recv = recvbuff;
  ag.count = count;
  ag.type = type;
  ag.op = fcclSum;
  FCCL_CHECK(checkTask(api, tp, stream, &ag));

  PipeHeader h{};
  FCCL_CHECK(executeTasks(pp, {p2pTask(CollKind::Recv, &h, sizeof h, peer)}));
  const PipeCheck verdict = pipeCheckHeader(h, count, type, tp->rank, tp->nranks);
  if (verdict.kind == PipeCheck::kNotPipe)
    return setError(fcclInvalidUsage,
                    "%s: rank %d: ppComm peer %d did not call fcclAllReduceSendSliced (its message has no "
                    "pipeline header)",
                    api, pp->rank, peer);
  const size_t elem = dtypeSize(type);
  const PipeRange own = pipeSliceOf(count, tp->rank, tp->nranks);
  if (verdict.kind == PipeCheck::kMismatch) {
    // Take the sender's slice off ppComm all the same (the header gives its size), so both
    // communicators stay usable, then say what differs.
    if (verdict.drainBytes != SIZE_MAX) {
      std::vector<char> drain(verdict.drainBytes + 1);
      FCCL_CHECK(executeTasks(pp, {p2pTask(CollKind::Recv, drain.data(), verdict.drainBytes, peer)}));
    }
    return setError(
        fcclInvalidUsage,
        "%s: rank %d: the sender (ppComm peer %d) sent count %llu of %s from tp rank %llu of %llu, "
        "but this call receives count %zu of %s as tp rank %d of %d%s",
        api, pp->rank, peer, (unsigned long long)h.count,
        h.type < uint64_t(fcclNumTypes) ? dtypeName(static_cast<fcclDataType_t>(h.type)) : "?",
        (unsigned long long)h.tpRank, (unsigned long long)h.tpSize, count, dtypeName(type), tp->rank,
        tp->nranks,
        verdict.drainBytes == SIZE_MAX ? " (its slice, of no size this call can take, is left on ppComm)"
                                       : "");
  }
  char* mine = static_cast<char*>(recvbuff) + own.begin * elem;
  FCCL_CHECK(executeTasks(pp, {p2pTask(CollKind::Recv, mine, (own.end - own.begin) * elem, peer)}));
  ag.kind = CollKind::AllGatherSliced;
  ag.send = mine;  // in place: the slice already sits at its position in recvbuff
  return executeTasks(tp, {ag});
}

template <class F>
fcclResult_t guarded(const char* api, F f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return setError(fcclSystemError, "%s: out of memory", api);
  } catch (...) {
    return setError(fcclInternalError, "%s: unexpected internal exception", api);
  }
}

}  // namespace

extern "C" {

FCCL_API fcclResult_t fcclAllReduceSendSliced(const void* sendbuff, size_t count, fcclDataType_t datatype,
                                              fcclRedOp_t op, int peer, fcclComm_t tpComm, fcclComm_t ppComm,
                                              fcclStream_t stream) {
  return guarded("fcclAllReduceSendSliced", [&] {
    return allReduceSendSliced(sendbuff, count, datatype, op, peer, tpComm, ppComm, stream);
  });
}

FCCL_API fcclResult_t fcclRecvAllGather(void* recvbuff, size_t count, fcclDataType_t datatype, int peer,
                                        fcclComm_t tpComm, fcclComm_t ppComm, fcclStream_t stream) {
  return guarded("fcclRecvAllGather",
                 [&] { return recvAllGather(recvbuff, count, datatype, peer, tpComm, ppComm, stream); });
}

}  // extern "C"
