// ucx_transport.cc - ranks on different hosts through UCX's UCP tag API (FCCL_NET=ucx, or auto
// between hosts with RDMA ports: transports/net_choice.h), the way
// to RDMA fabrics: on a cluster UCX drives InfiniBand and RoCE through rdma-core's libibverbs;
// the tests run it over UCX's own tcp transport, so this code path is the one RDMA would take.
// Built when libucx-dev is found. One UCP worker per communicator; its network address (the
// net-only form, to fit the connect blob) is the blob, and an endpoint to each linked peer is
// created from the peer's. Each linked peer has a send and a receive FIFO in this rank's memory
// (the connectors the algorithms see); the core's progress thread runs progress(): it hands
// each slot the rank posts to ucp_tag_send_nbx (slot metadata and payload as one two-part
// message, tag = sender rank and message number), keeps a receive posted for every free
// receive slot, and advances the FIFO counters in message order as UCX completes them. Every
// received message is checked (length, metadata) before the rank sees it.
// Threads: setup, connect and close on the communicator's thread (progress stopped); progress()
// on the progress thread and drive() on the waiting rank's, never both at once (workerMu_, the
// worker is UCS_THREAD_MODE_SERIALIZED); peerLost from any wait reads only atomics and l->mu.
// Not covered here: the secret proof of the socket transport (UCX's own connections carry no
// fccl handshake; the worker addresses only travel through the secret-checked bootstrap), and
// RDMA hardware itself (only UCX's tcp transport is exercised on this machine).
#include "transports/ucx/ucx_transport.h"
#include <ucp/api/ucp.h>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>
#include "src/base/debug.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "src/base/wait.h"
#include "transports/fifo.h"
#include "transports/net_choice.h"

namespace fccl {

namespace {

constexpr uint32_t kUcxBlobMagic = 0x78635566u;  // "fUcx"
struct UcxBlobHeader {
  uint32_t magic;
  uint32_t addrLen;
};
constexpr size_t kMaxAddrBytes = kConnectBlobBytes - sizeof(UcxBlobHeader);

// A message's tag: the sender's rank above its message number on that sender -> receiver pair.
constexpr int kSeqBits = 40;
uint64_t tagOf(int sender, uint64_t seq) {
  return (uint64_t(sender) << kSeqBits) | (seq & ((uint64_t(1) << kSeqBits) - 1));
}

size_t roundUp(size_t x, size_t a) { return (x + a - 1) / a * a; }

struct UcxLink;
struct Op {
  UcxLink* link = nullptr;
  int slot = 0;
};

struct UcxLink {
  UcxLink(int peer_, int nslots_, size_t slotBytes_) : peer(peer_), nslots(nslots_), slotBytes(slotBytes_) {
    const size_t ctrl = roundUp(sizeof(FifoCtrl), 64), fifo = ctrl + size_t(nslots) * slotBytes;
    void* p = nullptr;
    if (posix_memalign(&p, 4096, 2 * fifo) != 0) throw std::bad_alloc();
    memory = static_cast<char*>(p);
    memset(memory, 0, 2 * fifo);
    sendCtrl = new (memory) FifoCtrl();
    sendSlots = memory + ctrl;
    recvCtrl = new (memory + fifo) FifoCtrl();
    recvSlots = memory + fifo + ctrl;
    for (int i = 0; i < kMaxFifoSlots; ++i) sendOp[i] = recvOp[i] = Op{this, i};
  }
  ~UcxLink() {
    sendCtrl->~FifoCtrl();
    recvCtrl->~FifoCtrl();
    free(memory);
  }
  UcxLink(const UcxLink&) = delete;
  UcxLink& operator=(const UcxLink&) = delete;

  void markLost(const std::string& w) {
    std::lock_guard<std::mutex> lock(mu);
    if (lost.load()) return;
    why = w;
    lost.store(true, std::memory_order_release);
  }

