// plan.cc - see plan.h: the tuner's decisions, once per operation.
#include "src/plan.h"
#include "src/comm.h"

namespace fccl {

namespace {

PlanOp planOne(const fcclComm* comm, const CollTask& t) {
  PlanOp op;
  op.task = t;
  // An input still being produced is consumed chunk by chunk: only the ring waits per chunk.
  op.algo = t.sendReady != nullptr ? Algo::Ring : chooseAlgo(comm, t);
  op.proto = Protocol::Simple;
  op.chunkBytes = comm->tuning.chunkBytes;
  return op;
}

}  // namespace

void planTasks(const fcclComm* comm, const CollTask* tasks, size_t n, Plan* plan) {
  plan->clear();
  for (size_t i = 0; i < n; ++i) {
    const CollTask& t = tasks[i];
    if (t.kind == CollKind::Send || t.kind == CollKind::Recv)
      plan->p2p.push_back(t);
    else
      plan->colls.push_back(planOne(comm, t));
  }
  if (!plan->p2p.empty())
    plan->p2pName = plan->p2p.size() == 1 ? collName(plan->p2p[0].kind) : "Send/Recv group";
}

void planHooked(const fcclComm* comm, const CollTask& task, FnHook& hook, Plan* plan) {
  plan->clear();
  PlanOp op = planOne(comm, task);
  op.algo = Algo::Ring;
  op.hook = &hook;
  plan->colls.push_back(op);
}

}  // namespace fccl
