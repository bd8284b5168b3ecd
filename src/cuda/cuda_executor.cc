// cuda_executor.cc - the executor of device communicators (src/plan.h): every collective of a
// plan becomes one kernel launch on the call's stream, NCCL's semantics (the call returns once
// it is enqueued; completion is stream-ordered). The kernel is the collective's ring template
// over the device primitives, generated for the element type and operator and compiled with
// NVRTC for the device's architecture the first time it is needed (fusion/codegen/ring_kernel.h),
// then kept per context for the life of the process.
#include <algorithm>
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
#include "src/base/env.h"
#include "src/base/error.h"
#include "src/comm.h"
#include "src/cuda/device_plan.h"
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
// `params`: cuLaunchKernel's (a pointer to each argument); threads per CTA: the collectives'.
fcclResult_t launchOrdered(fcclComm* comm, DeviceComm* dc, const char* name, CUfunction fn, unsigned ctas,
                           CUstream s, void** params, unsigned threads = unsigned(dev::kDevThreads)) {
  const Driver& d = *dc->d;
  CUresult r = CUDA_SUCCESS;
  if (dc->launched && s != dc->lastStream) r = d.streamWaitEvent(s, dc->lastWork, 0);
  if (r == CUDA_SUCCESS) r = d.launchKernel(fn, ctas, 1, 1, threads, 1, 1, 0, s, params, nullptr);
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

// The sends and receives of one group (or an AlltoAll), planned by planP2p: one launch per
// round, CTA per (peer, direction); sends to ourselves are copies.
fcclResult_t launchP2p(fcclComm* comm, DeviceComm* dc, const CollTask* tasks, size_t ntasks,
                       const char* name) {
  CUstream s = static_cast<CUstream>(tasks[0].stream);
  for (size_t i = 1; i < ntasks; ++i)
    if (static_cast<CUstream>(tasks[i].stream) != s)
      return setError(
          fcclInvalidUsage,
          "%s: rank %d: the sends and receives of one group on a device communicator must use one "
          "stream",
          name, comm->rank);
  P2pPlan plan;
  FCCL_CHECK(planP2p(tasks, ntasks, comm->rank, comm->nranks, name, &plan));
  for (const auto& round : plan.rounds)
    for (const dev::DevP2pTask& t : round)
      if (!dc->p2pReachable[t.peer])
        return setError(fcclInvalidUsage,
                        "%s: rank %d: CUDA device %d cannot reach rank %d's device (no peer access): no "
                        "point-to-point between them",
                        name, comm->rank, dc->device, t.peer);
  CUfunction fn = nullptr;
  if (!plan.rounds.empty())
    FCCL_CHECK(loadKernel(
        comm, dc, fusion::codegen::p2pKernelName(),
        [](const std::string& arch, std::string* image, std::string* log) {
          return fusion::codegen::compileP2pKernel(arch, image, log);
        },
        &fn));
  for (auto [snd, rcv] : plan.selfCopies) {
    const CUresult r =
        dc->d->memcpyAsync(reinterpret_cast<CUdeviceptr>(rcv->recv), reinterpret_cast<CUdeviceptr>(snd->send),
                           snd->count * dtypeSize(snd->type), s);
    if (r != CUDA_SUCCESS)
      return setError(fcclUnhandledCudaError, "%s: rank %d: copy to itself on CUDA device %d: %s", name,
                      comm->rank, dc->device, resultText(*dc->d, r).c_str());
  }
  if (plan.rounds.empty()) return fcclSuccess;
  ++comm->p2pCount;
  dc->lastOp = name;
  dc->lastSeq = comm->p2pCount;
  for (const std::vector<dev::DevP2pTask>& round : plan.rounds) {
    dev::DevP2pArgs args{};
    args.comm = dc->p2pView;
    args.ntasks = int(round.size());
    std::copy(round.begin(), round.end(), args.tasks);
    void* params[] = {&args};
    FCCL_CHECK(launchOrdered(comm, dc, name, fn, unsigned(args.ntasks), s, params));
  }
  return fcclSuccess;
}

fcclResult_t launchAlltoAll(fcclComm* comm, DeviceComm* dc, const CollTask& t) {
  const std::vector<CollTask> p2p = alltoAllAsP2p(t, comm->nranks);
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

  RingKernelKey key{coll, t.type, t.avgDivisor > 1 ? fcclAvg : t.op, t.premulScalar != nullptr};
  key.proto = deviceProto(t, env().proto);
  CUfunction fn = nullptr;
  FCCL_CHECK(kernelFor(comm, dc, key, &fn));
  dev::DevCollArgs args{};
  args.comm = dc->view;
  args.send = t.send;
  args.recv = t.recv;
  args.count = t.count;
  args.chunkElems =
      deviceChunkElems(t, comm->nranks, dc->nchannels, protoSlotBytes(key.proto, dc->slotBytes));
  args.root = t.root;
  args.avgDivisor = t.avgDivisor;
  // PreMulSum: a device scalar is read by the kernel; an immediate one travels in the arguments.
  if (t.premulScalar != nullptr && t.premulInDevice)
    args.premulPtr = t.premulScalar;
  else if (t.premulScalar != nullptr)
    std::memcpy(args.premulValue, t.premulScalar, dtypeSize(t.type));
  void* params[] = {&args};
  FCCL_CHECK(launchOrdered(comm, dc, name, fn, unsigned(dc->nchannels), s, params));
  FCCL_TRACE_LOG(kLogColl, "%s #%llu count %zu type %s on stream %p: %d channels, chunk %zu elements, %s",
                 name, (unsigned long long)comm->opCount, t.count, dtypeName(t.type), (void*)s, dc->nchannels,
                 args.chunkElems, key.proto == dev::DevProto::LL ? "LL" : "Simple");
  return fcclSuccess;
}

// ---- fused programs (src/cuda/program_device.cc) ------------------------------------------

// A kernel generated from `source` (fusion/codegen/device_program.h), loaded once per context.
fcclResult_t programKernel(fcclComm* comm, DeviceComm* dc, const std::string& name, const std::string& source,
                           CUfunction* fn) {
  return loadKernel(
      comm, dc, name,
      [&](const std::string& arch, std::string* image, std::string* log) {
        return fusion::codegen::compileWithNvrtc(source, name, arch, fusion::codegen::deviceHeaders(), image,
                                                 log);
      },
      fn);
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

// fcclProgramLaunch on device communicators (src/cuda/device_comm.h).
namespace fccl {

fcclResult_t deviceLaunchHookKernel(fcclComm* comm, fcclStream_t stream, const std::string& name,
                                    const std::string& source, std::vector<uint64_t>& hookArgs,
                                    const void* reduced, int64_t begin, int64_t end) {
  if (end <= begin) return fcclSuccess;
  cuda::DeviceComm* dc = comm->device;
  cuda::CtxGuard guard(*dc->d, dc->ctx);
  CUfunction fn = nullptr;
  FCCL_CHECK(cuda::programKernel(comm, dc, name, source, &fn));
  // A grid-stride loop: enough CTAs to fill the GPU, never more than the elements need.
  constexpr int64_t kThreads = 256, kMaxCtas = 1024;
  const unsigned ctas = unsigned(std::min(kMaxCtas, (end - begin + kThreads - 1) / kThreads));
  long long b = begin, e = end;
  void* withChunk[] = {hookArgs.data(), &reduced, &b, &e};
  void* plain[] = {hookArgs.data(), &b, &e};
  return cuda::launchOrdered(comm, dc, "fcclProgramLaunch", fn, ctas, static_cast<CUstream>(stream),
                             reduced != nullptr ? withChunk : plain, unsigned(kThreads));
}

fcclResult_t deviceLaunchFusedRing(fcclComm* comm, const CollTask& t, const std::string& name,
                                   const std::string& source, std::vector<uint64_t>& hookArgs) {
  if (t.count == 0) return fcclSuccess;
  cuda::DeviceComm* dc = comm->device;
  cuda::CtxGuard guard(*dc->d, dc->ctx);
  CUfunction fn = nullptr;
  FCCL_CHECK(cuda::programKernel(comm, dc, name, source, &fn));
  ++comm->opCount;
  dc->lastOp = "fcclProgramLaunch";
  dc->lastSeq = comm->opCount;
  dev::DevCollArgs args{};
  args.comm = dc->view;
  args.send = t.send;
  args.recv = t.recv;
  args.count = t.count;
  args.chunkElems = cuda::deviceChunkElems(t, comm->nranks, dc->nchannels, dc->slotBytes);
  args.avgDivisor = t.avgDivisor;
  void* params[] = {&args, hookArgs.data()};
  return cuda::launchOrdered(comm, dc, "fcclProgramLaunch", fn, unsigned(dc->nchannels),
                             static_cast<CUstream>(t.stream), params);
}

}  // namespace fccl