  const int peer;
  const int nslots;
  const size_t slotBytes;
  std::string name;  // "rank 3 (host b)"
  char* memory = nullptr;
  FifoCtrl* sendCtrl = nullptr;
  char* sendSlots = nullptr;
  FifoCtrl* recvCtrl = nullptr;
  char* recvSlots = nullptr;
  ucp_ep_h ep = nullptr;
  // Send side: messages handed to UCX, and completed in order (the FIFO head).
  uint64_t sendPosted = 0, sendHead = 0;
  bool sendDone[kMaxFifoSlots] = {};
  SlotMeta sendMeta[kMaxFifoSlots] = {};
  ucp_dt_iov_t sendIov[kMaxFifoSlots][2] = {};
  Op sendOp[kMaxFifoSlots];
  // Receive side: receives posted, and completed in order (the FIFO tail).
  uint64_t recvPosted = 0, recvTail = 0;
  bool recvDone[kMaxFifoSlots] = {};
  size_t recvLen[kMaxFifoSlots] = {};
  SlotMeta recvMeta[kMaxFifoSlots] = {};
  ucp_dt_iov_t recvIov[kMaxFifoSlots][2] = {};
  void* recvReq[kMaxFifoSlots] = {};
  Op recvOp[kMaxFifoSlots];
  std::atomic<bool> lost{false};
  mutable std::mutex mu;
  std::string why;
};

void onSend(void* request, ucs_status_t status, void* user) {
  Op* op = static_cast<Op*>(user);
  if (status == UCS_OK)
    op->link->sendDone[op->slot] = true;
  else
    op->link->markLost(std::string("UCX could not send to ") + op->link->name + ": " +
                       ucs_status_string(status));
  ucp_request_free(request);
}

void onRecv(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info, void* user) {
  Op* op = static_cast<Op*>(user);
  op->link->recvReq[op->slot] = nullptr;
  if (status == UCS_OK) {
    op->link->recvLen[op->slot] = info->length;
    op->link->recvDone[op->slot] = true;
  } else if (status != UCS_ERR_CANCELED) {
    op->link->markLost(std::string("UCX could not receive from ") + op->link->name + ": " +
                       ucs_status_string(status));
  }
  ucp_request_free(request);
}

void onEndpointError(void* arg, ucp_ep_h, ucs_status_t status) {
  UcxLink* l = static_cast<UcxLink*>(arg);
  l->markLost(std::string("the UCX connection to ") + l->name + " failed (" + ucs_status_string(status) +
              ")");
}

class UcxComm final : public TransportComm {
 public:
  explicit UcxComm(const TransportContext& ctx) : ctx_(ctx) {
    timeoutMs_ = ctx.wait.timeoutMs > 0 ? ctx.wait.timeoutMs : env().timeoutMs;
  }
  ~UcxComm() override { close(true); }

