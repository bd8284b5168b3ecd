// collectives_api.cc - the exported collective and point-to-point calls: build the task,
// check it (argcheck.cc), hand it to the executor (enqueue.cc). One guard per entry point
// keeps C++ exceptions (std::bad_alloc) from crossing the C boundary.
#include "src/argcheck.h"
#include "src/base/checks.h"
#include "src/base/error.h"
#include "src/enqueue.h"

using namespace fccl;

namespace {

fcclResult_t submit(const char* api, fcclComm* comm, fcclStream_t stream, CollTask t) {
  try {
    FCCL_CHECK(checkTask(api, comm, stream, &t));
    return enqueueTask(comm, t);
  } catch (const std::bad_alloc&) {
    return setError(fcclSystemError, "%s: out of memory", api);
  } catch (...) {
    return setError(fcclInternalError, "%s: unexpected internal exception", api);
  }
}

CollTask task(CollKind kind, const void* send, void* recv, size_t count, fcclDataType_t type, fcclRedOp_t op,
              int root) {
  CollTask t;
  t.kind = kind;
  t.send = send;
  t.recv = recv;
  t.count = count;
  t.type = type;
  t.op = op;
  t.root = root;
  return t;
}

}  // namespace

extern "C" {

FCCL_API fcclResult_t fcclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                                    fcclDataType_t datatype, fcclRedOp_t op, fcclComm_t comm,
                                    fcclStream_t stream) {
  return submit("fcclAllReduce", comm, stream,
                task(CollKind::AllReduce, sendbuff, recvbuff, count, datatype, op, 0));
}

FCCL_API fcclResult_t fcclAllReduceOverlap(const void* sendbuff, void* recvbuff, size_t count,
                                           fcclDataType_t datatype, fcclRedOp_t op, fcclReady_t sendReady,
                                           fcclComm_t comm, fcclStream_t stream) {
  if (sendReady == nullptr) return setError(fcclInvalidArgument, "fcclAllReduceOverlap: sendReady is NULL");
  CollTask t = task(CollKind::AllReduce, sendbuff, recvbuff, count, datatype, op, 0);
  t.sendReady = sendReady;
  return submit("fcclAllReduceOverlap", comm, stream, t);
}

FCCL_API fcclResult_t fcclReduce(const void* sendbuff, void* recvbuff, size_t count, fcclDataType_t datatype,
                                 fcclRedOp_t op, int root, fcclComm_t comm, fcclStream_t stream) {
  return submit("fcclReduce", comm, stream,
                task(CollKind::Reduce, sendbuff, recvbuff, count, datatype, op, root));
}

FCCL_API fcclResult_t fcclBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                                    fcclDataType_t datatype, int root, fcclComm_t comm, fcclStream_t stream) {
  return submit("fcclBroadcast", comm, stream,
                task(CollKind::Broadcast, sendbuff, recvbuff, count, datatype, fcclSum, root));
}

FCCL_API fcclResult_t fcclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                        fcclDataType_t datatype, fcclRedOp_t op, fcclComm_t comm,
                                        fcclStream_t stream) {
  return submit("fcclReduceScatter", comm, stream,
                task(CollKind::ReduceScatter, sendbuff, recvbuff, recvcount, datatype, op, 0));
}

FCCL_API fcclResult_t fcclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                                    fcclDataType_t datatype, fcclComm_t comm, fcclStream_t stream) {
  return submit("fcclAllGather", comm, stream,
                task(CollKind::AllGather, sendbuff, recvbuff, sendcount, datatype, fcclSum, 0));
}

FCCL_API fcclResult_t fcclAlltoAll(const void* sendbuff, void* recvbuff, size_t count,
                                   fcclDataType_t datatype, fcclComm_t comm, fcclStream_t stream) {
  return submit("fcclAlltoAll", comm, stream,
                task(CollKind::AlltoAll, sendbuff, recvbuff, count, datatype, fcclSum, 0));
}

FCCL_API fcclResult_t fcclSend(const void* sendbuff, size_t count, fcclDataType_t datatype, int peer,
                               fcclComm_t comm, fcclStream_t stream) {
  return submit("fcclSend", comm, stream,
                task(CollKind::Send, sendbuff, nullptr, count, datatype, fcclSum, peer));
}

FCCL_API fcclResult_t fcclRecv(void* recvbuff, size_t count, fcclDataType_t datatype, int peer,
                               fcclComm_t comm, fcclStream_t stream) {
  return submit("fcclRecv", comm, stream,
                task(CollKind::Recv, nullptr, recvbuff, count, datatype, fcclSum, peer));
}

}  // extern "C"
