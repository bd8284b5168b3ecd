// backend.cc - FcclBackend's life cycle, queueing and coalescing (backend.h); the collectives
// themselves are in collectives.cc.
#include "backend.h"

#include <c10/util/Exception.h>

#include <climits>
#include <cstring>
#include <map>
#include <mutex>

namespace fccl_torch {

namespace {

// The Nth backend this process makes for a group name gets generation N. Every rank makes a
// group's backends in the same order (c10d requires it), so the generation names the same
// communicator on every rank, and a group recreated after destroy_process_group does not read
// a unique id left in a reused store (a FileStore's file) by its predecessor. Process-wide by
// necessity: it outlives the backends it counts.
uint64_t nextGeneration(const std::string& groupName) {
  static std::mutex mutex;
  static std::map<std::string, uint64_t> generations;
  std::lock_guard<std::mutex> lock(mutex);
  return generations[groupName]++;
}

[[noreturn]] void throwInitError(fcclResult_t r, const char* what, int rank) {
  C10_THROW_ERROR(DistBackendError, c10::str("fccl ", what, " failed on rank ", rank, ": ",
                                             fcclGetErrorString(r), ": ", fcclGetLastError(nullptr)));
}

}  // namespace

FcclBackend::FcclBackend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                         std::chrono::milliseconds timeout, const std::string& groupName)
    : c10d::Backend(rank, size), options_(c10::make_intrusive<Options>("fccl", timeout)) {
  TORCH_CHECK(store, "fccl: the process group has no store");
  options_->group_name = groupName;
  const std::string key = "fccl/uniqueid/" + std::to_string(nextGeneration(groupName));

  fcclUniqueId id;
  if (rank == 0) {
    fcclResult_t r = fcclGetUniqueId(&id);
    if (r != fcclSuccess) throwInitError(r, "fcclGetUniqueId", rank);
    const auto* bytes = reinterpret_cast<const uint8_t*>(&id);
    store->set(key, std::vector<uint8_t>(bytes, bytes + sizeof(id)));
  } else {
    std::vector<uint8_t> bytes = store->get(key);  // waits up to the store's timeout
    TORCH_CHECK(bytes.size() == sizeof(id), "fccl: the unique id in the store under '", key, "' has ",
                bytes.size(), " bytes, expected ", sizeof(id));
    std::memcpy(&id, bytes.data(), sizeof(id));
  }

  worker_ = std::make_unique<Worker>();
  // The communicator is made on the worker, the thread that will make every call on it.
  worker_->runSync([&] {
    fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
    if (timeout.count() > 0) config.timeoutMs = static_cast<int>(std::min<int64_t>(timeout.count(), INT_MAX));
    config.commName = groupName.c_str();
    // CPU tensors: a host communicator even when this thread has a CUDA context (torch with CUDA).
    config.device = -1;
    fcclResult_t r = fcclCommInitRankConfig(&comm_, size, id, rank, &config);
    if (r != fcclSuccess) throwInitError(r, "fcclCommInitRankConfig", rank);
  });
  // Init returns only once every rank has joined, so every rank has read the id: the last one
  // here removes it.
  if (store->add(key + "/joined", 1) == size) {
    store->deleteKey(key);
    store->deleteKey(key + "/joined");
  }
}

FcclBackend::~FcclBackend() {
  try {
    shutdown();
  } catch (const std::exception& e) {
    TORCH_WARN("fccl: destroying the communicator: ", e.what());
  }
  worker_.reset();
}

fcclComm_t FcclBackend::comm() const {
  TORCH_CHECK(!aborted_, "fccl: the communicator of rank ", rank_, " was aborted");
  TORCH_CHECK(comm_ != nullptr, "fccl: the communicator of rank ", rank_, " was destroyed");
  return comm_;
}

