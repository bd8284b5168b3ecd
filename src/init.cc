// init.cc - communicator lifecycle: unique id, init (blocking and not), init-all as threads,
// split, finalize, destroy, abort, queries, version and error strings.
// Init order: bootstrap (find peers) -> transports (src/transport_setup.h) -> scratch -> the
// device side of a device communicator (src/cuda/device_comm.h).
#include <signal.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>
#include <system_error>
#include <thread>
#include <vector>
#include "collectives/reduce_kernels.h"
#include "src/argcheck.h"
#include "src/base/checks.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "src/base/wait.h"
#include "src/callboard.h"
#include "src/cpu_share.h"
#include "src/cuda/device_comm.h"
#include "src/enqueue.h"
#include "src/fault.h"
#include "src/topo.h"
#include "src/transport_setup.h"
#include "src/tuner.h"

using namespace fccl;

namespace {

// Every rank is a host rank (device -1) or every rank has a device: the executors differ.
fcclResult_t agreeOnDevices(fcclComm* comm, int device) {
  std::vector<int> devices(comm->nranks);
  devices[comm->rank] = device;
  FCCL_CHECK(comm->bootstrap->allGather(devices.data(), sizeof(int)));
  for (int r = 0; r < comm->nranks; ++r)
    if ((devices[r] < 0) != (device < 0)) {
      const int host = device < 0 ? comm->rank : r, dev = device < 0 ? r : comm->rank;
      return setError(fcclInvalidUsage,
                      "rank %d: rank %d has no CUDA device but rank %d is bound to device %d: the ranks of a "
                      "communicator are all host ranks or all device ranks",
                      comm->rank, host, dev, devices[dev]);
    }
  return fcclSuccess;
}

fcclResult_t commInitImpl(fcclComm* comm, int nranks, const fcclUniqueId& id, int rank, int device) {
  logSetRank(rank);
  FCCL_CHECK(Bootstrap::create(id, rank, nranks, comm->timeoutMs, &comm->abortFlag, &comm->bootstrap));
  comm->peers.resize(nranks);
  for (int r = 0; r < nranks; ++r) comm->peers[r] = comm->bootstrap->peer(r);
  comm->commHash = comm->peers[rank].commHash;
  {
    std::vector<uint64_t> hostOf(size_t(nranks), 0);
    for (int r = 0; r < nranks; ++r) hostOf[size_t(r)] = comm->peers[r].hostHash;
    comm->rings = buildRings(hostOf, rank);
  }
  // Pids worth watching: other processes of this host. A pid that does not exist now belongs to
  // another pid namespace (a container sharing /dev/shm): never watched, it would read as dead.
  comm->peerPids.assign(nranks, 0);
  for (int r = 0; r < nranks; ++r) {
    const PeerInfo& p = comm->peers[r];
    if (r == rank || p.hostHash != comm->peers[rank].hostHash || p.pid <= 0 || p.pid == int(getpid()))
      continue;
    if (kill(p.pid, 0) == 0 || errno == EPERM) comm->peerPids[r] = p.pid;
  }
  comm->tuning = defaultTuning(nranks);

  FCCL_CHECK(connectTransports(comm));
  // An exited process is a dead peer only if its call board cannot say it finished or left
  // (boardAccountsFor); a peer without a board (reached over sockets under FCCL_SHM_DISABLE)
  // is watched through its transport (peerLost) instead.
  for (int r = 0; r < nranks; ++r)
    if (comm->boards[r] == nullptr) comm->peerPids[r] = 0;
  comm->scratch.assign(comm->tuning.chunkBytes, 0);
  // What every wait of this communicator asks in its slow path (src/peer_monitor.h).
  comm->monitor.peerPids = comm->peerPids.data();
  comm->monitor.nranks = nranks;
  comm->monitor.deadPeer = &comm->deadPeer;
  comm->monitor.boards = comm->boards.data();
  comm->monitor.failedPeer = &comm->failedPeer;
  comm->monitor.linkOf = comm->linkOf.data();

  Topology topo;
  FCCL_CHECK(topoDetect(&topo));
  const int cpus = std::max<int>(1, int(topo.processCpus.size()));
  // Oversubscribed (from every local rank's mask, src/cpu_share.h): the peer we wait for may
  // need our core, so spin only briefly.
  CpuShare share;
  FCCL_CHECK(cpuShareExchange(comm->bootstrap.get(), comm->peers, rank, &share));
  comm->spinLimit = share.shared ? 64 : uint64_t(env().spinCount);
  // A rank that shares its CPU with another local rank must not drive a transport while it
  // waits (src/transport_setup.h): it would keep the core from the rank it waits for (2 hosts x 2
  // ranks on a core each: 8 B allreduce 155 us -> 2.5 ms).
  if (share.shared) comm->driver.transports.clear();
  // A transport's helper threads (sockets) move this rank's data on its own CPUs: with fewer
  // than three (rank, progress, helper) a long spin only delays the thread it waits for
  // (2 ranks bound to a core each over sockets: 8 B allreduce 166 us with 2000 polls, 48 with 64).
  if (comm->progress.running() && cpus < 3) comm->spinLimit = std::min<uint64_t>(comm->spinLimit, 64);
  comm->progress.allowLongNaps(!comm->driver.transports.empty());
  if (env().setAffinity) {
    // One PU per local rank, in rank order, among the PUs this process may use.
    int localIndex = 0;
    for (int r = 0; r < rank; ++r) localIndex += comm->peers[r].hostHash == comm->peers[rank].hostHash;
    int cpu = topo.processCpus.empty() ? localIndex % std::max(1, topo.npus)
                                       : topo.processCpus[localIndex % topo.processCpus.size()];
    if (topoBindThread({cpu}) == fcclSuccess)
      FCCL_INFO(kLogInit, "rank %d bound to PU %d (FCCL_SET_AFFINITY)", rank, cpu);
  }
  comm->cpus = env().setAffinity ? 1 : cpus;  // FCCL_SET_AFFINITY: one PU per rank
  if (share.shared)
    FCCL_INFO(kLogInit, "%d ranks share %d CPUs: waits yield after %llu polls", share.localRanks, share.cpus,
              (unsigned long long)comm->spinLimit);
  const Rings& rg = comm->rings;
  FCCL_INFO(kLogInit, "comm %p%s%s rank %d nranks %d pid %d host %s: ring %d -> %d -> %d (%d hosts%s)",
            (void*)comm, comm->name.empty() ? "" : " name ", comm->name.c_str(), rank, nranks, (int)getpid(),
            comm->peers[rank].hostname, rg.flat[size_t((rg.flatPos + nranks - 1) % nranks)], rank,
            rg.flat[size_t((rg.flatPos + 1) % nranks)], rg.nhosts,
            rg.flatIsRankOrder ? "" : ", ranks grouped by host: rank order would cross hosts more often");
  if (rg.nhosts > 1 && rg.uniform && rg.local.size() > 1)
    FCCL_INFO(kLogInit, "two-level AllReduce available: %zu ranks on each of %d hosts, local position %d",
              rg.local.size(), rg.nhosts, rg.localPos);
  FCCL_INFO(kLogTuning, "chunk %zu bytes x %d slots per FIFO; direct algorithm up to %zu bytes per rank",
            comm->tuning.chunkBytes, comm->tuning.nslots, comm->tuning.directMaxBytes);
  FCCL_CHECK(agreeOnDevices(comm, device));
  comm->cudaInProcess = cudaLoadedInProcess();
  if (device >= 0) FCCL_CHECK(deviceCommSetup(comm, device));
  return fcclSuccess;
}

// The device a new rank binds to: InitAll's devlist entry, else config.device, else the calling
// thread's current CUDA device (NCCL's rule), else none (-1: host buffers).
constexpr int kDeviceUnset = FCCL_CONFIG_UNDEF_INT;
int configDevice(const fcclConfig_t* config) {
  if (config == nullptr || config->size < offsetof(fcclConfig_t, device) + sizeof(int)) return kDeviceUnset;
  return config->device == kDeviceUnset ? kDeviceUnset : std::max(-1, config->device);
}
int deviceFor(const fcclConfig_t* config, int requested) {
  if (requested != kDeviceUnset) return requested;
  const int fromConfig = configDevice(config);
  return fromConfig != kDeviceUnset ? fromConfig : currentDeviceOrHost();
}

fcclResult_t checkConfig(const fcclConfig_t* config) {
  if (config == nullptr) return fcclSuccess;
  if (config->magic != FCCL_CONFIG_MAGIC || config->size < sizeof(fcclConfig_t) - sizeof(int))
    return setError(fcclInvalidArgument,
                    "fcclCommInitRankConfig: config was not initialized with "
                    "FCCL_CONFIG_INITIALIZER (bad magic or size)");
  if (config->blocking != FCCL_CONFIG_UNDEF_INT && config->blocking != 0 && config->blocking != 1)
    return setError(fcclInvalidArgument, "fcclCommInitRankConfig: config.blocking must be 0 or 1, not %d",
                    config->blocking);
  if (config->timeoutMs != FCCL_CONFIG_UNDEF_INT && config->timeoutMs <= 0)
    return setError(fcclInvalidArgument, "fcclCommInitRankConfig: config.timeoutMs must be positive, not %d",
                    config->timeoutMs);
  return fcclSuccess;
}

// Puts this rank's final state on its call board (src/callboard.h), unless it already has one.
void tellPeers(fcclComm* comm, BoardState state, const char* what) {
  // A non-blocking init still running has no board yet (and its thread owns conns).
  if (comm->asyncError.load() == fcclInProgress || comm->boards.empty() ||
      comm->boards[comm->rank] == nullptr)
    return;
  CallBoard* own = comm->boards[comm->rank];
  char text[160];
  const unsigned long long done = own->doneSeq.load();
  if (done == 0)
    snprintf(text, sizeof(text), "rank %d %s before finishing any collective", comm->rank, what);
  else
    snprintf(text, sizeof(text), "rank %d %s after finishing collective #%llu", comm->rank, what, done);
  boardSetState(own, state, comm->rank, text);
}

void freeComm(fcclComm* comm) {
  comm->joinInit();
  closeTransports(comm, comm->abortFlag.load() != 0);
  delete comm;
}

}  // namespace

