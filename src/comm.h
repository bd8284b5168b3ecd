// comm.h - the communicator: everything a rank owns (bootstrap, connections, scratch,
// tuning, user reduction ops, error state). No global mutable state: all of it hangs off
// this object. A fcclComm is used by one thread at a time (as in NCCL); only abortFlag and
// asyncError may be touched from other threads.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include "collectives/coll.h"
#include "collectives/direct.h"
#include "fccl.h"
#include "src/bootstrap.h"
#include "src/peer_monitor.h"
#include "src/plan.h"
#include "src/progress.h"
#include "src/rings.h"
#include "src/transport_setup.h"
#include "src/tuner.h"
#include "transports/transport.h"

namespace fccl {

namespace cuda {
struct DeviceComm;  // src/cuda/device_state.h
}

// A user-created reduction operator (fcclRedOpCreatePreMulSum).
struct UserRedOp {
  bool inUse = false;
  fcclDataType_t type = fcclFloat32;
  fcclScalarResidence_t residence = fcclScalarHostImmediate;
  alignas(8) unsigned char value[8] = {};  // the immediate scalar
  const void* pointer = nullptr;           // fcclScalarDevice: read at each call
};

}  // namespace fccl

struct fcclComm {
  int rank = 0;
  int nranks = 0;
  uint64_t commHash = 0;
  std::string name;
  int64_t timeoutMs = 0;
  uint64_t spinLimit = 0;  // busy polls before a wait yields; small when ranks outnumber cores
  int cpus = 1;            // PUs this rank's threads may use, read once at init (src/init.cc)
  int cudaDev = -1;        // the CUDA device of a device communicator; -1: host buffers
  fccl::cuda::DeviceComm* device = nullptr;  // its device side (src/cuda/device_comm.h), else null
  bool cudaInProcess = false;  // the CUDA driver was loaded at init: host calls check for device pointers

  std::unique_ptr<fccl::Bootstrap> bootstrap;
  std::vector<fccl::PeerInfo> peers;
  fccl::Rings rings;        // the flat ring by host, and the two-level AllReduce's rings (src/rings.h)
  bool hierLogged = false;  // the first two-level AllReduce says so at INFO
  // Per rank: the pid to watch while waiting for that rank (another live process on this host
  // in our pid namespace), else 0. See PeerMonitor::peerPids.
  std::vector<int> peerPids;
  fccl::Connections conns;
  // The transports connecting this rank's peers (src/transport_setup.h), and what the core
  // builds on their capabilities: each rank's call board, each rank's direct area.
  std::vector<std::unique_ptr<fccl::TransportComm>> transports;
  std::vector<fccl::TransportComm*> linkOf;   // [rank] the transport connecting it (null: self)
  std::vector<fccl::CallBoard*> boards;       // [rank]; null where no status area is offered
  std::vector<fccl::DirectView> directViews;  // [rank]
  bool allDirect = false;                     // every rank's direct area is reachable
  fccl::ProgressThread progress;              // declared after transports: stops first
  fccl::TransportDriver driver;               // what a waiting rank drives itself (sockets)
  fccl::TuningParams tuning{};

  // Every collective and p2p batch bumps opCount (it tags chunks on the wire); the direct
  // algorithm keeps its own sequence, which indexes its publication slots.
  uint64_t opCount = 0;
  uint64_t p2pCount = 0;  // point-to-point batches, for messages only
  fccl::DirectState direct;

  fccl::Plan plan;  // the plan being run (storage reused by every call: src/enqueue.cc)
  // Who runs this communicator's plans: the host executor (calling thread) for host ranks; a
  // device communicator's executor enqueues them on its stream.
  fccl::Executor* executor = &fccl::hostExecutor();
  std::vector<char> scratch;  // one chunk, for load hooks that transform the input
  std::vector<fccl::UserRedOp> userOps;

  std::atomic<int> abortFlag{0};
  std::atomic<int> deadPeer{0};    // 1 + the rank whose process was found exited (0: none)
  std::atomic<int> failedPeer{0};  // 1 + the peer whose call board showed it failed or left
  fccl::PeerMonitor monitor;       // every wait's slow-path peer checks (set up at init)
  // The fused program whose collectives are running (fcclProgramLaunch), for the call board.
  uint64_t programHash = 0;
  const char* programName = nullptr;
  bool faultsArmed = false;  // FCCL_FAULT_INJECT names this process's faults (src/fault.h)
  std::atomic<int> asyncError{fcclSuccess};
  std::atomic<int> activeCalls{0};  // fcclCommAbort waits for these to leave
  std::thread initThread;           // non-blocking init; joined through joinInit() only
  std::mutex initJoinMutex;         // a call and fcclCommAbort (another thread) may both join it
  void joinInit() {
    std::lock_guard<std::mutex> lock(initJoinMutex);
    if (initThread.joinable()) initThread.join();
  }
  std::string lastErrorText;
  ~fcclComm();  // src/init.cc
};
