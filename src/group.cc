// group.cc - fcclGroupStart/End. The group is per thread (as in NCCL) and nests; calls are
// recorded per communicator and run at the outermost End: the point-to-point tasks together,
// then collectives and program launches in call order. With one communicator the batch runs
// on the calling thread; with several (one thread driving all ranks of an fcclCommInitAll,
// NCCL's single-process pattern) each communicator's batch runs on its own thread, since the
// ranks must progress together.
#include <functional>
#include <system_error>
#include <thread>
#include <vector>
#include "src/base/checks.h"
#include "src/base/error.h"
#include "src/enqueue.h"

namespace fccl {

namespace {

// One recorded call: a task, or a deferred call that runs its own plans (a program launch).
struct GroupEntry {
  CollTask task;
  std::function<fcclResult_t()> call;
};
using Batch = std::vector<GroupEntry>;

struct GroupState {
  int depth = 0;
  std::vector<std::pair<fcclComm*, Batch>> batches;  // in first-use order
};
thread_local GroupState tlsGroup;

Batch& batchOf(fcclComm* comm) {
  for (auto& b : tlsGroup.batches)
    if (b.first == comm) return b.second;
  tlsGroup.batches.push_back({comm, {}});
  return tlsGroup.batches.back().second;
}

// The point-to-point tasks and the collectives before the first deferred call make the first
// plan; then each deferred call, and the collectives after it, in call order.
fcclResult_t runBatch(fcclComm* comm, const Batch& batch) {
  std::vector<CollTask> tasks;
  for (const GroupEntry& e : batch)
    if (!e.call && (e.task.kind == CollKind::Send || e.task.kind == CollKind::Recv)) tasks.push_back(e.task);
  for (const GroupEntry& e : batch) {
    if (!e.call) {
      if (e.task.kind != CollKind::Send && e.task.kind != CollKind::Recv) tasks.push_back(e.task);
      continue;
    }
    if (!tasks.empty()) FCCL_CHECK(executeTasks(comm, tasks));
    tasks.clear();
    FCCL_CHECK(e.call());
  }
  return tasks.empty() ? fcclSuccess : executeTasks(comm, tasks);
}

}  // namespace

bool groupOpen() { return tlsGroup.depth > 0; }

fcclResult_t enqueueTask(fcclComm* comm, const CollTask& task) {
  if (tlsGroup.depth == 0) return executeTasks(comm, &task, 1);
  batchOf(comm).push_back(GroupEntry{task, {}});
  return fcclSuccess;
}

fcclResult_t enqueueCall(fcclComm* comm, std::function<fcclResult_t()> call) {
  if (tlsGroup.depth == 0) return call();
  batchOf(comm).push_back(GroupEntry{CollTask{}, std::move(call)});
  return fcclSuccess;
}

}  // namespace fccl

using namespace fccl;

extern "C" FCCL_API fcclResult_t fcclGroupStart(void) {
  ++tlsGroup.depth;
  return fcclSuccess;
}

static fcclResult_t groupEndImpl() {
  if (tlsGroup.depth == 0)
    return setError(fcclInvalidUsage, "fcclGroupEnd: no group is open (fcclGroupEnd without fcclGroupStart)");
  if (--tlsGroup.depth > 0) return fcclSuccess;
  auto batches = std::move(tlsGroup.batches);
  tlsGroup.batches.clear();
  if (batches.empty()) return fcclSuccess;
  for (auto& b : batches) FCCL_CHECK(commCheckUsable(b.first, "fcclGroupEnd"));
  if (batches.size() == 1) return runBatch(batches[0].first, batches[0].second);
  // Device communicators only enqueue kernels (each waits for its peers on the GPU): one after
  // the other on this thread, no thread per communicator.
  bool allDevice = true;
  for (auto& b : batches) allDevice &= b.first->cudaDev >= 0;
  if (allDevice) {
    for (auto& b : batches) FCCL_CHECK(runBatch(b.first, b.second));
    return fcclSuccess;
  }

  std::vector<fcclResult_t> results(batches.size(), fcclSuccess);
  std::vector<std::string> errors(batches.size());
  std::vector<std::thread> threads;
  threads.reserve(batches.size());
  for (size_t i = 0; i < batches.size(); ++i) {
    try {
      threads.emplace_back([&, i] {
        results[i] = runBatch(batches[i].first, batches[i].second);
        if (results[i] != fcclSuccess) errors[i] = lastError();
      });
    } catch (const std::system_error& e) {
      // The batches already started end by their timeout when this one's peers never come.
      results[i] = setError(fcclSystemError, "fcclGroupEnd: cannot start a thread for communicator %zu: %s",
                            i, e.what());
      errors[i] = lastError();
      break;
    }
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < batches.size(); ++i)
    if (results[i] != fcclSuccess) return setErrorQuiet(results[i], "%s", errors[i].c_str());
  return fcclSuccess;
}

extern "C" FCCL_API fcclResult_t fcclGroupEnd(void) { return apiGuard("fcclGroupEnd", groupEndImpl); }
