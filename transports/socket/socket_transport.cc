// socket_transport.cc - the TCP transport. Setup listens on the interface the bootstrap chose
// (socket.h: FCCL_SOCKET_IFNAME, else the root's subnet, else NCCL's order) and puts the
// address in the blob. Connect opens nsocks = FCCL_SOCKET_NTHREADS x FCCL_NSOCKS_PERTHREAD
// sockets to every peer to send on, and accepts as many from each peer to receive on, in three
// phases that never wait on a peer's later phase (so no rank can deadlock another):
//   1. connect and send a hello on every outgoing socket (connect completes in the peer's
//      backlog, the hello fits in the socket buffer);
//   2. accept until every peer's sockets are in, each hello checked (socket_wire.h: this
//      communicator, a linked rank, a fresh socket index, the secret's proof) and answered with
//      an ack that proves the secret back; anything else is refused, logged, and waited past;
//   3. read and check the ack on every outgoing socket.
// The data path is socket_lanes.h: helper threads move FIFO slots over the sockets, the core's
// progress thread only wakes sleeping helpers and refuses strangers that connect later (the
// listener stays open so that a stranger is logged rather than silently refused).
#include "transports/socket/socket_transport.h"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>
#include "src/base/checks.h"
#include "src/base/debug.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "transports/socket/socket_lanes.h"
#include "transports/socket/socket_wire.h"

namespace fccl {
namespace {

static_assert(sizeof(SocketBlob) <= kConnectBlobBytes, "the socket blob fits the connect blob");

// The largest message after which the waiting rank still drives the lanes itself (drive()).
constexpr uint32_t kDriveMaxBytes = 16 * 1024;
// Period at which progress() looks for strangers on the listener once the comm is connected.
constexpr int64_t kStrangerCheckNs = 10 * 1000 * 1000;
// How long a connection may take to say hello before it is dropped.
constexpr int64_t kHelloDeadlineNs = int64_t(5) * 1000 * 1000 * 1000;

// A connection accepted on the listener whose hello has not arrived whole.
struct Pending {
  int fd = -1;
  SocketAddress from{};
  SocketHello hello{};
  size_t got = 0;
  int64_t deadlineNs = 0;
};

void fillRandom(void* p, size_t n) {
  char* c = static_cast<char*>(p);
  for (size_t got = 0; got < n;) {
    ssize_t r = getrandom(c + got, n - got, 0);
    if (r > 0)
      got += size_t(r);
    else if (errno != EINTR)
      break;  // nonces then hold less entropy; the proof still needs the key
  }
}

class SocketComm final : public TransportComm {
 public:
  explicit SocketComm(const TransportContext& ctx) : ctx_(ctx) {
    socketKeyFromSecret(ctx.secret, key_);
    timeoutMs_ = ctx.wait.timeoutMs > 0 ? ctx.wait.timeoutMs : env().timeoutMs;
    nthreads_ = int(env().socketNthreads);
    int perThread = int(env().nsocksPerThread);
    if (nthreads_ * perThread > kMaxSocksPerPeer) {
      perThread = std::max(1, kMaxSocksPerPeer / nthreads_);
      FCCL_WARN(
          "FCCL_SOCKET_NTHREADS=%d x FCCL_NSOCKS_PERTHREAD=%lld exceeds %d sockets per peer; using %d per "
          "thread",
          nthreads_, (long long)env().nsocksPerThread, kMaxSocksPerPeer, perThread);
    }
    nsocks_ = nthreads_ * perThread;
  }

  ~SocketComm() override { close(true); }

  fcclResult_t setup(ConnectBlob* blob) override {
    SocketAddress want = ctx_.localAddr;
    if (want.sa.sa_family == AF_INET)
      want.sin.sin_port = 0;
    else
      want.sin6.sin6_port = 0;
    fcclResult_t r = socketListen(want, &listenFd_, &listenAddr_);
    if (r != fcclSuccess)
      return setError(r, "rank %d: socket: cannot listen on %s %s: %s", ctx_.rank, ctx_.localIfname.c_str(),
                      socketAddressToString(want).c_str(), lastError());
    SocketBlob b{};
    b.magic = kSocketBlobMagic;
    b.version = kSocketWireVersion;
    b.nsocks = uint16_t(nsocks_);
    b.addr = listenAddr_;
    snprintf(b.ifname, sizeof(b.ifname), "%s", ctx_.localIfname.c_str());
    memset(blob->bytes, 0, sizeof(blob->bytes));
    memcpy(blob->bytes, &b, sizeof(b));
    byPeer_.assign(size_t(ctx_.nranks), nullptr);
    for (int p : ctx_.links) {
      links_.push_back(std::make_unique<SocketLink>(p, ctx_.shape.nslots, ctx_.shape.slotBytes));
      byPeer_[size_t(p)] = links_.back().get();
    }
    FCCL_INFO(kLogNet | kLogInit,
              "rank %d: socket: listening on %s %s, %d sockets per peer each way (%d helper "
              "thread%s)",
              ctx_.rank, ctx_.localIfname.c_str(), socketAddressToString(listenAddr_).c_str(), nsocks_,
              nthreads_, nthreads_ > 1 ? "s" : "");
    return fcclSuccess;
  }

