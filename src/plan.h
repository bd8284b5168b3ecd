// plan.h - every call, made executable. A collective, the batch of a group, and each
// collective of a fused program become one Plan: the point-to-point batch (progressing
// together) and the collectives in call order, each with what the tuner chose for it
// (algorithm, protocol, chunk) and the hook that runs inside it. An executor then runs the
// plan: the host executor on the calling thread (host buffers); a CUDA stream or a progress
// thread are other executors of the same plan.
#pragma once
#include <cstddef>
#include <vector>
#include "collectives/coll.h"
#include "src/tuner.h"

struct fcclComm;

namespace fccl {

struct FnHook;

// How chunks travel. The host has one protocol (FIFO slots, NCCL's Simple); the device
// backend adds a low-latency one (flag stored with the data, NCCL's LL).
enum class Protocol : uint8_t {
  Simple
};

struct PlanOp {
  CollTask task;
  Algo algo = Algo::Ring;
  Protocol proto = Protocol::Simple;
  size_t chunkBytes = 0;   // pipeline chunk: at most one FIFO slot
  FnHook* hook = nullptr;  // a fused program's reduced hook (ring algorithms only)
};

struct Plan {
  std::vector<CollTask> p2p;  // sends and receives of the batch, progressing together
  std::vector<PlanOp> colls;  // collectives, in call order
  const char* p2pName = "";   // what a p2p wait reports ("Send", "Send/Recv group")
  void clear() {
    p2p.clear();
    colls.clear();
  }
};

// Plans tasks[0..n) (storage reused: plans live on the communicator, which one thread uses at
// a time). Each collective gets the tuner's algorithm and the communicator's chunk.
void planTasks(const fcclComm* comm, const CollTask* tasks, size_t n, Plan* plan);
// One collective with a fused program's reduced hook: always a ring (the hook runs on the
// chunks of this rank's slice), through the same tuner for its chunk.
void planHooked(const fcclComm* comm, const CollTask& task, FnHook& hook, Plan* plan);

// Runs plans. A failure that may leave peers mid-operation is recorded on the communicator
// (it sticks: later calls fail at once); a hook's own failure is not (every chunk moved).
class Executor {
 public:
  virtual ~Executor() = default;
  virtual fcclResult_t run(fcclComm* comm, const Plan& plan) = 0;
};
// The executor of host communicators: every operation on the calling thread.
Executor& hostExecutor();

}  // namespace fccl
