// group.cc - fcclGroupStart/End. The group is per thread (as in NCCL) and nests; tasks are
// recorded per communicator and run at the outermost End. With one communicator the batch
// runs on the calling thread; with several (one thread driving all ranks of an
// fcclCommInitAll, NCCL's single-process pattern) each communicator's batch runs on its own
// thread, since the ranks must progress together.
#include <system_error>
#include <thread>
#include <vector>
#include "src/base/checks.h"
#include "src/base/error.h"
#include "src/enqueue.h"

namespace fccl {

namespace {

struct GroupState {
  int depth = 0;
  std::vector<std::pair<fcclComm*, std::vector<CollTask>>> batches;  // in first-use order
};
thread_local GroupState tlsGroup;

}  // namespace

bool groupOpen() { return tlsGroup.depth > 0; }

fcclResult_t enqueueTask(fcclComm* comm, const CollTask& task) {
  if (tlsGroup.depth == 0) return executeTasks(comm, &task, 1);
  for (auto& b : tlsGroup.batches)
    if (b.first == comm) {
      b.second.push_back(task);
      return fcclSuccess;
    }
  tlsGroup.batches.push_back({comm, {task}});
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
  if (batches.size() == 1) return executeTasks(batches[0].first, batches[0].second);

  std::vector<fcclResult_t> results(batches.size(), fcclSuccess);
  std::vector<std::string> errors(batches.size());
  std::vector<std::thread> threads;
  threads.reserve(batches.size());
  for (size_t i = 0; i < batches.size(); ++i) {
    try {
      threads.emplace_back([&, i] {
        results[i] = executeTasks(batches[i].first, batches[i].second);
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
