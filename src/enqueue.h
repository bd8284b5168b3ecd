// enqueue.h - from a checked API call to execution: outside a group a task runs at once;
// inside fcclGroupStart/End it is recorded and runs at the outermost fcclGroupEnd (point-to-
// point tasks of a communicator together, then collectives in call order; several
// communicators in parallel, one thread each). Either way the tasks become one plan
// (src/plan.h) that the communicator's executor runs.
#pragma once
#include <functional>
#include <vector>
#include "collectives/coll.h"
#include "src/comm.h"

namespace fccl {

// Runs now, or records if a group is open on this thread.
fcclResult_t enqueueTask(fcclComm* comm, const CollTask& task);
// The same for a call that runs plans of its own (fcclProgramLaunch): now, or at the group's
// end in call order with the group's other calls on comm. The call owns copies of what it needs.
fcclResult_t enqueueCall(fcclComm* comm, std::function<fcclResult_t()> call);
// True while fcclGroupStart is open on this thread.
bool groupOpen();
// Runs a batch of tasks of one communicator now (the tail of fcclGroupEnd, or a single call):
// planned (src/plan.h), then run by the communicator's executor.
fcclResult_t executeTasks(fcclComm* comm, const CollTask* tasks, size_t n);
fcclResult_t executeTasks(fcclComm* comm, const std::vector<CollTask>& tasks);
// Runs one collective now (not group-aware) with a fused program's run-time reduced hook: the
// ring, chunk by chunk. The task must already be checked.
fcclResult_t executeHooked(fcclComm* comm, const CollTask& task, FnHook& hook);
// An error that breaks the communicator's state (timeout, mismatch, abort) sticks: later
// calls fail at once with it instead of reading half-finished FIFOs.
fcclResult_t commCheckUsable(fcclComm* comm, const char* api);

}  // namespace fccl
