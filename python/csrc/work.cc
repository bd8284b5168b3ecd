// work.cc - the worker thread and FcclWork (work.h).
#include "work.h"

#include <ATen/core/jit_type.h>

#include <future>

namespace fccl_torch {

FcclWork::FcclWork(int rank, c10d::OpType type, const char* profilingTitle, std::vector<at::Tensor> outputs,
                   std::vector<at::Tensor> inputs)
    : c10d::Work(rank, type, profilingTitle, inputs),
      outputs_(std::move(outputs)),
      inputs_(std::move(inputs)),
      future_(c10::make_intrusive<c10::ivalue::Future>(c10::ListType::create(c10::TensorType::get()))) {}

void FcclWork::complete(std::exception_ptr error) {
  // The Future first: a caller that returns from wait() may look at getFuture() at once.
  if (error) {
    future_->setError(error);
  } else {
    future_->markCompleted(c10::IValue(outputs_));
  }
  inputs_.clear();
  finish(error);
}

Worker::Worker() : thread_([this] { loop(); }) {}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Worker::submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void Worker::runSync(const std::function<void()>& task) {
  if (onWorkerThread()) {
    task();
    return;
  }
  std::promise<void> done;
  auto result = done.get_future();
  submit([&task, &done] {
    try {
      task();
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  result.get();
}

void Worker::loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything submitted has run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace fccl_torch
