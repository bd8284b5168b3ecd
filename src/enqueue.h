// enqueue.h - from a checked API call to execution: outside a group a task runs at once on
// the calling thread; inside fcclGroupStart/End it is recorded and runs at the outermost
// fcclGroupEnd (point-to-point tasks of a communicator together, then collectives in call
// order; several communicators in parallel, one thread each).
#pragma once
#include <vector>
#include "collectives/coll.h"
#include "src/comm.h"

namespace fccl {

// Runs now, or records if a group is open on this thread.
fcclResult_t enqueueTask(fcclComm* comm, const CollTask& task);
// True while fcclGroupStart is open on this thread.
bool groupOpen();
// Runs a batch of tasks of one communicator (the tail of fcclGroupEnd, or a single call).
fcclResult_t executeTasks(fcclComm* comm, const std::vector<CollTask>& tasks);
// Runs one collective now (not group-aware) on the ring with a run-time reduced hook: the
// entry point of fused programs. The task must already be checked.
fcclResult_t executeHooked(fcclComm* comm, const CollTask& task, FnHook& hook);
// An error that breaks the communicator's state (timeout, mismatch, abort) sticks: later
// calls fail at once with it instead of reading half-finished FIFOs.
fcclResult_t commCheckUsable(fcclComm* comm, const char* api);

}  // namespace fccl