  fcclResult_t connect(const ConnectBlob* const* blobs, Connections* conns) override {
    std::vector<SocketBlob> peerBlob(size_t(ctx_.nranks));
    for (auto& l : links_) {
      SocketBlob& b = peerBlob[size_t(l->peer)];
      memcpy(&b, blobs[l->peer]->bytes, sizeof(b));
      b.ifname[sizeof(b.ifname) - 1] = '\0';
      if (b.magic != kSocketBlobMagic || b.version != kSocketWireVersion || b.nsocks < 1 ||
          b.nsocks > kMaxSocksPerPeer || (b.addr.sa.sa_family != AF_INET && b.addr.sa.sa_family != AF_INET6))
        return setError(fcclInternalError, "rank %d: socket: rank %d's connect blob is malformed", ctx_.rank,
                        l->peer);
      const PeerInfo& pi = ctx_.peers[l->peer];
      l->name = "rank " + std::to_string(l->peer) + " (host " + pi.hostname + ", " +
                socketAddressToString(b.addr) + ")";
      l->sendFds.assign(size_t(nsocks_), -1);
      l->recvFds.assign(b.nsocks, -1);
    }
    const IoLimit lim = ioLimitAfterMs(timeoutMs_, ctx_.wait.abortFlag);
    // Phase 1: our sockets to every peer, each with its hello.
    std::vector<std::vector<SocketHello>> sent(links_.size());
    for (size_t li = 0; li < links_.size(); ++li) {
      SocketLink& l = *links_[li];
      const SocketBlob& b = peerBlob[size_t(l.peer)];
      for (int i = 0; i < nsocks_; ++i) {
        int fd = -1;
        IoStatus st = socketConnect(b.addr, lim, &fd);
        if (!st.ok())
          return setError(st.kind == IoStatus::kError ? fcclSystemError : fcclRemoteError,
                          "rank %d: socket: cannot connect to %s from %s %s: %s", ctx_.rank, l.name.c_str(),
                          ctx_.localIfname.c_str(), socketAddressToString(listenAddr_).c_str(),
                          ioStatusString(st).c_str());
        l.sendFds[size_t(i)] = fd;
        socketSetLiveness(fd, timeoutMs_);
        SocketHello h{};
        h.magic = kSocketHelloMagic;
        h.version = kSocketWireVersion;
        h.nsocks = uint16_t(nsocks_);
        h.rank = ctx_.rank;
        h.index = i;
        h.commHash = ctx_.commHash;
        fillRandom(h.nonce, sizeof(h.nonce));
        h.proof = helloProof(key_, h);
        sent[li].push_back(h);
        st = socketSendAll(fd, &h, sizeof(h), lim);
        if (!st.ok())
          return setError(fcclRemoteError, "rank %d: socket: sending the hello to %s: %s", ctx_.rank,
                          l.name.c_str(), ioStatusString(st).c_str());
      }
    }
    // Phase 2: every peer's sockets to us.
    size_t expected = 0;
    for (auto& l : links_) expected += l->recvFds.size();
    size_t accepted = 0;
    while (accepted < expected) {
      IoStatus st = ioCheckLimit(lim);
      if (!st.ok())
        return setError(fcclRemoteError, "rank %d: socket: %s waiting for %s", ctx_.rank,
                        ioStatusString(st).c_str(), missingSockets().c_str());
      accepted += serveListener(ioPollSliceMs(lim), /*connecting=*/true);
    }
    // Phase 3: every peer's ack on our sockets.
    for (size_t li = 0; li < links_.size(); ++li) {
      SocketLink& l = *links_[li];
      for (int i = 0; i < nsocks_; ++i) {
        SocketAck a{};
        IoStatus st = socketRecvAll(l.sendFds[size_t(i)], &a, sizeof(a), lim);
        if (!st.ok())
          return setError(fcclRemoteError, "rank %d: socket: waiting for the ack of %s on socket %d: %s",
                          ctx_.rank, l.name.c_str(), i, ioStatusString(st).c_str());
        if (a.magic != kSocketAckMagic || a.rank != l.peer ||
            a.proof != ackProof(key_, sent[li][size_t(i)], l.peer))
          return setError(fcclRemoteError,
                          "rank %d: socket: %s did not prove the communicator's secret (another process on "
                          "that address?)",
                          ctx_.rank, l.name.c_str());
      }
    }
    // The data path.
    for (auto& l : links_) {
      for (int i = 0; i < nsocks_; ++i)
        lanes_.push_back(laneOf(l.get(), true, i, nsocks_, l->sendFds[size_t(i)]));
      const int n = int(l->recvFds.size());
      for (int i = 0; i < n; ++i) lanes_.push_back(laneOf(l.get(), false, i, n, l->recvFds[size_t(i)]));
      const int p = l->peer;
      conns->send[size_t(p)] = SendConn(l->sendCtrl, l->sendSlots, l->nslots, l->slotBytes, p);
      conns->recv[size_t(p)] = RecvConn(l->recvCtrl, l->recvSlots, l->nslots, l->slotBytes, p);
      FCCL_INFO(kLogNet | kLogInit, "rank %d: socket: connected to %s over %s %s, %d+%d sockets", ctx_.rank,
                l->name.c_str(), ctx_.localIfname.c_str(), socketAddressToString(listenAddr_).c_str(),
                nsocks_, n);
    }
    helpers_.start(&lanes_, nthreads_, ctx_.rank);
    return fcclSuccess;
  }

