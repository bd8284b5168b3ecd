// backend.h - FcclBackend, the c10d::Backend behind torch.distributed's "fccl" backend.
// Each backend owns one fccl communicator and the Worker thread (work.h) that makes every fccl
// call on it, in the order the process group issued them; collectives return an FcclWork at
// once. Arguments are checked on the caller's thread (a bad call raises there and nothing is
// queued); fccl's failures surface from Work.wait() / the Future as DistBackendError with
// fccl's sentence. Only fccl's public C API (fccl.h) is used.
//
// Devices: CPU tensors, run with stream NULL. A CUDA build adds a stream per device here (the
// Worker then enqueues on the stream, and FcclWork waits on an event); no caller changes.
#pragma once

#include <fccl.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "work.h"

namespace fccl_torch {

class FcclBackend : public c10d::Backend {
 public:
  // Collective over the group: rank 0 makes the unique id and publishes it in store (already
  // prefixed per group by c10d), the others read it; every rank then joins the communicator,
  // whose every wait is bounded by timeout.
  FcclBackend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
              std::chrono::milliseconds timeout, const std::string& groupName);
  ~FcclBackend() override;

  const std::string getBackendName() const override { return "fccl"; }
  c10::intrusive_ptr<Options> getBackendOptions() override { return options_; }
  uint64_t getSequenceNumberForGroup() override { return seq_; }

  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors,
                                           const c10d::BroadcastOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors,
                                           const c10d::AllreduceOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> allreduce_coalesced(std::vector<at::Tensor>& tensors,
                                                     const c10d::AllreduceCoalescedOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> reduce(std::vector<at::Tensor>& tensors,
                                        const c10d::ReduceOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& outputs,
                                           std::vector<at::Tensor>& inputs,
                                           const c10d::AllgatherOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> _allgather_base(at::Tensor& output, at::Tensor& input,
                                                 const c10d::AllgatherOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> allgather_coalesced(std::vector<std::vector<at::Tensor>>& outputLists,
                                                     std::vector<at::Tensor>& inputs,
                                                     const c10d::AllgatherOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> allgather_into_tensor_coalesced(std::vector<at::Tensor>& outputs,
                                                                 std::vector<at::Tensor>& inputs,
                                                                 const c10d::AllgatherOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> gather(std::vector<std::vector<at::Tensor>>& outputs,
                                        std::vector<at::Tensor>& inputs,
                                        const c10d::GatherOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> scatter(std::vector<at::Tensor>& outputs,
                                         std::vector<std::vector<at::Tensor>>& inputs,
                                         const c10d::ScatterOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> reduce_scatter(std::vector<at::Tensor>& outputs,
                                                std::vector<std::vector<at::Tensor>>& inputs,
                                                const c10d::ReduceScatterOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> _reduce_scatter_base(at::Tensor& output, at::Tensor& input,
                                                      const c10d::ReduceScatterOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> reduce_scatter_tensor_coalesced(
      std::vector<at::Tensor>& outputs, std::vector<at::Tensor>& inputs,
      const c10d::ReduceScatterOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> alltoall_base(at::Tensor& output, at::Tensor& input,
                                               std::vector<int64_t>& outputSplits,
                                               std::vector<int64_t>& inputSplits,
                                               const c10d::AllToAllOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> alltoall(std::vector<at::Tensor>& outputs, std::vector<at::Tensor>& inputs,
                                          const c10d::AllToAllOptions& opts) override;
  c10::intrusive_ptr<c10d::Work> send(std::vector<at::Tensor>& tensors, int dstRank, int tag) override;
  c10::intrusive_ptr<c10d::Work> recv(std::vector<at::Tensor>& tensors, int srcRank, int tag) override;
  c10::intrusive_ptr<c10d::Work> barrier(const c10d::BarrierOptions& opts) override;

  // Coalescing (batch_isend_irecv, _coalescing_manager): the operations issued in between run
  // inside one fcclGroupStart/End on the worker; endCoalescing's Work completes with them.
  bool supportsCoalescing() const override { return true; }
  void startCoalescing() override;
  c10::intrusive_ptr<c10d::Work> endCoalescing() override;

  // fcclCommAbort: unblocks a call in progress; later operations fail with a clear error.
  void abort() override;
  // Runs what is queued, then destroys the communicator (destroy_process_group).
  void shutdown() override;

  // For fccl.Program and fccl.optim: queue `op` behind this group's collectives.
  c10::intrusive_ptr<c10d::Work> enqueue(c10d::OpType type, const char* title,
                                         std::vector<at::Tensor> outputs, std::vector<at::Tensor> inputs,
                                         Op op);
  // Runs fn on the worker now (after what is queued) and waits: program compilation.
  void runSync(const std::function<void()>& fn) { worker_->runSync(fn); }
  // The communicator, for use inside an Op or runSync (on the worker thread).
  fcclComm_t comm() const;
  // Throws DistBackendError "fccl <what> failed on rank R: <result>: <fcclGetLastError>" unless
  // r is fcclSuccess. On the worker thread.
  void check(fcclResult_t r, const char* what) const;

 private:
  struct Pending {
    Op op;
    c10::intrusive_ptr<FcclWork> work;
  };
  void runBatch(std::vector<Pending> batch, c10::intrusive_ptr<FcclWork> batchWork);
  void destroyComm();

  fcclComm_t comm_ = nullptr;
  c10::intrusive_ptr<Options> options_;
  std::unique_ptr<Worker> worker_;
  std::atomic<bool> aborted_{false};
  std::mutex enqueueMutex_;  // callers may be several threads (DDP's autograd hooks)
  bool destroyed_ = false;
  uint64_t seq_ = 0;
  bool coalescing_ = false;
  std::vector<Pending> coalesced_;
};

}  // namespace fccl_torch