  fcclResult_t setup(ConnectBlob* blob) override {
    ucp_config_t* config = nullptr;
    ucs_status_t s = ucp_config_read(nullptr, nullptr, &config);
    if (s != UCS_OK) return fail("ucp_config_read", s);
    ucp_params_t params{};
    params.field_mask = UCP_PARAM_FIELD_FEATURES;
    params.features = UCP_FEATURE_TAG;
    s = ucp_init(&params, config, &context_);
    ucp_config_release(config);
    if (s != UCS_OK) return fail("ucp_init", s);
    ucp_worker_params_t wp{};
    wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    wp.thread_mode = UCS_THREAD_MODE_SERIALIZED;
    s = ucp_worker_create(context_, &wp, &worker_);
    if (s != UCS_OK) return fail("ucp_worker_create", s);
    ucp_worker_attr_t wa{};
    wa.field_mask = UCP_WORKER_ATTR_FIELD_ADDRESS | UCP_WORKER_ATTR_FIELD_ADDRESS_FLAGS;
    wa.address_flags = UCP_WORKER_ADDRESS_FLAG_NET_ONLY;
    s = ucp_worker_query(worker_, &wa);
    if (s != UCS_OK) return fail("ucp_worker_query", s);
    const size_t len = wa.address_length;
    if (len > kMaxAddrBytes) {
      ucp_worker_release_address(worker_, wa.address);
      return setError(fcclSystemError,
                      "rank %d: ucx: the worker's network address takes %zu bytes, more than the %zu a "
                      "connect blob holds (narrow UCX_TLS / UCX_NET_DEVICES)",
                      ctx_.rank, len, kMaxAddrBytes);
    }
    UcxBlobHeader h{kUcxBlobMagic, uint32_t(len)};
    memset(blob->bytes, 0, sizeof(blob->bytes));
    memcpy(blob->bytes, &h, sizeof(h));
    memcpy(blob->bytes + sizeof(h), wa.address, len);
    ucp_worker_release_address(worker_, wa.address);
    byPeer_.assign(size_t(ctx_.nranks), nullptr);
    for (int p : ctx_.links) {
      links_.push_back(std::make_unique<UcxLink>(p, ctx_.shape.nslots, ctx_.shape.slotBytes));
      links_.back()->name = "rank " + std::to_string(p) + " (host " + ctx_.peers[p].hostname + ")";
      byPeer_[size_t(p)] = links_.back().get();
    }
    FCCL_INFO(kLogNet | kLogInit, "rank %d: ucx: worker address of %zu bytes, %zu peer%s", ctx_.rank, len,
              links_.size(), links_.size() == 1 ? "" : "s");
    return fcclSuccess;
  }

  fcclResult_t connect(const ConnectBlob* const* blobs, Connections* conns) override {
    for (auto& l : links_) {
      UcxBlobHeader h;
      memcpy(&h, blobs[l->peer]->bytes, sizeof(h));
      if (h.magic != kUcxBlobMagic || h.addrLen == 0 || h.addrLen > kMaxAddrBytes)
        return setError(fcclInternalError, "rank %d: ucx: %s sent a malformed connect blob", ctx_.rank,
                        l->name.c_str());
      ucp_ep_params_t ep{};
      ep.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER;
      ep.address = reinterpret_cast<const ucp_address_t*>(blobs[l->peer]->bytes + sizeof(h));
      ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
      ep.err_handler.cb = onEndpointError;
      ep.err_handler.arg = l.get();
      const ucs_status_t s = ucp_ep_create(worker_, &ep, &l->ep);
      if (s != UCS_OK)
        return setError(fcclSystemError, "rank %d: ucx: cannot reach %s: %s", ctx_.rank, l->name.c_str(),
                        ucs_status_string(s));
      const int p = l->peer;
      conns->send[size_t(p)] = SendConn(l->sendCtrl, l->sendSlots, l->nslots, l->slotBytes, p);
      conns->recv[size_t(p)] = RecvConn(l->recvCtrl, l->recvSlots, l->nslots, l->slotBytes, p);
      FCCL_INFO(kLogNet | kLogInit, "rank %d: ucx: endpoint to %s", ctx_.rank, l->name.c_str());
    }
    return fcclSuccess;
  }

  void abandon(const ConnectBlob* const*) override { close(true); }

  bool needsProgress() const override { return true; }

  fcclResult_t progress(bool* busy) override {
    // The rank is driving the worker itself (drive): leave it be; this round counts as idle.
    std::unique_lock<std::mutex> lock(workerMu_, std::try_to_lock);
    *busy = lock.owns_lock() && stepAll();
    return fcclSuccess;
  }

