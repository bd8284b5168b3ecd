// device_comm.cc - see device_comm.h: binding a communicator to a GPU, the device FIFOs of its
// ring, the checks of device arguments, errors and abort.
#include "src/cuda/device_comm.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "collectives/device_types.h"
#include "fusion/codegen/nvrtc_compile.h"
#include "src/base/checks.h"
#include "src/base/debug.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "src/base/fd_pass.h"
#include "src/comm.h"
#include "src/cuda/device_plan.h"
#include "src/cuda/device_state.h"
#include "src/cuda/driver.h"
#include "src/cuda/vmm.h"

namespace fccl {

using cuda::CtxGuard;
using cuda::DeviceComm;
using cuda::Driver;
using cuda::vmmAlloc;
using cuda::vmmExport;
using cuda::vmmFree;
using cuda::vmmImport;
using cuda::VmmMapping;
using cuda::vmmSupported;

namespace {

constexpr size_t kDefaultSlotBytes = size_t(512) << 10;
constexpr size_t kCounterBytes = 256;  // tail and head of one connection, 128 bytes apart

// A rank's receive FIFOs, all in one allocation (and their counters in another): the ring's
// channels first (nchannels x kFifoSlots x slotBytes), then one point-to-point FIFO per peer
// (nranks x kFifoSlots x kP2pSlotBytes, entry q fed by rank q), then the ring channels' areas of
// the low-latency protocol (nchannels x kFifoSlots x kLLSlotBytes). Counters: 256 bytes per FIFO
// (tail, then head 128 bytes on), ring then p2p. Peers compute every address from the bases.
constexpr size_t kP2pSlotBytes = size_t(128) << 10;

struct FifoLayout {
  size_t ringFifo, p2pFifo;  // bytes of one ring FIFO, of one p2p FIFO
  int nchannels, nranks;
  static constexpr size_t kLLFifo = dev::kFifoSlots * dev::kLLSlotBytes;
  size_t fifoBytes() const { return (ringFifo + kLLFifo) * nchannels + p2pFifo * nranks; }
  size_t counterBytes() const { return kCounterBytes * (nchannels + nranks); }
  // The FIFO of ring channel ch (ch < nchannels) or of the p2p sender q (as ch = nchannels + q).
  dev::DevConn conn(CUdeviceptr fifo, CUdeviceptr counters, int ch) const {
    const bool ring = ch < nchannels;
    const size_t at = ring ? ch * ringFifo : nchannels * ringFifo + (ch - nchannels) * p2pFifo;
    dev::DevConn c;
    c.slots = reinterpret_cast<char*>(fifo + at);
    c.tail = reinterpret_cast<uint64_t*>(counters + ch * kCounterBytes);
    c.head = reinterpret_cast<uint64_t*>(counters + ch * kCounterBytes + 128);
    c.llSlots = ring ? reinterpret_cast<char*>(fifo + nchannels * ringFifo + nranks * p2pFifo + ch * kLLFifo)
                     : nullptr;
    return c;
  }
};

// What each rank tells the others at setup: its device and where its receive FIFOs are.
struct DeviceExchange {
  int device;
  int nchannels;
  uint64_t process;  // processToken(): equal for the threads of one process only
  CUuuid uuid;       // the GPU, whatever its ordinal in each process
  // The FIFOs' allocations in the owner's process, and their CUDA IPC handles.
  CUdeviceptr fifo, counters;
  CUipcMemHandle fifoHandle, countersHandle;
  int ipcResult;  // cuIpcGetMemHandle's result: CUDA_SUCCESS, or why other processes cannot map
  // 1: the FIFOs are cuMem allocations of these sizes, whose descriptors the owner sends to the
  // ranks of other processes (src/cuda/vmm.h) instead of the IPC handles.
  int vmm;
  uint64_t fifoBytes, counterBytes;
};

// This process, unlike any other (pids repeat across pid namespaces, e.g. containers).
uint64_t processToken() {
  static const uint64_t token =
      (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}() ^ uint64_t(getpid());
  return token;
}

// Whether MPS serves this machine (then kernels of several processes run at once on a GPU).
bool mpsLikely() {
  const char* pipe = getenv("CUDA_MPS_PIPE_DIRECTORY");
  return pipe != nullptr || access("/tmp/nvidia-mps/control", F_OK) == 0;
}

fcclResult_t cudaFailed(const fcclComm* comm, const Driver& d, const char* what, CUresult r) {
  return setError(fcclUnhandledCudaError, "rank %d: CUDA device %d: %s failed: %s", comm->rank, comm->cudaDev,
                  what, cuda::resultText(d, r).c_str());
}

#define CU_TRY(comm, d, call)                                      \
  do {                                                             \
    CUresult r_ = (call);                                          \
    if (r_ != CUDA_SUCCESS) return cudaFailed(comm, d, #call, r_); \
  } while (0)

// What each rank tells the others first: its GPU and the GPU's SM count (for the channels).
struct DeviceIdentity {
  CUuuid uuid;       // the GPU, whatever its ordinal in each process
  uint64_t process;  // processToken()
  uint64_t netns;    // the network namespace (its inode): abstract Unix sockets reach only within it
  int sms;           // its GPU's SM count
  int pad;
};

// This process's network namespace, as the inode of /proc/self/ns/net (0 when unknown).
uint64_t netNamespace() {
  struct stat st;
  return stat("/proc/self/ns/net", &st) == 0 ? uint64_t(st.st_ino) : 0;
}

// The channel count every rank uses (src/cuda/device_plan.h agreedChannels), from every rank's
// GPU and its SM count.
fcclResult_t agreeOnChannels(fcclComm* comm, const Driver& d, DeviceComm* dc, CUuuid uuid, uint64_t process,
                             bool* otherProcesses, bool* oneNetns) {
  const int n = comm->nranks;
  int sms = 0;
  CU_TRY(comm, d, d.deviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dc->cuDev));
  std::vector<DeviceIdentity> ids(n);
  ids[comm->rank] = DeviceIdentity{uuid, process, netNamespace(), sms, 0};
  FCCL_CHECK(comm->bootstrap->allGather(ids.data(), sizeof(DeviceIdentity)));
  std::vector<uint64_t> gpu(n);
  std::vector<int> smsOf(n);
  *otherProcesses = false;
  *oneNetns = true;
  for (int r = 0; r < n; ++r) {
    *otherProcesses |= ids[r].process != process;
    *oneNetns &= ids[r].netns == ids[0].netns && ids[r].netns != 0;
    uint64_t halves[2];
    std::memcpy(halves, &ids[r].uuid, sizeof(halves));
    gpu[r] = halves[0] ^ (halves[1] * 0x9e3779b97f4a7c15ull);
    smsOf[r] = ids[r].sms;
  }
  dc->nchannels = n > 1 ? cuda::agreedChannels(gpu, smsOf, env().maxNchannels) : 0;
  return fcclSuccess;
}

// FCCL_CHUNKSIZE when set (a multiple of 16 bytes), else 512 KiB: the FIFO slot.
size_t slotBytesWanted() {
  const int64_t v = env().chunkSize;
  return v >= 4096 ? size_t(v) / 16 * 16 : kDefaultSlotBytes;
}

// Allocations of setup, zeroed.
fcclResult_t allocZeroed(fcclComm* comm, const Driver& d, size_t bytes, CUdeviceptr* p) {
  CU_TRY(comm, d, d.memAlloc(p, bytes));
  CU_TRY(comm, d, d.memsetD8(*p, 0, bytes));
  return fcclSuccess;
}

// Ring neighbours on other GPUs read and write this rank's FIFO and it theirs: peer access.
fcclResult_t enablePeer(fcclComm* comm, DeviceComm* dc, int peerRank, int peerDevice) {
  const Driver& d = *dc->d;
  if (peerDevice == dc->device) return fcclSuccess;
  CUdevice peerDev;
  CU_TRY(comm, d, d.deviceGet(&peerDev, peerDevice));
  int can = 0;
  CU_TRY(comm, d, d.deviceCanAccessPeer(&can, dc->cuDev, peerDev));
  if (!can)
    return setError(fcclInvalidUsage,
                    "rank %d: CUDA device %d cannot access device %d of its ring neighbour rank %d (no peer "
                    "access between them); fccl needs peer access between the devices of one process",
                    comm->rank, dc->device, peerDevice, peerRank);
  CUcontext peerCtx;
  CU_TRY(comm, d, d.primaryCtxRetain(&peerCtx, peerDev));
  const CUresult r = d.ctxEnablePeerAccess(peerCtx, 0);
  d.primaryCtxRelease(peerDev);
  if (r != CUDA_SUCCESS && r != CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED)
    return cudaFailed(comm, d, "cuCtxEnablePeerAccess", r);
  return fcclSuccess;
}

// Rank q's FIFO allocations as this process addresses them: its pointers for a thread of this
// process (with peer access between the GPUs); for another process, its cuMem allocations
// imported from the descriptors it sent (fds: fifo, counters), or legacy CUDA IPC mappings.
fcclResult_t mapPeer(fcclComm* comm, DeviceComm* dc, const DeviceExchange& q, int qRank,
                     const std::array<int, 2>& fds, CUdeviceptr* fifo, CUdeviceptr* counters) {
  const Driver& d = *dc->d;
  if (q.process == processToken()) {
    *fifo = q.fifo;
    *counters = q.counters;
    FCCL_CHECK(enablePeer(comm, dc, qRank, q.device));
    // cuMem memory ignores peer access between contexts: the device needs access to it granted
    // (its owner granted its own device only).
    if (q.vmm && q.device != dc->device) {
      CU_TRY(comm, d, cuda::vmmGrantAccess(d, dc->device, q.fifo, size_t(q.fifoBytes)));
      CU_TRY(comm, d, cuda::vmmGrantAccess(d, dc->device, q.counters, size_t(q.counterBytes)));
    }
    return fcclSuccess;
  }
  if (q.vmm) {
    if (fds[0] < 0 || fds[1] < 0)
      return setError(fcclInternalError, "rank %d: rank %d's FIFO descriptors did not arrive", comm->rank,
                      qRank);
    VmmMapping m;
    CUresult r = vmmImport(d, dc->device, fds[0], size_t(q.fifoBytes), &m);
    if (r == CUDA_SUCCESS) {
      dc->importedVmm.push_back(m);
      *fifo = m.ptr;
      r = vmmImport(d, dc->device, fds[1], size_t(q.counterBytes), &m);
    }
    if (r == CUDA_SUCCESS) {
      dc->importedVmm.push_back(m);
      *counters = m.ptr;
    }
    if (r != CUDA_SUCCESS)
      return setError(fcclUnhandledCudaError,
                      "rank %d: mapping the FIFOs of rank %d (another process) from their cuMem descriptors "
                      "failed: %s (FCCL_CUMEM_ENABLE=0 uses legacy CUDA IPC handles)",
                      comm->rank, qRank, cuda::resultText(d, r).c_str());
    return fcclSuccess;
  }
  if (q.ipcResult != CUDA_SUCCESS)
    return setError(
        fcclUnhandledCudaError,
        "rank %d: rank %d is another process, whose FIFOs cannot be shared through CUDA IPC there: %s",
        comm->rank, qRank, cuda::resultText(d, CUresult(q.ipcResult)).c_str());
  CU_TRY(comm, d, d.ipcOpenMemHandle(fifo, q.fifoHandle, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS));
  dc->imported.push_back(*fifo);
  CU_TRY(comm, d, d.ipcOpenMemHandle(counters, q.countersHandle, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS));
  dc->imported.push_back(*counters);
  return fcclSuccess;
}

// Device memory holding `chans`, for a DevComm view.
fcclResult_t uploadChannels(fcclComm* comm, const Driver& d, const std::vector<dev::DevChannel>& chans,
                            CUdeviceptr* out) {
  const size_t bytes = sizeof(dev::DevChannel) * chans.size();
  CU_TRY(comm, d, d.memAlloc(out, bytes));
  CU_TRY(comm, d, d.memcpyHtoD(*out, chans.data(), bytes));
  return fcclSuccess;
}

// cuMem FIFOs: this rank's descriptors to every rank of another process, and theirs from each
// of them that allocated so (fds[q] = {fifo, counters}). Every rank's socket is open: the
// DeviceExchange allGather was after it.
fcclResult_t passDescriptors(fcclComm* comm, DeviceComm* dc, FdSocket& sock,
                             const std::vector<DeviceExchange>& all, std::vector<std::array<int, 2>>* fds) {
  const Driver& d = *dc->d;
  const int rank = comm->rank, n = comm->nranks;
  const DeviceExchange& own = all[size_t(rank)];
  std::vector<int> sendTo, recvFrom;
  for (int q = 0; q < n; ++q) {
    if (all[size_t(q)].process == own.process) continue;
    if (own.vmm) sendTo.push_back(q);
    if (all[size_t(q)].vmm) recvFrom.push_back(q);
  }
  int mine[2] = {-1, -1};
  if (own.vmm) {
    CUresult r = vmmExport(d, dc->fifoVmm, &mine[0]);
    if (r == CUDA_SUCCESS) r = vmmExport(d, dc->countersVmm, &mine[1]);
    if (r != CUDA_SUCCESS) {
      for (int f : mine)
        if (f >= 0) ::close(f);
      return cudaFailed(comm, d, "cuMemExportToShareableHandle", r);
    }
  }
  std::vector<std::vector<int>> got;
  const fcclResult_t res =
      sock.exchange(sendTo, mine, 2, recvFrom, &got, comm->timeoutMs > 0 ? comm->timeoutMs : 60000);
  for (int f : mine)
    if (f >= 0) ::close(f);
  FCCL_CHECK(res);
  for (size_t i = 0; i < recvFrom.size(); ++i) (*fds)[size_t(recvFrom[i])] = {got[i][0], got[i][1]};
  return fcclSuccess;
}

fcclResult_t setupOnDevice(fcclComm* comm, DeviceComm* dc) {
  const Driver& d = *dc->d;
  const int rank = comm->rank, n = comm->nranks;
  // Threads of this process share pointers; other processes of this host map the FIFOs through
  // CUDA IPC. Other hosts would need a network path for device buffers: not there yet.
  for (int r = 0; r < n; ++r) {
    const PeerInfo& p = comm->peers[r];
    if (p.hostHash != comm->peers[rank].hostHash)
      return setError(fcclInvalidUsage,
                      "rank %d: device communicators span the ranks of one host only (device buffers "
                      "across hosts are not supported yet), but rank %d is on host %s",
                      rank, r, p.hostname);
  }
  CU_TRY(comm, d,
         d.deviceGetAttribute(&dc->ccMajor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dc->cuDev));
  CU_TRY(comm, d,
         d.deviceGetAttribute(&dc->ccMinor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dc->cuDev));
  CUuuid uuid;
  CU_TRY(comm, d, d.deviceGetUuid(&uuid, dc->cuDev));
  bool otherProcesses = false, oneNetns = true;
  FCCL_CHECK(agreeOnChannels(comm, d, dc, uuid, processToken(), &otherProcesses, &oneNetns));
  dc->slotBytes = slotBytesWanted();
  // Ranks of other processes map this rank's FIFOs: cuMem allocations whose descriptors travel
  // over the ranks' Unix sockets where the driver and device allow and every rank shares one
  // network namespace (containers may not), legacy IPC handles otherwise.
  std::string noVmm = "FCCL_CUMEM_ENABLE=0";
  if (env().cumemEnable && !oneNetns) noVmm = "the ranks' processes are in different network namespaces";
  const bool useVmm =
      otherProcesses && n > 1 && env().cumemEnable && oneNetns && vmmSupported(d, dc->cuDev, &noVmm);
  FdSocket descriptors;
  if (otherProcesses && n > 1 && oneNetns) FCCL_CHECK(descriptors.open(comm->commHash, rank));
  if (otherProcesses && n > 1)
    FCCL_INFO(kLogInit, "rank %d: FIFOs shared with other processes through %s", rank,
              useVmm ? "cuMem descriptors" : ("legacy CUDA IPC handles (" + noVmm + ")").c_str());

  // This rank's receive FIFOs (FifoLayout), shared with every peer.
  const FifoLayout layout{dev::kFifoSlots * dc->slotBytes, dev::kFifoSlots * kP2pSlotBytes, dc->nchannels, n};
  std::vector<DeviceExchange> all(n);
  DeviceExchange& own = all[rank];
  std::memset(&own, 0, sizeof(own));
  own.device = dc->device;
  own.nchannels = dc->nchannels;
  own.process = processToken();
  own.uuid = uuid;
  if (n > 1 && useVmm) {
    CU_TRY(comm, d, vmmAlloc(d, dc->device, layout.fifoBytes(), &dc->fifoVmm));
    CU_TRY(comm, d, vmmAlloc(d, dc->device, layout.counterBytes(), &dc->countersVmm));
    dc->fifo = dc->fifoVmm.ptr;
    dc->counters = dc->countersVmm.ptr;
    CU_TRY(comm, d, d.memsetD8(dc->fifo, 0, dc->fifoVmm.size));
    CU_TRY(comm, d, d.memsetD8(dc->counters, 0, dc->countersVmm.size));
    own.fifo = dc->fifo;
    own.counters = dc->counters;
    own.vmm = 1;
    own.fifoBytes = dc->fifoVmm.size;
    own.counterBytes = dc->countersVmm.size;
    own.ipcResult = int(CUDA_SUCCESS);
  } else if (n > 1) {
    FCCL_CHECK(allocZeroed(comm, d, layout.fifoBytes(), &dc->fifo));
    FCCL_CHECK(allocZeroed(comm, d, layout.counterBytes(), &dc->counters));
    own.fifo = dc->fifo;
    own.counters = dc->counters;
    // For ranks in other processes (a failure matters only to them: they say so).
    CUresult r = d.ipcGetMemHandle(&own.fifoHandle, dc->fifo);
    if (r == CUDA_SUCCESS) r = d.ipcGetMemHandle(&own.countersHandle, dc->counters);
    own.ipcResult = int(r);
  }
  FCCL_CHECK(comm->bootstrap->allGather(all.data(), sizeof(DeviceExchange)));
  bool sharedAcrossProcesses = false;
  for (int r = 0; r < n; ++r) {
    const bool sameGpu = r != rank && std::memcmp(&all[r].uuid, &own.uuid, sizeof(CUuuid)) == 0;
    // The legacy default stream serializes the streams of one process, not across processes.
    dc->sharesDevice |= sameGpu && all[r].process == own.process;
    sharedAcrossProcesses |= sameGpu && all[r].process != own.process;
    if (all[r].nchannels != dc->nchannels)
      return setError(fcclInternalError, "rank %d: %d channels here but %d on rank %d after agreeing", rank,
                      dc->nchannels, all[r].nchannels, r);
  }
  if (sharedAcrossProcesses && rank == 0 && !mpsLikely())
    FCCL_WARN(
        "ranks of several processes share a GPU: without MPS their kernels take turns on it (each collective "
        "waits for the GPU's time slices, far slower than threads of one process); start MPS "
        "(nvidia-cuda-mps-control -d) or use one process per GPU");
  if (n > 1) {
    // Every peer's FIFOs as this process sees them: the ring sends to next, p2p to anyone.
    // The ring needs its neighbours; a peer beyond them that this GPU cannot reach (no peer
    // access) only loses point-to-point, which then says so instead of faulting.
    const int next = (rank + 1) % n, prev = (rank + n - 1) % n;
    std::vector<CUdeviceptr> fifo(n), counters(n);
    std::vector<std::array<int, 2>> fds(n, {-1, -1});
    // Closes every descriptor received, however this scope ends.
    struct CloseAll {
      std::vector<std::array<int, 2>>& fds;
      ~CloseAll() {
        for (auto& f : fds)
          for (int& x : f)
            if (x >= 0) ::close(x), x = -1;
      }
    } closeAll{fds};
    if (otherProcesses && oneNetns) FCCL_CHECK(passDescriptors(comm, dc, descriptors, all, &fds));
    dc->p2pReachable.assign(n, 1);
    for (int q = 0; q < n; ++q) {
      if (q == rank) continue;
      const fcclResult_t res = mapPeer(comm, dc, all[q], q, fds[q], &fifo[q], &counters[q]);
      if (res != fcclSuccess && (q == next || q == prev)) return res;
      if (res != fcclSuccess) {
        FCCL_INFO(kLogInit, "rank %d: no point-to-point with rank %d: %s", rank, q, lastError());
        dc->p2pReachable[q] = 0;
      }
    }
    std::vector<dev::DevChannel> ring(dc->nchannels), p2p(n);
    for (int ch = 0; ch < dc->nchannels; ++ch) {
      ring[ch].send = layout.conn(fifo[next], counters[next], ch);
      ring[ch].recv = layout.conn(dc->fifo, dc->counters, ch);
    }
    for (int q = 0; q < n; ++q) {
      if (q == rank || !dc->p2pReachable[q]) continue;  // to ourselves: a copy (the executor's)
      p2p[q].send = layout.conn(fifo[q], counters[q], dc->nchannels + rank);
      p2p[q].recv = layout.conn(dc->fifo, dc->counters, dc->nchannels + q);
    }
    FCCL_CHECK(uploadChannels(comm, d, ring, &dc->channels));
    FCCL_CHECK(uploadChannels(comm, d, p2p, &dc->p2pChannels));
    // No rank leaves setup (and may destroy its FIFOs) before every rank mapped them: a legacy
    // IPC handle of freed memory no longer opens (cuMem descriptors keep theirs alive).
    FCCL_CHECK(comm->bootstrap->barrier());
  }

  // The abort flag and the error word: host memory the kernels see.
  void* p = nullptr;
  CU_TRY(comm, d, d.memHostAlloc(&p, sizeof(int), CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE));
  dc->abortHost = static_cast<volatile int*>(p);
  *dc->abortHost = 0;
  CU_TRY(comm, d,
         d.memHostAlloc(&p, sizeof(dev::DevError), CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_PORTABLE));
  dc->errorHost = static_cast<dev::DevError*>(p);
  std::memset(dc->errorHost, 0, sizeof(dev::DevError));
  CUdeviceptr abortDev, errorDev;
  CU_TRY(comm, d, d.memHostGetDevicePointer(&abortDev, const_cast<int*>(dc->abortHost), 0));
  CU_TRY(comm, d, d.memHostGetDevicePointer(&errorDev, dc->errorHost, 0));
  CU_TRY(comm, d, d.eventCreate(&dc->lastWork, CU_EVENT_DISABLE_TIMING));

  dc->view.rank = rank;
  dc->view.nranks = n;
  dc->view.nchannels = dc->nchannels;
  dc->view.slotBytes = dc->slotBytes;
  dc->view.channels = reinterpret_cast<dev::DevChannel*>(dc->channels);
  dc->view.abortFlag = reinterpret_cast<const volatile int*>(abortDev);
  dc->view.error = reinterpret_cast<dev::DevError*>(errorDev);
  dc->view.timeoutNs = comm->timeoutMs > 0 ? (unsigned long long)comm->timeoutMs * 1000000ull : 0;
  dc->p2pView = dc->view;
  dc->p2pView.nchannels = n;
  dc->p2pView.slotBytes = kP2pSlotBytes;
  dc->p2pView.channels = reinterpret_cast<dev::DevChannel*>(dc->p2pChannels);
  return fcclSuccess;
}

const char* waitName(int w) {
  switch (static_cast<dev::DevWait>(w)) {
    case dev::DevWait::Data:
      return "data from";
    case dev::DevWait::FreeSlot:
      return "a free FIFO slot of";
    default:
      return "";
  }
}

}  // namespace

fcclResult_t deviceCommSetup(fcclComm* comm, int device) {
  std::string why;
  const Driver* d = cuda::driver(&why);
  if (d == nullptr)
    return setError(fcclUnhandledCudaError, "rank %d: cannot bind the communicator to CUDA device %d: %s",
                    comm->rank, device, why.c_str());
  if (!cuda::kernelsAvailable(&why))
    return setError(fcclUnhandledCudaError, "rank %d: CUDA device %d: %s", comm->rank, device, why.c_str());
  int count = 0;
  CU_TRY(comm, *d, d->deviceGetCount(&count));
  if (device < 0 || device >= count)
    return setError(fcclInvalidArgument, "rank %d: CUDA device %d does not exist (this machine has %d)",
                    comm->rank, device, count);
  fusion::codegen::nvrtcSetDiskCache(env().cacheDir);  // kernels compiled once per machine
  auto* dc = new DeviceComm();
  comm->device = dc;  // freed by deviceCommFree whatever happens below
  comm->cudaDev = device;
  dc->d = d;
  dc->device = device;
  CU_TRY(comm, *d, d->deviceGet(&dc->cuDev, device));
  CU_TRY(comm, *d, d->primaryCtxRetain(&dc->ctx, dc->cuDev));
  dc->retained = true;
  CtxGuard guard(*d, dc->ctx);
  FCCL_CHECK(setupOnDevice(comm, dc));
  comm->executor = &cuda::deviceExecutor();
  FCCL_INFO(kLogInit, "rank %d: CUDA device %d (sm_%d%d), %d channels x %d slots of %zu bytes%s", comm->rank,
            device, dc->ccMajor, dc->ccMinor, dc->nchannels, dev::kFifoSlots, dc->slotBytes,
            dc->sharesDevice ? "; shares its device with other ranks" : "");
  return fcclSuccess;
}

void deviceCommFree(fcclComm* comm) {
  DeviceComm* dc = comm->device;
  if (dc == nullptr) return;
  const Driver& d = *dc->d;
  {
    CtxGuard guard(d, dc->ctx);
    // The kernels still queued read these buffers: let them finish (or see the abort flag).
    if (dc->lastWork != nullptr) {
      d.eventSynchronize(dc->lastWork);
      d.eventDestroy(dc->lastWork);
    }
    for (CUdeviceptr p : dc->imported) d.ipcCloseMemHandle(p);
    for (VmmMapping& m : dc->importedVmm) vmmFree(d, &m);
    if (dc->channels) d.memFree(dc->channels);
    if (dc->p2pChannels) d.memFree(dc->p2pChannels);
    if (dc->countersVmm.ptr != 0)
      vmmFree(d, &dc->countersVmm);
    else if (dc->counters)
      d.memFree(dc->counters);
    if (dc->fifoVmm.ptr != 0)
      vmmFree(d, &dc->fifoVmm);
    else if (dc->fifo)
      d.memFree(dc->fifo);
    if (dc->abortHost) d.memFreeHost(const_cast<int*>(dc->abortHost));
    if (dc->errorHost) d.memFreeHost(dc->errorHost);
  }
  if (dc->retained) d.primaryCtxRelease(dc->cuDev);
  delete dc;
  comm->device = nullptr;
}

void deviceCommAbort(fcclComm* comm) {
  if (comm->device != nullptr && comm->device->abortHost != nullptr) *comm->device->abortHost = 1;
}

fcclResult_t deviceCommPollError(fcclComm* comm) {
  DeviceComm* dc = comm->device;
  if (dc == nullptr || dc->errorHost == nullptr) return fcclSuccess;
  // The kernel sets the other fields after winning the code (atomicCAS): read the code first.
  if (*reinterpret_cast<const volatile int*>(&dc->errorHost->code) == 0) return fcclSuccess;
  std::atomic_thread_fence(std::memory_order_acquire);
  dev::DevError e;
  std::memcpy(&e, dc->errorHost, sizeof(e));
  char text[320];
  if (e.aborted)
    snprintf(text, sizeof(text), "rank %d: the kernels on CUDA device %d were stopped by fcclCommAbort",
             comm->rank, dc->device);
  else
    snprintf(
        text, sizeof(text),
        "rank %d: a kernel on CUDA device %d (the last enqueued: %s #%llu) waited %.0f s for %s rank %d on "
        "channel %d (step %llu) and gave up",
        comm->rank, dc->device, dc->lastOp, (unsigned long long)dc->lastSeq, comm->timeoutMs / 1000.0,
        waitName(e.waitingFor), e.peer, e.channel, (unsigned long long)e.step);
  int expected = fcclSuccess;
  if (comm->asyncError.compare_exchange_strong(expected, e.code)) comm->lastErrorText = text;
  return static_cast<fcclResult_t>(comm->asyncError.load());
}

bool cudaLoadedInProcess() { return cuda::driverIfLoaded() != nullptr; }

int currentDeviceOrHost() {
  const Driver* d = cuda::driverIfLoaded();
  if (d == nullptr) return -1;
  CUcontext ctx = nullptr;
  CUdevice dev = 0;
  if (d->ctxGetCurrent(&ctx) != CUDA_SUCCESS || ctx == nullptr || d->ctxGetDevice(&dev) != CUDA_SUCCESS)
    return -1;
  return int(dev);
}

fcclResult_t deviceCheckStream(const char* api, const fcclComm* comm, fcclStream_t stream) {
  const DeviceComm* dc = comm->device;
  if (dc == nullptr) {
    if (stream != nullptr)
      return setError(fcclInvalidArgument,
                      "%s: rank %d: stream must be NULL on a host communicator (its buffers are host memory; "
                      "a communicator created with a CUDA device takes streams)",
                      api, comm->rank);
    return fcclSuccess;
  }
  CUstream s = reinterpret_cast<CUstream>(stream);
  // The legacy default stream serializes every stream of the device: ranks sharing the device
  // would wait for each other's kernels forever.
  if (dc->sharesDevice && (s == nullptr || s == CU_STREAM_LEGACY))
    return setError(fcclInvalidArgument,
                    "%s: rank %d: stream is the legacy default stream, which serializes the ranks that share "
                    "CUDA device %d; give each rank a stream of its own (cudaStreamNonBlocking)",
                    api, comm->rank, dc->device);
  if (s == nullptr || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD) return fcclSuccess;
  CUcontext ctx = nullptr;
  const CUresult r = dc->d->streamGetCtx(s, &ctx);
  if (r != CUDA_SUCCESS)
    return setError(fcclInvalidArgument, "%s: rank %d: stream %p is not a valid CUDA stream: %s", api,
                    comm->rank, (void*)stream, cuda::resultText(*dc->d, r).c_str());
  if (ctx != dc->ctx)
    return setError(
        fcclInvalidArgument,
        "%s: rank %d: stream %p belongs to another device or context than the communicator's CUDA "
        "device %d",
        api, comm->rank, (void*)stream, dc->device);
  return fcclSuccess;
}

fcclResult_t deviceCheckBuffer(const char* api, const fcclComm* comm, const char* what, const void* p) {
  const DeviceComm* dc = comm->device;
  if (p == nullptr || (dc == nullptr && !comm->cudaInProcess)) return fcclSuccess;  // host memory
  const Driver* d = dc != nullptr ? dc->d : cuda::driver(nullptr);
  if (d == nullptr) return fcclSuccess;
  unsigned int type = 0;
  const CUdeviceptr ptr = reinterpret_cast<CUdeviceptr>(p);
  if (d->pointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, ptr) != CUDA_SUCCESS)
    type = 0;  // memory CUDA does not know: ordinary host memory
  if (dc == nullptr) {
    if (type == CU_MEMORYTYPE_DEVICE)
      return setError(
          fcclInvalidArgument,
          "%s: rank %d: %s is CUDA device memory but the communicator is a host communicator (create "
          "it with a device: fcclCommInitAll's devlist, or cudaSetDevice before fcclCommInitRank)",
          api, comm->rank, what);
    return fcclSuccess;
  }
  if (type != CU_MEMORYTYPE_DEVICE && type != CU_MEMORYTYPE_UNIFIED)
    return setError(
        fcclInvalidArgument,
        "%s: rank %d: %s is host memory but the communicator is bound to CUDA device %d (pass device "
        "buffers: cudaMalloc or fcclMemAlloc)",
        api, comm->rank, what, dc->device);
  if (type == CU_MEMORYTYPE_DEVICE) {
    int ordinal = -1;
    if (d->pointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, ptr) == CUDA_SUCCESS &&
        ordinal != dc->device)
      return setError(
          fcclInvalidArgument,
          "%s: rank %d: %s is memory of CUDA device %d but the communicator is bound to device %d", api,
          comm->rank, what, ordinal, dc->device);
  }
  return fcclSuccess;
}