  void abandon(const ConnectBlob* const* blobs) override {
    (void)blobs;
    close(true);
  }

  bool needsProgress() const override { return true; }
  // Small messages only: the waiting rank stepping the lanes itself saves the hand-offs to the
  // helper (2 ranks on a core each across namespaces: 8 B allreduce 47 -> 23 us), but on bulk
  // data the rank and the helper fight over the lanes (256 MiB: 1.72 -> 1.05 GB/s busbw).
  // Judged from the last message this rank posted to each peer (the rank wrote its metadata).
  // On bulk data the rank wakes sleeping helpers itself instead (the progress thread naps up to
  // 1 ms when it has been idle, src/progress.cc).
  bool drive() override {
    for (auto& l : links_) {
      const uint64_t tail = l->sendCtrl->tail.load(std::memory_order_relaxed);
      if (tail > 0 && l->sendCtrl->meta[(tail - 1) % uint64_t(l->nslots)].bytes > kDriveMaxBytes) {
        helpers_.ring();
        return false;
      }
    }
    return helpers_.drive();
  }

  void kick() override { helpers_.ring(); }

  fcclResult_t progress(bool* busy) override {
    *busy = helpers_.ring();
    const int64_t now = nowNs();
    if (listenFd_ >= 0 && now >= nextStrangerCheckNs_) {
      nextStrangerCheckNs_ = now + kStrangerCheckNs;
      serveListener(0, /*connecting=*/false);
    }
    return fcclSuccess;
  }

  void close(bool aborted) override {
    if (closed_) return;
    closed_ = true;
    if (!aborted && !lanes_.empty()) {
      // What the rank posted last may still be on its way out: let the helpers finish it.
      const int64_t deadline = nowNs() + std::min<int64_t>(timeoutMs_, 10000) * 1000000;
      auto flushed = [&] {
        for (auto& l : links_)
          if (!l->lost() && !l->drained()) return false;
        return true;
      };
      while (!flushed() && nowNs() < deadline &&
             (ctx_.wait.abortFlag == nullptr || ctx_.wait.abortFlag->load() == 0)) {
        helpers_.ring();
        usleep(100);
      }
    }
    helpers_.stop();
    for (Pending& p : pending_) socketClose(&p.fd);
    pending_.clear();
    socketClose(&listenFd_);
    // Closing the data sockets (SocketLink's destructor, with the comm) tells each peer we left.
    for (auto& l : links_) {
      for (int& fd : l->sendFds) socketClose(&fd);
      for (int& fd : l->recvFds) socketClose(&fd);
    }
  }

  bool peerLost(int peer, std::string* why) const override {
    if (peer < 0 || size_t(peer) >= byPeer_.size() || byPeer_[size_t(peer)] == nullptr) return false;
    const SocketLink* l = byPeer_[size_t(peer)];
    if (!l->lost()) return false;
    *why = l->lostWhy();
    return true;
  }