  // The waiting rank progresses the worker itself instead of waiting for the progress thread,
  // which naps 50 us once idle (src/progress.cc): 2 hosts x 1 rank over UCX's tcp, 8 B
  // allreduce 309-440 us -> 9.5-18 us (256 KiB 0.22 -> 0.40-0.44 GB/s busbw).
  bool drive() override {
    std::unique_lock<std::mutex> lock(workerMu_, std::try_to_lock);
    return lock.owns_lock() && stepAll();
  }
  void kick() override { drive(); }  // hands what the rank posted to UCX

  void close(bool aborted) override {
    if (closed_ || worker_ == nullptr) {
      cleanup();
      return;
    }
    closed_ = true;
    // What the rank posted last may still be on its way out: let UCX finish it.
    const int64_t deadline = nowNs() + std::min<int64_t>(timeoutMs_, 10000) * 1000000;
    auto sent = [&] {
      for (auto& l : links_)
        if (!l->lost.load() && l->sendHead < l->sendCtrl->tail.load(std::memory_order_acquire)) return false;
      return true;
    };
    while (!aborted && !sent() && nowNs() < deadline) stepAll();
    for (auto& l : links_)
      for (int i = 0; i < l->nslots; ++i)
        if (l->recvReq[i] != nullptr) ucp_request_cancel(worker_, l->recvReq[i]);
    for (auto& l : links_) {
      if (l->ep == nullptr) continue;
      ucp_request_param_t p{};
      p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
      p.flags = aborted || l->lost.load() ? UCP_EP_CLOSE_FLAG_FORCE : 0;
      void* req = ucp_ep_close_nbx(l->ep, &p);
      const int64_t until = nowNs() + int64_t(2000) * 1000000;
      if (UCS_PTR_IS_PTR(req)) {
        while (ucp_request_check_status(req) == UCS_INPROGRESS && nowNs() < until)
          ucp_worker_progress(worker_);
        ucp_request_free(req);
      }
      l->ep = nullptr;
    }
    // The cancelled receives' callbacks run here, before their links go.
    for (int i = 0; i < 100; ++i) ucp_worker_progress(worker_);
    cleanup();
  }

  bool peerLost(int peer, std::string* why) const override {
    if (peer < 0 || size_t(peer) >= byPeer_.size() || byPeer_[size_t(peer)] == nullptr) return false;
    const UcxLink* l = byPeer_[size_t(peer)];
    if (!l->lost.load(std::memory_order_acquire)) return false;
    std::lock_guard<std::mutex> lock(l->mu);
    *why = l->why;
    return true;
  }

 private:
  fcclResult_t fail(const char* what, ucs_status_t s) {
    return setError(fcclSystemError, "rank %d: ucx: %s failed: %s", ctx_.rank, what, ucs_status_string(s));
  }

  void cleanup() {
    if (worker_ != nullptr) ucp_worker_destroy(worker_), worker_ = nullptr;
    if (context_ != nullptr) ucp_cleanup(context_), context_ = nullptr;
  }

  // One progress round: the worker, then every link. True if anything moved. Needs workerMu_ or
  // the progress thread stopped.
  bool stepAll() {
    bool moved = ucp_worker_progress(worker_) != 0;
    for (auto& l : links_)
      if (!l->lost.load(std::memory_order_acquire)) moved |= step(*l);
    return moved;
  }