extern "C" {

FCCL_API fcclResult_t fcclGetVersion(int* version) {
  if (version == nullptr) return setError(fcclInvalidArgument, "fcclGetVersion: version is NULL");
  *version = FCCL_VERSION_CODE;
  return fcclSuccess;
}

FCCL_API const char* fcclGetErrorString(fcclResult_t result) {
  switch (result) {
    case fcclSuccess:
      return "no error";
    case fcclUnhandledCudaError:
      return "unhandled cuda error (run with FCCL_DEBUG=INFO for details)";
    case fcclSystemError:
      return "unhandled system error (run with FCCL_DEBUG=INFO for details)";
    case fcclInternalError:
      return "internal error - please report this issue to the fccl developers";
    case fcclInvalidArgument:
      return "invalid argument (run with FCCL_DEBUG=WARN for details)";
    case fcclInvalidUsage:
      return "invalid usage (run with FCCL_DEBUG=WARN for details)";
    case fcclRemoteError:
      return "remote process exited or there was a network error";
    case fcclInProgress:
      return "FCCL operation in progress";
    default:
      return "unknown result code";
  }
}

FCCL_API const char* fcclGetLastError(fcclComm_t comm) {
  const char* own = lastError();
  if (own[0] != '\0' || comm == nullptr) return own;
  return comm->lastErrorText.c_str();
}

FCCL_API fcclResult_t fcclGetUniqueId(fcclUniqueId* uniqueId) {
  if (uniqueId == nullptr) return setError(fcclInvalidArgument, "fcclGetUniqueId: uniqueId is NULL");
  logSetVariablesOnce();
  return bootstrapGetUniqueId(uniqueId);
}

static fcclResult_t commInitRankOn(fcclComm_t* newcomm, int nranks, fcclUniqueId commId, int rank,
                                   fcclConfig_t* config, int requestedDevice) {
  logSetVariablesOnce();
  if (newcomm == nullptr)
    return setError(fcclInvalidArgument, "fcclCommInitRank: comm (the output pointer) is NULL");
  *newcomm = nullptr;
  if (nranks < 1)
    return setError(fcclInvalidArgument, "fcclCommInitRank: nranks %d must be at least 1", nranks);
  if (rank < 0 || rank >= nranks)
    return setError(fcclInvalidArgument, "fcclCommInitRank: rank %d is out of range [0, %d)", rank, nranks);
  FCCL_CHECK(checkConfig(config));
  bool faultsArmed = false;
  FCCL_CHECK(faultSpecCheck(&faultsArmed));
  fcclComm* comm = new (std::nothrow) fcclComm();
  if (comm == nullptr) return setError(fcclSystemError, "fcclCommInitRank: out of memory");
  comm->faultsArmed = faultsArmed;
  comm->rank = rank;
  comm->nranks = nranks;
  comm->timeoutMs = env().timeoutMs;
  bool blocking = true;
  const int device = deviceFor(config, requestedDevice);  // on the caller's thread: its CUDA context
  if (config != nullptr) {
    if (config->timeoutMs != FCCL_CONFIG_UNDEF_INT) comm->timeoutMs = config->timeoutMs;
    if (config->commName != nullptr) comm->name = config->commName;
    if (config->blocking == 0) blocking = false;
  }
  if (!blocking) {
    // Returns at once; fcclCommGetAsyncError reports fcclInProgress until init is done.
    comm->asyncError.store(fcclInProgress);
    *newcomm = comm;
    comm->initThread = std::thread([comm, nranks, commId, rank, device] {
      fcclResult_t res;
      try {
        res = commInitImpl(comm, nranks, commId, rank, device);
      } catch (...) {
        res = setError(fcclSystemError, "fcclCommInitRank: rank %d: out of memory", rank);
      }
      if (res != fcclSuccess) comm->lastErrorText = lastError();
      comm->asyncError.store(res);
    });
    return fcclInProgress;
  }
  fcclResult_t res;
  try {
    res = commInitImpl(comm, nranks, commId, rank, device);
  } catch (const std::bad_alloc&) {
    res = setError(fcclSystemError, "fcclCommInitRank: rank %d: out of memory", rank);
  }
  if (res != fcclSuccess) {
    freeComm(comm);
    return res;
  }
  *newcomm = comm;
  return fcclSuccess;
}

FCCL_API fcclResult_t fcclCommInitRankConfig(fcclComm_t* newcomm, int nranks, fcclUniqueId commId, int rank,
                                             fcclConfig_t* config) {
  return commInitRankOn(newcomm, nranks, commId, rank, config, kDeviceUnset);
}

FCCL_API fcclResult_t fcclCommInitRank(fcclComm_t* newcomm, int nranks, fcclUniqueId commId, int rank) {
  return fcclCommInitRankConfig(newcomm, nranks, commId, rank, nullptr);
}

static fcclResult_t fcclCommInitAllImpl(fcclComm_t* comms, int ndev, const int* devlist) {
  if (comms == nullptr) return setError(fcclInvalidArgument, "fcclCommInitAll: comms is NULL");
  if (ndev < 1) return setError(fcclInvalidArgument, "fcclCommInitAll: ndev %d must be at least 1", ndev);
  for (int r = 0; devlist != nullptr && r < ndev; ++r)
    if (devlist[r] < 0)
      return setError(fcclInvalidArgument, "fcclCommInitAll: devlist[%d] is %d, not a CUDA device", r,
                      devlist[r]);
  fcclUniqueId id;
  FCCL_CHECK(fcclGetUniqueId(&id));
  std::vector<fcclResult_t> results(ndev, fcclSuccess);
  std::vector<std::string> errors(ndev);
  for (int r = 0; r < ndev; ++r) comms[r] = nullptr;
  std::vector<std::thread> threads;
  std::string cannotStart;
  for (int r = 0; r < ndev && cannotStart.empty(); ++r) {
    try {
      threads.emplace_back([&, r] {
        results[r] = commInitRankOn(&comms[r], ndev, id, r, nullptr, devlist != nullptr ? devlist[r] : -1);
        if (results[r] != fcclSuccess) errors[r] = lastError();
      });
    } catch (const std::system_error& e) {
      // The ranks already started give up when the others never come (their init timeout).
      cannotStart = e.what();
      results[r] =
          setError(fcclSystemError, "fcclCommInitAll: cannot start the thread of rank %d: %s", r, e.what());
      errors[r] = lastError();
    }
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < ndev; ++r) {
    if (results[r] == fcclSuccess) continue;
    for (int k = 0; k < ndev; ++k)
      if (comms[k] != nullptr) {
        fcclCommDestroy(comms[k]);
        comms[k] = nullptr;
      }
    return setErrorQuiet(results[r], "%s", errors[r].c_str());
  }
  return fcclSuccess;
}

FCCL_API fcclResult_t fcclCommInitAll(fcclComm_t* comms, int ndev, const int* devlist) {
  return apiGuard("fcclCommInitAll", [&] { return fcclCommInitAllImpl(comms, ndev, devlist); });
}

FCCL_API fcclResult_t fcclCommFinalize(fcclComm_t comm) {
  FCCL_CHECK(checkComm("fcclCommFinalize", comm));
  return commCheckUsable(comm, "fcclCommFinalize");
}

FCCL_API fcclResult_t fcclCommDestroy(fcclComm_t comm) {
  if (comm == nullptr) return fcclSuccess;  // as NCCL
  // Peers still waiting on this rank learn it left (and after which collective).
  tellPeers(comm, BoardState::Destroyed, "destroyed its communicator");
  freeComm(comm);
  return fcclSuccess;
}

FCCL_API fcclResult_t fcclCommAbort(fcclComm_t comm) {
  if (comm == nullptr) return fcclSuccess;
  comm->abortFlag.store(1);
  deviceCommAbort(comm);  // its kernels stop waiting too
  tellPeers(comm, BoardState::Aborted, "called fcclCommAbort");
  if (comm->bootstrap) comm->bootstrap->abort();
  comm->joinInit();
  // A thread blocked in a collective sees the flag within one slow poll; wait for it to leave
  // before freeing what it uses (bounded: a thread that never returns is a bug we report).
  int64_t deadline = nowNs() + int64_t(10) * 1000000000;
  while (comm->activeCalls.load() > 0 && nowNs() < deadline) usleep(1000);
  if (comm->activeCalls.load() > 0) {
    FCCL_WARN("fcclCommAbort: rank %d: a call is still running on the communicator after 10 s; leaking it",
              comm->rank);
    return fcclSuccess;
  }
  closeTransports(comm, true);
  delete comm;
  return fcclSuccess;
}

static fcclResult_t fcclCommSplitImpl(fcclComm_t comm, int color, int key, fcclComm_t* newcomm,
                                      fcclConfig_t* config) {
  FCCL_CHECK(checkComm("fcclCommSplit", comm));
  if (newcomm == nullptr) return setError(fcclInvalidArgument, "fcclCommSplit: newcomm is NULL");
  FCCL_CHECK(commCheckUsable(comm, "fcclCommSplit"));
  if (color < 0 && color != FCCL_SPLIT_NOCOLOR)
    return setError(fcclInvalidArgument,
                    "fcclCommSplit: rank %d: color %d must be >= 0 or FCCL_SPLIT_NOCOLOR", comm->rank, color);
  *newcomm = nullptr;
  // A split is a collective of the parent: every rank, NOCOLOR included, advances its sequence.
  const uint32_t tag = 0x53504c00u | uint32_t(comm->opCount++ & 0xff);  // "SPL"
  struct Entry {
    int color, key, rank;
  };
  const int n = comm->nranks;
  std::vector<Entry> all(n);
  all[comm->rank] = Entry{color, key, comm->rank};
  FCCL_CHECK(comm->bootstrap->allGather(all.data(), sizeof(Entry)));
  if (color == FCCL_SPLIT_NOCOLOR) return fcclSuccess;
  std::vector<Entry> members;
  for (const Entry& e : all)
    if (e.color == color) members.push_back(e);
  std::sort(members.begin(), members.end(),
            [](const Entry& a, const Entry& b) { return a.key != b.key ? a.key < b.key : a.rank < b.rank; });
  int newRank = 0;
  while (members[newRank].rank != comm->rank) ++newRank;
  // The first member creates the new id and hands it to the others.
  fcclUniqueId id;
  if (newRank == 0) {
    FCCL_CHECK(bootstrapGetUniqueId(&id));
    for (size_t i = 1; i < members.size(); ++i)
      FCCL_CHECK(comm->bootstrap->send(members[i].rank, tag, &id, sizeof(id)));
  } else {
    FCCL_CHECK(comm->bootstrap->recv(members[0].rank, tag, &id, sizeof(id)));
  }
  fcclConfig_t inherited = FCCL_CONFIG_INITIALIZER;
  if (config == nullptr) {
    inherited.timeoutMs = int(std::min<int64_t>(comm->timeoutMs, 0x7fffffff));
    config = &inherited;
  }
  // The new communicator's ranks keep their device (or none), unless config names one.
  const int device = configDevice(config) != kDeviceUnset ? kDeviceUnset : comm->cudaDev;
  return commInitRankOn(newcomm, int(members.size()), id, newRank, config, device);
}

FCCL_API fcclResult_t fcclCommSplit(fcclComm_t comm, int color, int key, fcclComm_t* newcomm,
                                    fcclConfig_t* config) {
  return apiGuard("fcclCommSplit", [&] { return fcclCommSplitImpl(comm, color, key, newcomm, config); });
}

FCCL_API fcclResult_t fcclCommCount(const fcclComm_t comm, int* count) {
  FCCL_CHECK(checkComm("fcclCommCount", comm));
  if (count == nullptr) return setError(fcclInvalidArgument, "fcclCommCount: count is NULL");
  *count = comm->nranks;
  return fcclSuccess;
}

FCCL_API fcclResult_t fcclCommCuDevice(const fcclComm_t comm, int* device) {
  FCCL_CHECK(checkComm("fcclCommCuDevice", comm));
  if (device == nullptr) return setError(fcclInvalidArgument, "fcclCommCuDevice: device is NULL");
  *device = comm->cudaDev;
  return fcclSuccess;
}

FCCL_API fcclResult_t fcclCommUserRank(const fcclComm_t comm, int* rank) {
  FCCL_CHECK(checkComm("fcclCommUserRank", comm));
  if (rank == nullptr) return setError(fcclInvalidArgument, "fcclCommUserRank: rank is NULL");
  *rank = comm->rank;
  return fcclSuccess;
}

FCCL_API fcclResult_t fcclCommGetAsyncError(fcclComm_t comm, fcclResult_t* asyncError) {
  FCCL_CHECK(checkComm("fcclCommGetAsyncError", comm));
  if (asyncError == nullptr)
    return setError(fcclInvalidArgument, "fcclCommGetAsyncError: asyncError is NULL");
  *asyncError = static_cast<fcclResult_t>(comm->asyncError.load());
  if (*asyncError == fcclSuccess) *asyncError = deviceCommPollError(comm);  // a kernel's failure
  return fcclSuccess;
}

static fcclResult_t fcclRedOpCreatePreMulSumImpl(fcclRedOp_t* op, void* scalar, fcclDataType_t datatype,
                                                 fcclScalarResidence_t residence, fcclComm_t comm) {
  FCCL_CHECK(checkComm("fcclRedOpCreatePreMulSum", comm));
  if (op == nullptr) return setError(fcclInvalidArgument, "fcclRedOpCreatePreMulSum: op is NULL");
  if (scalar == nullptr) return setError(fcclInvalidArgument, "fcclRedOpCreatePreMulSum: scalar is NULL");
  if (static_cast<unsigned>(datatype) >= fcclNumTypes)
    return setError(fcclInvalidArgument, "fcclRedOpCreatePreMulSum: datatype %d is not valid", int(datatype));
  if (residence != fcclScalarDevice && residence != fcclScalarHostImmediate)
    return setError(fcclInvalidArgument, "fcclRedOpCreatePreMulSum: residence %d is not valid",
                    int(residence));
  size_t slot = 0;
  while (slot < comm->userOps.size() && comm->userOps[slot].inUse) ++slot;
  if (slot == comm->userOps.size()) comm->userOps.emplace_back();
  UserRedOp& u = comm->userOps[slot];
  u.inUse = true;
  u.type = datatype;
  u.residence = residence;
  u.pointer = scalar;
  memcpy(u.value, scalar, dtypeSize(datatype));
  *op = static_cast<fcclRedOp_t>(fcclNumOps + int(slot));
  return fcclSuccess;
}

FCCL_API fcclResult_t fcclRedOpCreatePreMulSum(fcclRedOp_t* op, void* scalar, fcclDataType_t datatype,
                                               fcclScalarResidence_t residence, fcclComm_t comm) {
  return apiGuard("fcclRedOpCreatePreMulSum",
                  [&] { return fcclRedOpCreatePreMulSumImpl(op, scalar, datatype, residence, comm); });
}

FCCL_API fcclResult_t fcclRedOpDestroy(fcclRedOp_t op, fcclComm_t comm) {
  FCCL_CHECK(checkComm("fcclRedOpDestroy", comm));
  int v = static_cast<int>(op);
  size_t slot = size_t(v) - fcclNumOps;
  if (v < fcclNumOps || slot >= comm->userOps.size() || !comm->userOps[slot].inUse)
    return setError(fcclInvalidArgument,
                    "fcclRedOpDestroy: op %d was not created by fcclRedOpCreatePreMulSum on "
                    "this communicator",
                    v);
  comm->userOps[slot].inUse = false;
  return fcclSuccess;
}

FCCL_API fcclResult_t fcclMemAlloc(void** ptr, size_t size) {
  return apiGuard("fcclMemAlloc", [&] { return deviceMemAlloc(ptr, size); });
}

FCCL_API fcclResult_t fcclMemFree(void* ptr) {
  return apiGuard("fcclMemFree", [&] { return deviceMemFree(ptr); });
}

}  // extern "C"

// The device side goes first: its kernels may still use the FIFOs until they finish.
fcclComm::~fcclComm() { fccl::deviceCommFree(this); }
