// argcheck.cc - see argcheck.h. Order matters: the communicator first (it gives the rank for
// later messages), then scalars, then pointers, so no pointer is read before it is known valid.
#include "src/argcheck.h"
#include <cstdint>
#include "collectives/ready.h"
#include "collectives/reduce_kernels.h"
#include "src/base/checks.h"
#include "src/base/error.h"
#include "src/enqueue.h"

namespace fccl {

namespace {

bool reduces(CollKind k) {
  return k == CollKind::AllReduce || k == CollKind::Reduce || k == CollKind::ReduceScatter;
}

bool overlaps(const void* a, size_t aBytes, const void* b, size_t bBytes) {
  auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return aBytes > 0 && bBytes > 0 && x < y + bBytes && y < x + aBytes;
}

}  // namespace

fcclResult_t checkComm(const char* api, const fcclComm* comm) {
  if (comm == nullptr) return setError(fcclInvalidArgument, "%s: comm is NULL", api);
  return fcclSuccess;
}

fcclResult_t checkTask(const char* api, fcclComm* comm, fcclStream_t stream, CollTask* t) {
  FCCL_CHECK(checkComm(api, comm));
  logSetRank(comm->rank);
  FCCL_CHECK(commCheckUsable(comm, api));
  const int rank = comm->rank, n = comm->nranks;
  if (stream != nullptr)
    return setError(
        fcclInvalidArgument,
        "%s: rank %d: stream must be NULL for host buffers (device buffers are not supported yet)", api,
        rank);
  if (static_cast<unsigned>(t->type) >= fcclNumTypes)
    return setError(fcclInvalidArgument, "%s: rank %d: datatype %d is not a valid fcclDataType_t", api, rank,
                    static_cast<int>(t->type));
  const size_t elem = dtypeSize(t->type);

  if (reduces(t->kind)) {
    int op = static_cast<int>(t->op);
    if (op >= 0 && op < fcclNumOps) {
      if (t->op == fcclAvg) {
        t->avgDivisor = n;
        t->op = fcclSum;
      }
    } else {
      size_t idx = static_cast<size_t>(op) - fcclNumOps;
      if (op < 0 || idx >= comm->userOps.size() || !comm->userOps[idx].inUse)
        return setError(fcclInvalidArgument,
                        "%s: rank %d: op %d is neither a built-in reduction nor one created "
                        "by fcclRedOpCreatePreMulSum on this communicator",
                        api, rank, op);
      const UserRedOp& u = comm->userOps[idx];
      if (u.type != t->type)
        return setError(fcclInvalidArgument,
                        "%s: rank %d: op %d was created for datatype %s but the call uses %s", api, rank, op,
                        dtypeName(u.type), dtypeName(t->type));
      t->premulScalar =
          u.residence == fcclScalarHostImmediate ? static_cast<const void*>(u.value) : u.pointer;
      t->op = fcclSum;
    }
  }

  const bool rooted = t->kind == CollKind::Reduce || t->kind == CollKind::Broadcast;
  const bool p2p = t->kind == CollKind::Send || t->kind == CollKind::Recv;
  if ((rooted || p2p) && (t->root < 0 || t->root >= n))
    return setError(fcclInvalidArgument, "%s: rank %d: %s %d is out of range [0, %d)", api, rank,
                    p2p ? "peer" : "root", t->root, n);

  // Elements each buffer holds: blocks of count for the scattered / gathered side.
  const bool blocked =
      t->kind == CollKind::ReduceScatter || t->kind == CollKind::AllGather || t->kind == CollKind::AlltoAll;
  if (elem != 0 && t->count > SIZE_MAX / elem / (blocked ? size_t(n) : 1))
    return setError(fcclInvalidArgument, "%s: rank %d: count %zu of %s overflows the address space%s", api,
                    rank, t->count, dtypeName(t->type), blocked ? " once multiplied by nranks" : "");
  size_t sendElems = t->count, recvElems = t->count;
  if (t->kind == CollKind::ReduceScatter || t->kind == CollKind::AlltoAll) sendElems *= n;
  if (t->kind == CollKind::AllGather || t->kind == CollKind::AlltoAll) recvElems *= n;
  const size_t sendBytes = sendElems * elem, recvBytes = recvElems * elem;
  if (t->sendReady != nullptr && t->sendReady->count < t->count)
    return setError(fcclInvalidArgument, "%s: rank %d: sendReady tracks %zu elements, fewer than count %zu",
                    api, rank, t->sendReady->count, t->count);

  bool needSend = t->kind != CollKind::Recv && (t->kind != CollKind::Broadcast || rank == t->root);
  bool needRecv = t->kind != CollKind::Send && (t->kind != CollKind::Reduce || rank == t->root);
  if (t->count > 0 && needSend && t->send == nullptr)
    return setError(fcclInvalidArgument, "%s: rank %d: sendbuff is NULL with count %zu", api, rank, t->count);
  if (t->count > 0 && needRecv && t->recv == nullptr)
    return setError(fcclInvalidArgument, "%s: rank %d: recvbuff is NULL with count %zu", api, rank, t->count);

  // In place is exactly one position (fccl.h); any other overlap would corrupt the input
  // while it is still being read.
  if (needSend && needRecv && !p2p) {
    const char* s = static_cast<const char*>(t->send);
    const char* r = static_cast<const char*>(t->recv);
    const char* inPlaceSend = r;  // AllReduce, Reduce, Broadcast
    if (t->kind == CollKind::ReduceScatter) inPlaceSend = r - size_t(rank) * t->count * elem;
    if (t->kind == CollKind::AllGather) inPlaceSend = r + size_t(rank) * t->count * elem;
    bool inPlace = t->kind != CollKind::AlltoAll && s == inPlaceSend;
    if (!inPlace && overlaps(s, sendBytes, r, recvBytes))
      return setError(fcclInvalidArgument,
                      t->kind == CollKind::AlltoAll
                          ? "%s: rank %d: sendbuff and recvbuff overlap; AlltoAll cannot run in place"
                          : "%s: rank %d: sendbuff and recvbuff overlap but are not in the in-place position",
                      api, rank);
  }
  return fcclSuccess;
}

}  // namespace fccl