fcclResult_t deviceMemAlloc(void** ptr, size_t size) {
  if (ptr == nullptr) return setError(fcclInvalidArgument, "fcclMemAlloc: ptr is NULL");
  *ptr = nullptr;
  std::string why;
  const Driver* d = cuda::driver(&why);
  if (d == nullptr) return setError(fcclUnhandledCudaError, "fcclMemAlloc: %s", why.c_str());
  CUcontext ctx = nullptr;
  if (d->ctxGetCurrent(&ctx) != CUDA_SUCCESS || ctx == nullptr)
    return setError(fcclInvalidUsage,
                    "fcclMemAlloc: this thread has no current CUDA device (call cudaSetDevice)");
  if (size == 0) return fcclSuccess;
  CUdeviceptr p = 0;
  const CUresult r = d->memAlloc(&p, size);
  if (r != CUDA_SUCCESS)
    return setError(fcclUnhandledCudaError, "fcclMemAlloc: %zu bytes: %s", size,
                    cuda::resultText(*d, r).c_str());
  *ptr = reinterpret_cast<void*>(p);
  return fcclSuccess;
}

fcclResult_t deviceMemFree(void* ptr) {
  if (ptr == nullptr) return fcclSuccess;
  std::string why;
  const Driver* d = cuda::driver(&why);
  if (d == nullptr) return setError(fcclUnhandledCudaError, "fcclMemFree: %s", why.c_str());
  CUcontext ctx = nullptr;
  const CUdeviceptr p = reinterpret_cast<CUdeviceptr>(ptr);
  if (d->pointerGetAttribute(&ctx, CU_POINTER_ATTRIBUTE_CONTEXT, p) != CUDA_SUCCESS || ctx == nullptr)
    return setError(fcclInvalidArgument, "fcclMemFree: %p is not memory from fcclMemAlloc", ptr);
  CtxGuard guard(*d, ctx);
  const CUresult r = d->memFree(p);
  if (r != CUDA_SUCCESS)
    return setError(fcclUnhandledCudaError, "fcclMemFree: %p: %s", ptr, cuda::resultText(*d, r).c_str());
  return fcclSuccess;
}

}  // namespace fccl
