// argcheck.cc - see argcheck.h. Order matters: the communicator first (it gives the rank for
// later messages), then scalars, then pointers, so no pointer is read before it is known valid.
#include "src/argcheck.h"
#include <cmath>
#include <cstdint>
#include "collectives/ready.h"
#include "collectives/reduce_kernels.h"
#include "fusion/exec/pointwise.h"
#include "src/base/checks.h"
#include "src/base/error.h"
#include "src/cuda/device_comm.h"
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
  FCCL_CHECK(deviceCheckStream(api, comm, stream));
  t->stream = stream;
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
      t->premulInDevice = u.residence == fcclScalarDevice;
      // On a device communicator a fcclScalarDevice scalar is read by the kernel: device memory.
      if (t->premulInDevice && comm->cudaDev >= 0)
        FCCL_CHECK(deviceCheckBuffer(api, comm, "the PreMulSum scalar", u.pointer));
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
  // Host memory for a host communicator, its device's memory for a device communicator.
  if (t->count > 0 && needSend) FCCL_CHECK(deviceCheckBuffer(api, comm, "sendbuff", t->send));
  if (t->count > 0 && needRecv && t->recv != t->send)
    FCCL_CHECK(deviceCheckBuffer(api, comm, "recvbuff", t->recv));

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

fcclResult_t checkProgramArgs(const char* api, const fcclComm* comm, const ir::Program& p,
                              const fcclTensorBinding_t* tensors, int ntensors,
                              const fcclScalarBinding_t* scalars, int nscalars, fusion::Bindings* b,
                              std::vector<int64_t>* counts) {
  const int rank = comm->rank;
  if ((ntensors > 0 && tensors == nullptr) || ntensors < 0 || (nscalars > 0 && scalars == nullptr) ||
      nscalars < 0)
    return setError(fcclInvalidArgument, "%s: rank %d: binding arrays and counts disagree", api, rank);
  b->rank = rank;
  b->nranks = comm->nranks;
  b->tensors.assign(p.vars.size(), fusion::TensorBinding{});
  b->scalars.assign(p.vars.size(), 0.0);
  std::vector<int64_t> symbols(p.symbols.size(), -1);
  counts->assign(p.vars.size(), 1);
  std::vector<const fcclTensorBinding_t*> byVar(p.vars.size(), nullptr);
  std::vector<bool> scalarBound(p.vars.size(), false);

  for (int i = 0; i < ntensors; ++i) {
    const char* name = tensors[i].name ? tensors[i].name : "";
    int v = p.findVar(name);
    if (v < 0 || !p.vars[v].isTensorDecl() || p.vars[v].isScalar())
      return setError(fcclInvalidArgument, "%s: rank %d: program '%s' has no tensor named '%s'", api, rank,
                      p.name.c_str(), name);
    if (byVar[v] != nullptr)
      return setError(fcclInvalidArgument, "%s: rank %d: tensor '%s' is bound twice", api, rank, name);
    byVar[v] = &tensors[i];
  }
  for (int i = 0; i < nscalars; ++i) {
    const char* name = scalars[i].name ? scalars[i].name : "";
    int v = p.findVar(name);
    if (v < 0 || !isProgramScalarInput(p.vars[v]))
      return setError(fcclInvalidArgument, "%s: rank %d: program '%s' has no scalar input named '%s'", api,
                      rank, p.name.c_str(), name);
    if (scalarBound[v])
      return setError(fcclInvalidArgument, "%s: rank %d: scalar '%s' is bound twice", api, rank, name);
    scalarBound[v] = true;
    double x = scalars[i].value;
    // Integer scalars take integer values (a step count of 3.5 is a mistake, not a rounding).
    if (ir::isInteger(p.vars[v].dtype) && x != std::floor(x))
      return setError(fcclInvalidArgument, "%s: rank %d: scalar '%s' is %s but was given %g", api, rank, name,
                      ir::dtypeName(p.vars[v].dtype), x);
    b->scalars[v] = x;
  }
  // Shape symbols come from the counts of tensors whose shape has exactly one symbol.
  for (size_t v = 0; v < p.vars.size(); ++v) {
    const ir::Var& var = p.vars[v];
    if (!var.isTensorDecl() || var.isScalar()) continue;
    if (byVar[v] == nullptr)
      return setError(fcclInvalidArgument, "%s: rank %d: tensor '%s' of program '%s' is not bound", api, rank,
                      var.name.c_str(), p.name.c_str());
    int sym = -1, nsyms = 0;
    int64_t constant = 1;
    for (const ir::Dim& d : var.shape) {
      if (d.sym >= 0)
        sym = d.sym, ++nsyms;
      else
        constant *= d.size;
    }
    size_t count = byVar[v]->count;
    if (nsyms == 1 && constant > 0 && symbols[sym] < 0) {
      if (count % size_t(constant) != 0)
        return setError(fcclInvalidArgument, "%s: rank %d: tensor '%s' is %s but was bound with %zu elements",
                        api, rank, var.name.c_str(), ir::shapeString(p, var.shape).c_str(), count);
      symbols[sym] = int64_t(count / size_t(constant));
    }
  }
  for (size_t s = 0; s < p.symbols.size(); ++s)
    if (symbols[s] < 0)
      return setError(fcclInvalidArgument,
                      "%s: rank %d: cannot tell %s from the bound tensors (bind a tensor "
                      "whose shape is [%s])",
                      api, rank, p.symbols[s].c_str(), p.symbols[s].c_str());
  for (size_t v = 0; v < p.vars.size(); ++v) {
    int64_t n = 1;
    for (const ir::Dim& d : p.vars[v].shape) n *= d.sym >= 0 ? symbols[d.sym] : d.size;
    (*counts)[v] = n;
  }
  for (size_t v = 0; v < p.vars.size(); ++v) {
    const ir::Var& var = p.vars[v];
    if (isProgramScalarInput(var) && !scalarBound[v])
      return setError(fcclInvalidArgument, "%s: rank %d: scalar '%s' of program '%s' is not bound", api, rank,
                      var.name.c_str(), p.name.c_str());
    if (!var.isTensorDecl() || var.isScalar()) continue;
    if (int64_t(byVar[v]->count) != (*counts)[v])
      return setError(fcclInvalidArgument,
                      "%s: rank %d: tensor '%s' is %s = %lld elements but was bound with %zu", api, rank,
                      var.name.c_str(), ir::shapeString(p, var.shape).c_str(), (long long)(*counts)[v],
                      byVar[v]->count);
    ir::SliceRange r = var.layout == ir::Layout::Sliced ? ir::sliceRange((*counts)[v], rank, comm->nranks)
                                                        : ir::SliceRange{0, (*counts)[v]};
    if (r.size() > 0 && byVar[v]->data == nullptr)
      return setError(fcclInvalidArgument, "%s: rank %d: tensor '%s' is bound to NULL", api, rank,
                      var.name.c_str());
    b->tensors[v] = fusion::TensorBinding{byVar[v]->data, r.begin};
  }
  return fcclSuccess;
}

}  // namespace fccl
