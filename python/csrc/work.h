// work.h - how the fccl backend runs its operations: one Worker thread per communicator that
// runs them strictly in submission order (fccl's host collectives block the calling thread, and
// every rank must issue the same collectives in the same order), and FcclWork, the c10d::Work a
// caller waits on. Invariants: an operation is a pair of functions (issue: the fccl calls;
// finish: what must wait until those calls returned, such as copying a staging buffer out), so
// several of them can run inside one fcclGroupStart/End (coalescing); a Work completes exactly
// once, its Future first, then its wait(); an operation's exception (a c10::Error whose message
// carries fccl's fcclGetLastError sentence) reaches both.
#pragma once

#include <ATen/core/ivalue.h>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fccl_torch {

// One operation as it runs on the worker. issue() makes the fccl calls; finish() runs after them
// (after fcclGroupEnd when the operation is part of a coalesced group). groupable: issue() only
// records fccl calls that a surrounding group may defer (no result is read inside issue()).
struct Op {
  std::function<void()> issue;
  std::function<void()> finish;
  bool groupable = true;
};

class FcclWork : public c10d::Work {
 public:
  // outputs: what result() returns and the Future's value (a list of tensors); inputs are kept
  // alive until the operation completes.
  FcclWork(int rank, c10d::OpType type, const char* profilingTitle, std::vector<at::Tensor> outputs,
           std::vector<at::Tensor> inputs);

  std::vector<at::Tensor> result() override { return outputs_; }
  c10::intrusive_ptr<c10::ivalue::Future> getFuture() override { return future_; }
  // Called once by the worker: the Future is completed (or gets the error), then wait() returns.
  void complete(std::exception_ptr error);

 private:
  std::vector<at::Tensor> outputs_;
  std::vector<at::Tensor> inputs_;
  c10::intrusive_ptr<c10::ivalue::Future> future_;
};

// A thread that runs tasks in submission order. Tasks never throw out of run(): each task
// completes its own Works. The destructor runs what is queued, then joins.
class Worker {
 public:
  Worker();
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void submit(std::function<void()> task);
  // Submits and waits; rethrows what the task threw (setup and teardown of the communicator).
  void runSync(const std::function<void()>& task);
  bool onWorkerThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  void loop();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fccl_torch
