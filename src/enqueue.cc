// enqueue.cc - from a checked call to its execution: the tasks become a plan (src/plan.h,
// the tuner's choices) that the communicator's executor runs. The plan's storage lives on the
// communicator, so a call allocates nothing once the first has run.
#include "src/enqueue.h"
#include "src/base/error.h"
#include "src/cuda/device_comm.h"
#include "src/plan.h"

namespace fccl {

fcclResult_t commCheckUsable(fcclComm* comm, const char* api) {
  int err = comm->asyncError.load();
  if (err == fcclInProgress) {
    // A non-blocking init still running: wait for it here (the call is on the same comm).
    comm->joinInit();
    err = comm->asyncError.load();
  }
  if (err == fcclSuccess) err = deviceCommPollError(comm);  // a kernel that failed on its stream
  if (comm->abortFlag.load() != 0)
    return setError(fcclInvalidUsage, "%s: rank %d: the communicator was aborted", api, comm->rank);
  if (err != fcclSuccess)
    return setError(static_cast<fcclResult_t>(err),
                    "%s: rank %d: the communicator failed earlier and cannot be used: %s", api, comm->rank,
                    comm->lastErrorText.c_str());
  return fcclSuccess;
}

fcclResult_t executeTasks(fcclComm* comm, const CollTask* tasks, size_t n) {
  planTasks(comm, tasks, n, &comm->plan);
  return comm->executor->run(comm, comm->plan);
}

fcclResult_t executeTasks(fcclComm* comm, const std::vector<CollTask>& tasks) {
  return executeTasks(comm, tasks.data(), tasks.size());
}

fcclResult_t executeHooked(fcclComm* comm, const CollTask& task, FnHook& hook) {
  planHooked(comm, task, hook, &comm->plan);
  return comm->executor->run(comm, comm->plan);
}

}  // namespace fccl