  // One link's part of a progress round: new sends, completed sends, receives for free slots,
  // completed receives. True if anything moved.
  bool step(UcxLink& l) {
    bool moved = false;
    const uint64_t n = uint64_t(l.nslots);
    const uint64_t tail = l.sendCtrl->tail.load(std::memory_order_acquire);
    while (l.sendPosted < tail) {
      const int i = int(l.sendPosted % n);
      l.sendMeta[i] = l.sendCtrl->meta[i];
      if (l.sendMeta[i].bytes > l.slotBytes) {
        l.markLost("rank " + std::to_string(ctx_.rank) + " posted a slot larger than the FIFO's");
        return true;
      }
      l.sendIov[i][0] = ucp_dt_iov_t{&l.sendMeta[i], sizeof(SlotMeta)};
      l.sendIov[i][1] = ucp_dt_iov_t{l.sendSlots + size_t(i) * l.slotBytes, l.sendMeta[i].bytes};
      ucp_request_param_t p{};
      p.op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE | UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                       UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
      p.datatype = ucp_dt_make_iov();
      p.cb.send = onSend;
      p.user_data = &l.sendOp[i];
      void* req = ucp_tag_send_nbx(l.ep, l.sendIov[i], 2, tagOf(ctx_.rank, l.sendPosted), &p);
      if (UCS_PTR_IS_ERR(req)) {
        l.markLost("UCX could not send to " + l.name + ": " + ucs_status_string(UCS_PTR_STATUS(req)));
        return true;
      }
      ++l.sendPosted;
      moved = true;
    }
    uint64_t head = l.sendHead;
    while (head < l.sendPosted && l.sendDone[head % n]) l.sendDone[head++ % n] = false;
    if (head != l.sendHead) {
      l.sendHead = head;
      l.sendCtrl->head.store(head, std::memory_order_release);  // the slots are the rank's again
      moved = true;
    }
    const uint64_t free = l.recvCtrl->head.load(std::memory_order_acquire) + n;
    while (l.recvPosted < free) {
      const int i = int(l.recvPosted % n);
      l.recvIov[i][0] = ucp_dt_iov_t{&l.recvMeta[i], sizeof(SlotMeta)};
      l.recvIov[i][1] = ucp_dt_iov_t{l.recvSlots + size_t(i) * l.slotBytes, l.slotBytes};
      ucp_request_param_t p{};
      p.op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE | UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                       UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
      p.datatype = ucp_dt_make_iov();
      p.cb.recv = onRecv;
      p.user_data = &l.recvOp[i];
      void* req = ucp_tag_recv_nbx(worker_, l.recvIov[i], 2, tagOf(l.peer, l.recvPosted), ~uint64_t(0), &p);
      if (UCS_PTR_IS_ERR(req)) {
        l.markLost("UCX could not receive from " + l.name + ": " + ucs_status_string(UCS_PTR_STATUS(req)));
        return true;
      }
      l.recvReq[i] = req;
      ++l.recvPosted;
      moved = true;
    }
    uint64_t t = l.recvTail;
    while (t < l.recvPosted && l.recvDone[t % n]) {
      const int i = int(t % n);
      const SlotMeta& m = l.recvMeta[i];
      // The length UCX delivered must be the metadata plus exactly the bytes it announces.
      if (l.recvLen[i] < sizeof(SlotMeta) || m.bytes > l.slotBytes ||
          l.recvLen[i] != sizeof(SlotMeta) + m.bytes) {
        l.markLost("a malformed message from " + l.name + " (" + std::to_string(l.recvLen[i]) +
                   " bytes for a " + std::to_string(m.bytes) + "-byte slot)");
        return true;
      }
      l.recvCtrl->meta[i] = m;
      l.recvDone[i] = false;
      ++t;
    }
    if (t != l.recvTail) {
      l.recvTail = t;
      l.recvCtrl->tail.store(t, std::memory_order_release);  // the slots are the rank's to read
      moved = true;
    }
    return moved;
  }

  const TransportContext ctx_;
  int64_t timeoutMs_ = 0;
  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  std::vector<std::unique_ptr<UcxLink>> links_;
  std::mutex workerMu_;  // held by whoever progresses the worker: progress() or drive()
  std::vector<UcxLink*> byPeer_;
  bool closed_ = false;
};

bool ucxPair(const PeerInfo& a, const PeerInfo& b) { return ucxBetween(env().net, a, b); }

std::unique_ptr<TransportComm> createUcx(const TransportContext& ctx) {
  return std::make_unique<UcxComm>(ctx);
}

}  // namespace

const Transport kUcxTransport{"ucx", ucxPair, createUcx};

}  // namespace fccl