void FcclBackend::check(fcclResult_t r, const char* what) const {
  if (r == fcclSuccess) return;
  // After an abort the communicator is gone; the calling thread's own last error remains.
  const char* detail = fcclGetLastError(aborted_ ? nullptr : comm_);
  C10_THROW_ERROR(DistBackendError, c10::str("fccl ", what, " failed on rank ", rank_, ": ",
                                             fcclGetErrorString(r), *detail ? ": " : "", detail));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::enqueue(c10d::OpType type, const char* title,
                                                    std::vector<at::Tensor> outputs,
                                                    std::vector<at::Tensor> inputs, Op op) {
  std::lock_guard<std::mutex> lock(enqueueMutex_);
  TORCH_CHECK(!destroyed_, "fccl: the process group was shut down");
  TORCH_CHECK(!aborted_, "fccl: the process group was aborted");
  auto work = c10::make_intrusive<FcclWork>(rank_, type, title, std::move(outputs), std::move(inputs));
  ++seq_;
  if (coalescing_) {
    coalesced_.push_back({std::move(op), work});
    return work;
  }
  std::vector<Pending> batch;
  batch.push_back({std::move(op), work});
  worker_->submit([this, batch = std::move(batch)]() mutable { runBatch(std::move(batch), {}); });
  return work;
}

void FcclBackend::startCoalescing() {
  std::lock_guard<std::mutex> lock(enqueueMutex_);
  TORCH_CHECK(!coalescing_, "fccl: startCoalescing while already coalescing");
  coalescing_ = true;
}

c10::intrusive_ptr<c10d::Work> FcclBackend::endCoalescing() {
  std::lock_guard<std::mutex> lock(enqueueMutex_);
  TORCH_CHECK(coalescing_, "fccl: endCoalescing without startCoalescing");
  coalescing_ = false;
  std::vector<Pending> batch = std::move(coalesced_);
  coalesced_.clear();
  std::vector<at::Tensor> outputs;
  for (const Pending& p : batch) {
    for (const at::Tensor& t : p.work->result()) outputs.push_back(t);
  }
  auto work = c10::make_intrusive<FcclWork>(rank_, c10d::OpType::COALESCED, "fccl:coalesced",
                                            std::move(outputs), std::vector<at::Tensor>{});
  worker_->submit([this, batch = std::move(batch), work]() mutable { runBatch(std::move(batch), work); });
  return work;
}

void FcclBackend::runBatch(std::vector<Pending> batch, c10::intrusive_ptr<FcclWork> batchWork) {
  std::exception_ptr error;
  try {
    TORCH_CHECK(!aborted_, "fccl: the communicator of rank ", rank_, " was aborted");
    bool grouped = batch.size() > 1;
    for (const Pending& p : batch) grouped = grouped && p.op.groupable;
    if (grouped) {
      // One group: point-to-point calls progress together (batch_isend_irecv), so a ring of
      // sends and receives cannot deadlock; finish() steps read results after fcclGroupEnd.
      check(fcclGroupStart(), "fcclGroupStart");
      std::exception_ptr issueError;
      for (Pending& p : batch) {
        try {
          p.op.issue();
        } catch (...) {
          issueError = std::current_exception();
          break;
        }
      }
      fcclResult_t r = fcclGroupEnd();
      if (issueError) std::rethrow_exception(issueError);
      check(r, "group of coalesced operations");
      for (Pending& p : batch) {
        if (p.op.finish) p.op.finish();
      }
    } else {
      for (Pending& p : batch) {
        p.op.issue();
        if (p.op.finish) p.op.finish();
      }
    }
  } catch (...) {
    error = std::current_exception();
  }
  for (Pending& p : batch) p.work->complete(error);
  if (batchWork) batchWork->complete(error);
}

void FcclBackend::abort() {
  if (aborted_.exchange(true)) return;
  // Safe from any thread (fccl.h): a call blocked on the worker returns an error promptly.
  if (comm_ != nullptr && !destroyed_) fcclCommAbort(comm_);
}

void FcclBackend::shutdown() {
  {
    std::lock_guard<std::mutex> lock(enqueueMutex_);
    if (destroyed_) return;
    destroyed_ = true;
  }
  if (worker_) worker_->runSync([this] { destroyComm(); });
}

void FcclBackend::destroyComm() {
  if (comm_ == nullptr || aborted_) return;
  fcclComm_t comm = comm_;
  comm_ = nullptr;
  check(fcclCommDestroy(comm), "fcclCommDestroy");
}

}  // namespace fccl_torch