 private:
  static Lane laneOf(SocketLink* link, bool send, int index, int nsocks, int fd) {
    Lane l;
    l.link = link;
    l.send = send;
    l.index = index;
    l.nsocks = nsocks;
    l.fd = fd;
    return l;
  }

  std::string missingSockets() const {
    std::string s;
    for (auto& l : links_) {
      int missing = 0;
      for (int fd : l->recvFds) missing += fd < 0;
      if (missing > 0) s += (s.empty() ? "" : ", ") + std::to_string(missing) + " socket(s) of " + l->name;
    }
    return s.empty() ? "nothing" : s;
  }

  void refuse(Pending& p, const char* why) {
    FCCL_WARN("rank %d: socket: refused a connection from %s on %s: %s", ctx_.rank,
              socketAddressToString(p.from).c_str(), socketAddressToString(listenAddr_).c_str(), why);
    socketClose(&p.fd);
  }

  // Accepts what waits on the listener and reads hellos, for up to waitMs. While connecting,
  // a valid hello from a linked rank for a socket not yet in is answered and kept; anything else
  // (and after connect, everything) is refused. Returns the sockets kept.
  size_t serveListener(int waitMs, bool connecting) {
    std::vector<pollfd> fds;
    fds.push_back({listenFd_, POLLIN, 0});
    for (Pending& p : pending_) fds.push_back({p.fd, POLLIN, 0});
    if (waitMs > 0 && poll(fds.data(), fds.size(), waitMs) <= 0) return 0;
    for (;;) {
      Pending p;
      socklen_t len = sizeof(p.from);
      p.fd = accept4(listenFd_, &p.from.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (p.fd < 0) break;
      int one = 1;
      setsockopt(p.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      p.deadlineNs = nowNs() + kHelloDeadlineNs;
      pending_.push_back(p);
    }
    size_t kept = 0;
    const int64_t now = nowNs();
    for (Pending& p : pending_) {
      ssize_t r =
          recv(p.fd, reinterpret_cast<char*>(&p.hello) + p.got, sizeof(p.hello) - p.got, MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        refuse(p, "closed before its hello");
        continue;
      }
      if (r > 0) p.got += size_t(r);
      if (p.got < sizeof(p.hello)) {
        if (now > p.deadlineNs) refuse(p, "no hello within 5 s");
        continue;
      }
      std::string why;
      if (!helloCheck(p.hello, key_, ctx_.commHash, ctx_.nranks, &why)) {
        refuse(p, why.c_str());
        continue;
      }
      SocketLink* l = byPeer_[size_t(p.hello.rank)];
      if (!connecting || l == nullptr || p.hello.nsocks != l->recvFds.size() ||
          l->recvFds[size_t(p.hello.index)] >= 0) {
        refuse(p, connecting ? "not a socket this rank expects from that rank"
                             : "the communicator is connected");
        continue;
      }
      SocketAck a{kSocketAckMagic, ctx_.rank, ackProof(key_, p.hello, ctx_.rank)};
      if (!socketSendAll(p.fd, &a, sizeof(a), ioLimitAfterMs(1000, ctx_.wait.abortFlag)).ok()) {
        refuse(p, "closed before our ack");
        continue;
      }
      socketSetLiveness(p.fd, timeoutMs_);
      l->recvFds[size_t(p.hello.index)] = p.fd;
      p.fd = -1;
      ++kept;
    }
    pending_.erase(
        std::remove_if(pending_.begin(), pending_.end(), [](const Pending& p) { return p.fd < 0; }),
        pending_.end());
    return kept;
  }

  const TransportContext ctx_;
  uint8_t key_[16];
  int64_t timeoutMs_ = 0;
  int nthreads_ = 1;
  int nsocks_ = 1;
  int listenFd_ = -1;
  SocketAddress listenAddr_{};
  std::vector<std::unique_ptr<SocketLink>> links_;
  std::vector<SocketLink*> byPeer_;
  std::vector<Lane> lanes_;
  SocketHelpers helpers_;  // declared after links_ and lanes_: its threads stop before they go
  std::vector<Pending> pending_;
  int64_t nextStrangerCheckNs_ = 0;
  bool closed_ = false;
};

// Any two ranks can talk over TCP; the registry puts this transport after shm, so it connects
// the ranks that shm does not (other hosts, or every pair under FCCL_SHM_DISABLE).
bool anyPair(const PeerInfo&, const PeerInfo&) { return true; }

std::unique_ptr<TransportComm> createSocket(const TransportContext& ctx) {
  return std::make_unique<SocketComm>(ctx);
}

}  // namespace

const Transport kSocketTransport{"socket", anyPair, createSocket};

}  // namespace fccl
