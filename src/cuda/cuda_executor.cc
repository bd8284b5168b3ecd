// cuda_executor.cc - the executor of device communicators (src/plan.h): every collective of a
// plan becomes one kernel launch on the call's stream, NCCL's semantics (the call returns once
// it is enqueued; completion is stream-ordered). The kernel is the collective's ring template
// over the device primitives, generated for the element type and operator and compiled with
// NVRTC for the device's architecture the first time it is needed (fusion/codegen/ring_kernel.h),
// then kept per context for the life of the process.
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "fusion/codegen/nvrtc_compile.h"
#include "fusion/codegen/ring_kernel.h"
#include "src/base/checks.h"
#include "src/base/debug.h"
#include "src/base/dtype.h"
#include "src/base/error.h"
#include "src/comm.h"
#include "src/cuda/device_state.h"
#include "src/plan.h"

namespace fccl::cuda {

namespace {

using fusion::codegen::RingColl;
using fusion::codegen::RingKernelKey;

// Loaded kernels, per context and kernel name. A module is never unloaded: kernels are few
// (one per collective, type and operator used) and the primary context outlives communicators.
struct KernelCache {
  std::mutex mu;
  std::map<std::tuple<CUcontext, std::string>, CUfunction> kernels;
};

KernelCache& kernelCache() {
  static KernelCache* c = new KernelCache();  // never destroyed: used until the process exits
  return *c;
}

// The kernel `name` loaded in dc's context, compiled by `compile` (an NVRTC call for an arch)
// the first time.
template <class Compile>
fcclResult_t loadKernel(fcclComm* comm, DeviceComm* dc, const std::string& name, Compile&& compile,
                        CUfunction* fn) {
  KernelCache& c = kernelCache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.kernels.find({dc->ctx, name});
  if (it != c.kernels.end()) {
    *fn = it->second;
    return fcclSuccess;
  }
  const std::string arch = "sm_" + std::to_string(dc->ccMajor) + std::to_string(dc->ccMinor);
  std::string image, log;
  const uint64_t t0 = nowNs();
  if (!compile(arch, &image, &log))
    return setError(fcclInternalError, "rank %d: compiling kernel %s for %s with NVRTC failed: %s",
                    comm->rank, name.c_str(), arch.c_str(), log.c_str());
  const Driver& d = *dc->d;
  CUmodule module = nullptr;
  CUresult r = d.moduleLoadData(&module, image.data());
  if (r == CUDA_SUCCESS) r = d.moduleGetFunction(fn, module, name.c_str());
  if (r != CUDA_SUCCESS)
    return setError(fcclUnhandledCudaError, "rank %d: loading kernel %s on CUDA device %d: %s", comm->rank,
                    name.c_str(), dc->device, resultText(d, r).c_str());
  c.kernels[{dc->ctx, name}] = *fn;
  FCCL_INFO(kLogColl, "rank %d: kernel %s compiled for %s in %.0f ms", comm->rank, name.c_str(), arch.c_str(),
            (nowNs() - t0) / 1e6);
  return fcclSuccess;
}

fcclResult_t kernelFor(fcclComm* comm, DeviceComm* dc, const RingKernelKey& key, CUfunction* fn) {
  const std::string name = fusion::codegen::ringKernelName(key);
  if (name.empty())
    return setError(fcclInvalidArgument, "rank %d: no device kernel for datatype %s with this operator",
                    comm->rank, dtypeName(key.type));
  return loadKernel(
      comm, dc, name,
      [&](const std::string& arch, std::string* image, std::string* log) {
        return fusion::codegen::compileRingKernel(key, arch, image, log);
      },
      fn);
}

// Launches fn on s after this rank's previous kernel. A channel's FIFO steps carry from kernel
// to kernel: a launch on another stream than the last one waits for it, so this rank's kernels
// never overlap (NCCL orders its own the same way).
fcclResult_t launchOrdered(fcclComm* comm, DeviceComm* dc, const char* name, CUfunction fn, unsigned ctas,
                           CUstream s, void* args) {
  const Driver& d = *dc->d;
  void* params[] = {args};
  CUresult r = CUDA_SUCCESS;
  if (dc->launched && s != dc->lastStream) r = d.streamWaitEvent(s, dc->lastWork, 0);
  if (r == CUDA_SUCCESS)
    r = d.launchKernel(fn, ctas, 1, 1, unsigned(dev::kDevThreads), 1, 1, 0, s, params, nullptr);
  if (r == CUDA_SUCCESS) r = d.eventRecord(dc->lastWork, s);
  dc->lastStream = s;
  dc->launched = true;
  if (r != CUDA_SUCCESS)
    return setError(fcclUnhandledCudaError, "%s: rank %d: launching its kernel on CUDA device %d: %s", name,
                    comm->rank, dc->device, resultText(d, r).c_str());
  return fcclSuccess;
}

bool ringCollOf(CollKind k, RingColl* c) {
  switch (k) {
    case CollKind::AllReduce:
      *c = RingColl::AllReduce;
      return true;
    case CollKind::ReduceScatter:
      *c = RingColl::ReduceScatter;
      return true;
    case CollKind::AllGather:
      *c = RingColl::AllGather;
      return true;
    case CollKind::Broadcast:
      *c = RingColl::Broadcast;
      return true;
    case CollKind::Reduce:
      *c = RingColl::Reduce;
      return true;
    case CollKind::ReduceScatterSliced:
      *c = RingColl::ReduceScatterSliced;
      return true;
    case CollKind::AllGatherSliced:
      *c = RingColl::AllGatherSliced;
      return true;
    default:
      return false;
  }
}

// Elements per chunk: a whole slot for large messages; for small ones a multiple of 16 bytes
// that gives every channel a part (collectives/device_kernels.cuh devChannelPart).
size_t chunkElemsFor(const DeviceComm& dc, const CollTask& t, int nranks) {
  const size_t elem = dtypeSize(t.type), pack = 16 / elem, slotElems = dc.slotBytes / elem;
  const bool sliced = t.kind == CollKind::AllReduce || t.kind == CollKind::ReduceScatterSliced ||
                      t.kind == CollKind::AllGatherSliced;
  const size_t loop = sliced ? (t.count + nranks - 1) / nranks : t.count;
  size_t share = (loop + dc.nchannels - 1) / dc.nchannels;
  share = std::max(pack, (share + pack - 1) / pack * pack);
  return std::min(slotElems, share);
}

// One rank alone: the result is the input (Avg divides by 1), a copy unless in place.
fcclResult_t copyAlone(fcclComm* comm, DeviceComm* dc, const CollTask& t, CUstream s) {
  if (t.send == t.recv || t.recv == nullptr) return fcclSuccess;
  const size_t bytes = t.count * dtypeSize(t.type);
  const CUresult r = dc->d->memcpyAsync(reinterpret_cast<CUdeviceptr>(t.recv),
                                        reinterpret_cast<CUdeviceptr>(t.send), bytes, s);
  if (r != CUDA_SUCCESS)
    return setError(fcclUnhandledCudaError, "%s: rank %d: copy on CUDA device %d: %s", collName(t.kind),
                    comm->rank, dc->device, resultText(*dc->d, r).c_str());
  return fcclSuccess;
}

// ---- point-to-point ----------------------------------------------------------------------------

// A send to ourselves meets the receive from ourselves of the same position in call order.
fcclResult_t copySelf(fcclComm* comm, DeviceComm* dc, const std::vector<const CollTask*>& sends,
                      const std::vector<const CollTask*>& recvs, CUstream s, const char* name) {
  if (sends.size() != recvs.size())
    return setError(fcclInvalidUsage, "%s: rank %d: %zu sends to itself but %zu receives from itself", name,
                    comm->rank, sends.size(), recvs.size());
  for (size_t k = 0; k < sends.size(); ++k) {
    const size_t sb = sends[k]->count * dtypeSize(sends[k]->type),
                 rb = recvs[k]->count * dtypeSize(recvs[k]->type);
    if (sb != rb)
      return setError(fcclInvalidUsage,
                      "%s: rank %d: a send of %zu bytes to itself meets a receive of %zu bytes", name,
                      comm->rank, sb, rb);
    const CUresult r = dc->d->memcpyAsync(reinterpret_cast<CUdeviceptr>(recvs[k]->recv),
                                          reinterpret_cast<CUdeviceptr>(sends[k]->send), sb, s);
    if (r != CUDA_SUCCESS)
      return setError(fcclUnhandledCudaError, "%s: rank %d: copy to itself on CUDA device %d: %s", name,
                      comm->rank, dc->device, resultText(*dc->d, r).c_str());
  }
  return fcclSuccess;
}

// The sends and receives of one group (or an AlltoAll): launch k moves the k-th message of each
// (peer, direction), so a peer's matching message is in its own launch k, and every CTA of a
// launch owns one side of one peer's channel.
fcclResult_t launchP2p(fcclComm* comm, DeviceComm* dc, const CollTask* tasks, size_t ntasks,
                       const char* name) {
  const int n = comm->nranks, rank = comm->rank;
  CUstream s = static_cast<CUstream>(tasks[0].stream);
  std::vector<std::vector<dev::DevP2pTask>> sends(n), recvs(n);
  std::vector<const CollTask*> selfSends, selfRecvs;
  size_t rounds = 0;
  for (size_t i = 0; i < ntasks; ++i) {
    const CollTask& t = tasks[i];
    if (static_cast<CUstream>(t.stream) != s)
      return setError(fcclInvalidUsage,
                      "%s: rank %d: the sends and receives of one group on a device "
                      "communicator must use one stream",
                      name, rank);
    const size_t bytes = t.count * dtypeSize(t.type);
    if (bytes == 0) continue;  // as NCCL: moves nothing
    const bool isSend = t.kind == CollKind::Send;
    if (t.root == rank) {
      (isSend ? selfSends : selfRecvs).push_back(&t);
      continue;
    }
    char* buf = isSend ? const_cast<char*>(static_cast<const char*>(t.send)) : static_cast<char*>(t.recv);
    auto& list = (isSend ? sends : recvs)[t.root];
    list.push_back(dev::DevP2pTask{buf, bytes, t.root, isSend ? 1 : 0});
    rounds = std::max(rounds, list.size());
  }
  FCCL_CHECK(copySelf(comm, dc, selfSends, selfRecvs, s, name));
  if (rounds == 0) return fcclSuccess;
  CUfunction fn = nullptr;
  FCCL_CHECK(loadKernel(
      comm, dc, fusion::codegen::p2pKernelName(),
      [](const std::string& arch, std::string* image, std::string* log) {
        return fusion::codegen::compileP2pKernel(arch, image, log);
      },
      &fn));
  ++comm->p2pCount;
  dc->lastOp = name;
  dc->lastSeq = comm->p2pCount;
  for (size_t k = 0; k < rounds; ++k) {
    dev::DevP2pArgs args{};
    args.comm = dc->p2pView;
    for (int q = 0; q < n; ++q)
      for (const auto* list : {&sends[q], &recvs[q]}) {
        if (k >= list->size()) continue;
        if (args.ntasks == dev::kMaxP2pTasks)
          return setError(
              fcclInvalidUsage,
              "%s: rank %d: more than %d peers and directions in one group on a device communicator", name,
              rank, dev::kMaxP2pTasks);
        args.tasks[args.ntasks++] = (*list)[k];
      }
    FCCL_CHECK(launchOrdered(comm, dc, name, fn, unsigned(args.ntasks), s, &args));
  }
  return fcclSuccess;
}

// AlltoAll: block p of sendbuff to rank p, block p of recvbuff from rank p, all at once.
fcclResult_t launchAlltoAll(fcclComm* comm, DeviceComm* dc, const CollTask& t) {
  const size_t blockBytes = t.count * dtypeSize(t.type);
  std::vector<CollTask> p2p;
  for (int p = 0; p < comm->nranks; ++p) {
    CollTask snd = t, rcv = t;
    snd.kind = CollKind::Send;
    snd.send = static_cast<const char*>(t.send) + p * blockBytes;
    snd.root = p;
    rcv.kind = CollKind::Recv;
    rcv.recv = static_cast<char*>(t.recv) + p * blockBytes;
    rcv.root = p;
    p2p.push_back(snd);
    p2p.push_back(rcv);
  }
  return launchP2p(comm, dc, p2p.data(), p2p.size(), "AlltoAll");
}

// ---- collectives ----------------------------------------------------------------------------

fcclResult_t launch(fcclComm* comm, DeviceComm* dc, const PlanOp& op) {
  const CollTask& t = op.task;
  const char* name = collName(t.kind);
  // What the device backend does not run yet: say so, enqueue nothing.
  const char* missing = nullptr;
  if (op.hook != nullptr) missing = "fused programs (fcclProgramLaunch)";
  if (t.premulScalar != nullptr && comm->nranks == 1) missing = "PreMulSum on one rank";
  if (t.sendReady != nullptr) missing = "fcclAllReduceOverlap";
  RingColl coll = RingColl::AllReduce;
  if (missing == nullptr && t.kind != CollKind::AlltoAll && !ringCollOf(t.kind, &coll))
    missing = collName(t.kind);
  if (missing != nullptr)
    return setError(fcclInvalidUsage,
                    "%s: rank %d: %s on device buffers are not supported yet (CUDA device %d)", name,
                    comm->rank, missing, dc->device);
  CUstream s = static_cast<CUstream>(t.stream);
  if (t.count == 0) return fcclSuccess;
  if (t.kind == CollKind::AlltoAll) return launchAlltoAll(comm, dc, t);
  ++comm->opCount;
  dc->lastOp = name;
  dc->lastSeq = comm->opCount;
  if (comm->nranks == 1) return copyAlone(comm, dc, t, s);

  const RingKernelKey key{coll, t.type, t.avgDivisor > 1 ? fcclAvg : t.op, t.premulScalar != nullptr};
  CUfunction fn = nullptr;
  FCCL_CHECK(kernelFor(comm, dc, key, &fn));
  dev::DevCollArgs args{};
  args.comm = dc->view;
  args.send = t.send;
  args.recv = t.recv;
  args.count = t.count;
  args.chunkElems = chunkElemsFor(*dc, t, comm->nranks);
  args.root = t.root;
  args.avgDivisor = t.avgDivisor;
  // PreMulSum: a device scalar is read by the kernel; an immediate one travels in the arguments.
  if (t.premulScalar != nullptr && t.premulInDevice)
    args.premulPtr = t.premulScalar;
  else if (t.premulScalar != nullptr)
    std::memcpy(args.premulValue, t.premulScalar, dtypeSize(t.type));
  FCCL_CHECK(launchOrdered(comm, dc, name, fn, unsigned(dc->nchannels), s, &args));
  FCCL_TRACE_LOG(kLogColl, "%s #%llu count %zu type %s on stream %p: %d channels, chunk %zu elements", name,
                 (unsigned long long)comm->opCount, t.count, dtypeName(t.type), (void*)s, dc->nchannels,
                 args.chunkElems);
  return fcclSuccess;
}

class DeviceExecutor final : public Executor {
 public:
  fcclResult_t run(fcclComm* comm, const Plan& plan) override {
    DeviceComm* dc = comm->device;
    logSetRank(comm->rank);
    CtxGuard guard(*dc->d, dc->ctx);
    if (!plan.p2p.empty()) FCCL_CHECK(launchP2p(comm, dc, plan.p2p.data(), plan.p2p.size(), plan.p2pName));
    for (const PlanOp& op : plan.colls) FCCL_CHECK(launch(comm, dc, op));
    return fcclSuccess;
  }
};

}  // namespace

Executor& deviceExecutor() {
  static DeviceExecutor e;
  return e;
}

bool kernelsAvailable(std::string* why) {
  if (fusion::codegen::haveNvrtc()) return true;
  if (why != nullptr)
    *why = "the CUDA backend builds its kernels with NVRTC, which this build or machine lacks (libnvrtc.so)";
  return false;
}

}  // namespace fccl::cuda
