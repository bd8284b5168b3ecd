// bootstrap.cc - the rank side of the bootstrap (see bootstrap.h): join the root, connect the
// ring, allGather, barrier, tagged send/recv and abort. The root is in bootstrap_root.cc and
// the wire format both sides speak in bootstrap_wire.h, with its invariants.
#include "src/bootstrap.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "src/base/checks.h"
#include "src/base/debug.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "src/base/rdma_ports.h"
#include "src/base/wait.h"
#include "src/bootstrap_wire.h"
#include "src/hello_inbox.h"

namespace fccl {

namespace {

PeerInfo localPeerInfo(int rank, const fcclUniqueId& id) {
  PeerInfo p{};
  p.rank = rank;
  p.pid = int(getpid());
  gethostname(p.hostname, sizeof(p.hostname) - 1);
  p.hostname[sizeof(p.hostname) - 1] = '\0';
  // Hostname alone is not enough (containers share names); the boot id tells kernels apart.
  // Network namespaces with their own UTS hostname are different hosts (no shared memory is
  // assumed between them); FCCL_HOSTID overrides both when the user knows better.
  std::string host = p.hostname;
  if (FILE* f = fopen("/proc/sys/kernel/random/boot_id", "r")) {
    char boot[64] = {};
    if (fgets(boot, sizeof(boot), f)) host += boot;
    fclose(f);
  }
  if (!env().hostId.empty()) host = "FCCL_HOSTID=" + env().hostId;
  p.hostHash = hash64(host.data(), host.size(), 0);
  p.commHash = hash64(id.internal, sizeof(id.internal), 1);
  p.rdmaPorts = activeRdmaPorts(nullptr);
  return p;
}

}  // namespace

// ---- a rank ----

struct Bootstrap::Impl {
  int rank = 0;
  int nranks = 0;
  int64_t timeoutMs = 0;
  const std::atomic<int>* abortFlag = nullptr;
  std::atomic<int> aborted{0};
  uint8_t secret[32] = {};
  int listenFd = -1;
  SocketAddress listenAddr{};
  std::string listenIfname;
  std::vector<TableEntry> peers;
  int ringNext = -1;         // connection to rank+1 (we send on it)
  int ringPrev = -1;         // connection from rank-1 (we receive on it)
  std::vector<int> sendFds;  // per peer: our connection to it (p2p send)
  std::vector<int> recvFds;  // per peer: its connection to us (p2p recv)
  struct Incoming {
    int peer, kind, fd;
  };
  std::unique_ptr<HelloInbox> inbox;       // connections to listenFd whose hello has not arrived whole
  std::vector<HelloInbox::Client> hellos;  // scratch: the ones whose hello just arrived
  std::vector<Incoming> incoming;          // identified connections nobody asked for yet
  std::deque<StashedMessage> stash;        // p2p messages received while looking for another tag
  size_t stashBytes = 0;                   // their payload bytes, at most kMaxStashBytes
  uint32_t gatherSeq = 0;
  std::string broken;  // set when a stream lost sync: later calls fail with this sentence
  std::mutex fdMu;     // guards `tracked` (abort() runs on another thread)
  std::vector<int> tracked;

  IoLimit limit() { return ioLimitAfterMs(timeoutMs, abortFlag, &aborted); }
  void track(int fd);
  void closeFd(int* fd);  // untracks first, so abort() never shuts down a reused fd number
  fcclResult_t fail(IoStatus st, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
  fcclResult_t join(const fcclUniqueId& id);
  fcclResult_t connectPeer(int peer, PeerConnKind kind, const IoLimit& lim, int* fd);
  fcclResult_t acceptPeer(int peer, PeerConnKind kind, const IoLimit& lim, int* fd);
  void identify(HelloInbox::Client& c);  // to `incoming`, or rejected
  ~Impl();
};

void Bootstrap::Impl::track(int fd) {
  std::lock_guard<std::mutex> lock(fdMu);
  tracked.push_back(fd);
  if (aborted.load()) shutdown(fd, SHUT_RDWR);
}

void Bootstrap::Impl::closeFd(int* fd) {
  std::lock_guard<std::mutex> lock(fdMu);
  tracked.erase(std::remove(tracked.begin(), tracked.end(), *fd), tracked.end());
  socketClose(fd);
}

Bootstrap::Impl::~Impl() {
  for (int fd : tracked) close(fd);
  for (Incoming& in : incoming) close(in.fd);
}

fcclResult_t Bootstrap::Impl::fail(IoStatus st, const char* fmt, ...) {
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  switch (st.kind) {
    case IoStatus::kTimeout:
      return setError(fcclRemoteError, "rank %d: bootstrap timed out after %lld ms waiting for %s", rank,
                      (long long)timeoutMs, what);
    case IoStatus::kAborted:
      return setError(fcclSystemError, "rank %d: bootstrap aborted while waiting for %s", rank, what);
    case IoStatus::kClosed:
      return setError(fcclRemoteError,
                      "rank %d: bootstrap connection closed while waiting for %s (did that rank fail?)", rank,
                      what);
    default:
      return setError(fcclSystemError, "rank %d: bootstrap socket error while waiting for %s: %s", rank, what,
                      strerror(st.err));
  }
}

fcclResult_t Bootstrap::Impl::connectPeer(int peer, PeerConnKind kind, const IoLimit& lim, int* fd) {
  const char* what = kind == kConnRing ? "ring connection" : "connection for send";
  IoStatus st = socketConnect(peers[peer].listenAddr, lim, fd);
  if (!st.ok())
    return fail(st, "rank %d (%s to %s)", peer, what, socketAddressToString(peers[peer].listenAddr).c_str());
  track(*fd);
  PeerHelloFrame out{};
  out.hdr = makeHeader(kMsgPeerHello, 0, sizeof(PeerHello));
  memcpy(out.hello.secret, secret, 32);
  out.hello.rank = rank;
  out.hello.kind = kind;
  st = socketSendAll(*fd, &out, sizeof(out), lim);
  if (!st.ok()) return fail(st, "rank %d (%s)", peer, what);
  return fcclSuccess;
}

// Waits until the connection from `peer` of `kind` is identified. Connections of other ranks
// (p2p connections from ranks that are already further along) are kept in `incoming` for
// whoever wants them. The inbox reads every new connection at once, so a silent or slow client
// (not a rank of this communicator) delays nobody.
fcclResult_t Bootstrap::Impl::acceptPeer(int peer, PeerConnKind kind, const IoLimit& lim, int* fd) {
  const char* what = kind == kConnRing ? "ring connection" : "connection for recv";
  if (!inbox)
    inbox = std::make_unique<HelloInbox>(kMsgPeerHello, sizeof(PeerHelloFrame),
                                         "rank " + std::to_string(rank) + ": bootstrap");
  for (;;) {
    for (size_t i = 0; i < incoming.size(); i++) {
      if (incoming[i].peer == peer && incoming[i].kind == kind) {
        *fd = incoming[i].fd;
        incoming.erase(incoming.begin() + long(i));
        track(*fd);
        return fcclSuccess;
      }
    }
    IoStatus st = ioCheckLimit(lim);
    if (!st.ok()) return fail(st, "rank %d (%s)", peer, what);
    hellos.clear();
    st = inbox->poll(listenFd, ioPollSliceMs(lim), &hellos);
    // A listening socket shut down by abort() fails with EINVAL: report the abort.
    if (!st.ok())
      return fail(lim.aborted() ? IoStatus{IoStatus::kAborted, 0} : st, "rank %d (%s)", peer, what);
    for (HelloInbox::Client& c : hellos) identify(c);
  }
}

void Bootstrap::Impl::identify(HelloInbox::Client& c) {
  PeerHello hello;
  WireStatus ws = wireParsePeerHello(c.frame, sizeof(PeerHelloFrame), secret, nranks, &hello);
  if (!ws.ok()) return inbox->reject(c, ws.why.c_str());
  // Each rank opens one connection of each kind to us: a second one is not that rank's.
  const bool duplicate =
      std::any_of(incoming.begin(), incoming.end(),
                  [&](const Incoming& i) { return i.peer == hello.rank && i.kind == hello.kind; }) ||
      (hello.kind == kConnP2p && recvFds[hello.rank] >= 0) || (hello.kind == kConnRing && ringPrev >= 0);
  if (duplicate) return inbox->reject(c, "a second connection of the same kind from the same rank");
  incoming.push_back({hello.rank, hello.kind, c.fd});
}

fcclResult_t Bootstrap::Impl::join(const fcclUniqueId& id) {
  UniqueIdContents c = idContents(id);
  memcpy(secret, c.secret, 32);
  IoLimit lim = limit();

  SocketAddress local;
  std::string ifname;
  // The interface on the root's subnet unless FCCL_SOCKET_IFNAME says otherwise (socket.h).
  FCCL_CHECK(socketFindInterface(&local, &ifname, &c.addr));
  FCCL_CHECK(socketListen(local, &listenFd, &listenAddr));
  listenIfname = ifname;
  track(listenFd);

  std::string rootName = socketAddressToString(c.addr);
  int rootFd = -1;
  IoStatus st = socketConnect(c.addr, lim, &rootFd);
  if (!st.ok()) return fail(st, "the root at %s (connect)", rootName.c_str());
  track(rootFd);
  RootHelloFrame out{};
  out.hdr = makeHeader(kMsgHello, 0, sizeof(RootHello));
  memcpy(out.hello.secret, secret, 32);
  out.hello.rank = rank;
  out.hello.nranks = nranks;
  out.hello.timeoutMs = timeoutMs;
  out.hello.listenAddr = listenAddr;
  out.hello.info = localPeerInfo(rank, id);
  st = socketSendAll(rootFd, &out, sizeof(out), lim);
  if (!st.ok()) return fail(st, "the root at %s (hello)", rootName.c_str());

  // The root answers when every rank joined; it reports a missing rank just after our
  // timeout, so wait a little longer for that sentence before giving up on our own.
  IoLimit rootLim = lim;
  rootLim.deadlineNs += kRootReplyGraceMs * 1000000;
  WireHeader h;
  st = socketRecvAll(rootFd, &h, sizeof(h), rootLim);
  if (!st.ok()) return fail(st, "the root at %s (table of ranks)", rootName.c_str());
  if (wireParseHeader(&h, sizeof(h), kMsgError, sizeof(ErrorMsg), nullptr).ok()) {
    ErrorMsg msg;
    st = socketRecvAll(rootFd, &msg, sizeof(msg), rootLim);
    if (!st.ok()) return fail(st, "the root at %s (error message)", rootName.c_str());
    fcclResult_t code;
    std::string text;
    WireStatus ws = wireParseErrorMsg(&msg, sizeof(msg), &code, &text);
    if (!ws.ok())
      return setError(ws.code, "rank %d: bootstrap root at %s: %s", rank, rootName.c_str(), ws.why.c_str());
    if (code == fcclRemoteError) return setError(code, "rank %d: bootstrap %s", rank, text.c_str());
    return setError(code, "rank %d: bootstrap root rejected this rank: %s", rank, text.c_str());
  }
  // The table's size is this rank's own nranks entries, so nothing is sized by the wire.
  const uint64_t tableBytes = uint64_t(nranks) * sizeof(TableEntry);
  WireStatus ws = wireParseHeader(&h, sizeof(h), kMsgTable, tableBytes, nullptr);
  if (!ws.ok())
    return setError(fcclInternalError, "rank %d: bootstrap root at %s sent a malformed table: %s", rank,
                    rootName.c_str(), ws.why.c_str());
  std::vector<char> raw(tableBytes);
  st = socketRecvAll(rootFd, raw.data(), raw.size(), rootLim);
  if (!st.ok()) return fail(st, "the root at %s (table of ranks)", rootName.c_str());
  ws = wireParseTable(raw.data(), raw.size(), nranks, &peers);
  if (!ws.ok())
    return setError(fcclInternalError, "rank %d: bootstrap root at %s sent a malformed table: %s", rank,
                    rootName.c_str(), ws.why.c_str());
  closeFd(&rootFd);
  sendFds.assign(size_t(nranks), -1);
  recvFds.assign(size_t(nranks), -1);
  FCCL_INFO(kLogBootstrap, "rank %d/%d: bootstrap joined root %s, listening on %s (%s)", rank, nranks,
            rootName.c_str(), socketAddressToString(listenAddr).c_str(), ifname.c_str());
  if (nranks == 1) return fcclSuccess;

  // Ring: connect forward first (it completes in the peer's backlog even before the peer
  // accepts), then accept from behind, so no rank waits on another's accept order.
  int next = (rank + 1) % nranks, prev = (rank + nranks - 1) % nranks;
  FCCL_CHECK(connectPeer(next, kConnRing, lim, &ringNext));
  FCCL_CHECK(acceptPeer(prev, kConnRing, lim, &ringPrev));
  return fcclSuccess;
}

fcclResult_t Bootstrap::create(const fcclUniqueId& id, int rank, int nranks, int64_t timeoutMs,
                               const std::atomic<int>* abortFlag, std::unique_ptr<Bootstrap>* out) {
  if (!out) return setError(fcclInvalidArgument, "bootstrap: out is NULL");
  UniqueIdContents c = idContents(id);
  if (c.magic != kUniqueIdMagic)
    return setError(fcclInvalidArgument, "fcclCommInitRank: unique id is corrupted (bad magic)");
  if (!validAddress(c.addr))
    return setError(fcclInvalidArgument, "fcclCommInitRank: unique id is corrupted (bad root address)");
  if (nranks < 1)
    return setError(fcclInvalidArgument, "fcclCommInitRank: nranks=%d, must be at least 1", nranks);
  if (rank < 0 || rank >= nranks)
    return setError(fcclInvalidArgument, "fcclCommInitRank: rank=%d is out of range [0, %d)", rank, nranks);
  if (timeoutMs <= 0) timeoutMs = env().timeoutMs;
  if ((c.flags & kIdFixedRoot) != 0 && rank == 0) FCCL_CHECK(bootstrapStartRoot(id));

  std::unique_ptr<Bootstrap> b(new Bootstrap());
  b->rank_ = rank;
  b->nranks_ = nranks;
  b->impl_ = std::make_unique<Impl>();
  Impl& im = *b->impl_;
  im.rank = rank;
  im.nranks = nranks;
  im.timeoutMs = timeoutMs;
  im.abortFlag = abortFlag;
  FCCL_CHECK(im.join(id));
  *out = std::move(b);
  return fcclSuccess;
}

Bootstrap::~Bootstrap() = default;

const PeerInfo& Bootstrap::peer(int r) const { return impl_->peers[size_t(r)].info; }
const SocketAddress& Bootstrap::listenAddress() const { return impl_->listenAddr; }
const std::string& Bootstrap::interfaceName() const { return impl_->listenIfname; }
const uint8_t* Bootstrap::secret() const { return impl_->secret; }

fcclResult_t Bootstrap::allGather(void* data, size_t bytes) {
  Impl& im = *impl_;
  if (!im.broken.empty()) return setError(fcclInternalError, "rank %d: %s", rank_, im.broken.c_str());
  uint32_t seq = im.gatherSeq++;
  if (nranks_ == 1) return fcclSuccess;
  IoLimit lim = im.limit();
  char* base = static_cast<char*>(data);
  int prev = (rank_ + nranks_ - 1) % nranks_;
  // Step s: pass on the block that arrived in step s-1 (our own in step 0); after n-1 steps
  // every block has travelled around the ring to every rank.
  for (int step = 0; step < nranks_ - 1; step++) {
    int sendBlock = (rank_ - step + nranks_) % nranks_;
    int recvBlock = (rank_ - step - 1 + nranks_) % nranks_;
    WireHeader sh = makeHeader(kMsgGather, seq, bytes), rh;
    IoStatus st = socketSendRecv(im.ringNext, &sh, sizeof(sh), im.ringPrev, &rh, sizeof(rh), lim);
    if (!st.ok()) return im.fail(st, "rank %d (allGather #%u step %d)", prev, seq, step);
    WireStatus ws = wireParseGatherHeader(&rh, sizeof(rh), seq, bytes);
    if (!ws.ok()) {
      im.broken = "bootstrap ring lost sync: rank " + std::to_string(prev) + " " + ws.why;
      return setError(ws.code, "rank %d: %s", rank_, im.broken.c_str());
    }
    st = socketSendRecv(im.ringNext, base + size_t(sendBlock) * bytes, bytes, im.ringPrev,
                        base + size_t(recvBlock) * bytes, bytes, lim);
    if (!st.ok()) return im.fail(st, "rank %d (allGather #%u step %d)", prev, seq, step);
  }
  return fcclSuccess;
}

fcclResult_t Bootstrap::barrier() {
  std::vector<char> buf(size_t(nranks_), 0);
  return allGather(buf.data(), 1);
}

fcclResult_t Bootstrap::send(int peer, uint32_t tag, const void* data, size_t bytes) {
  Impl& im = *impl_;
  if (peer < 0 || peer >= nranks_)
    return setError(fcclInvalidArgument, "rank %d: bootstrap send to rank %d, out of range [0, %d)", rank_,
                    peer, nranks_);
  if (bytes > kMaxMessageBytes)
    return setError(fcclInvalidArgument, "rank %d: bootstrap send of %zu bytes exceeds the %zu-byte cap",
                    rank_, bytes, kMaxMessageBytes);
  if (peer == rank_) {
    if (im.stashBytes + bytes > kMaxStashBytes)
      return setError(fcclInvalidUsage,
                      "rank %d: bootstrap send of %zu bytes to itself would put the unclaimed messages over "
                      "%zu bytes",
                      rank_, bytes, kMaxStashBytes);
    const char* p = static_cast<const char*>(data);
    im.stash.push_back({peer, tag, std::vector<char>(p, p + bytes)});
    im.stashBytes += bytes;
    return fcclSuccess;
  }
  IoLimit lim = im.limit();
  if (im.sendFds[peer] < 0) FCCL_CHECK(im.connectPeer(peer, kConnP2p, lim, &im.sendFds[peer]));
  WireHeader h = makeHeader(kMsgP2p, tag, bytes);
  IoStatus st = socketSendAll(im.sendFds[peer], &h, sizeof(h), lim);
  if (st.ok()) st = socketSendAll(im.sendFds[peer], data, bytes, lim);
  if (!st.ok()) return im.fail(st, "rank %d (send tag %u, %zu bytes)", peer, tag, bytes);
  return fcclSuccess;
}

namespace {

// A bootstrap connection as the wire parser reads it: the socket, bounded by the call's limit.
class SocketReader final : public WireReader {
 public:
  SocketReader(int fd, const IoLimit& lim) : fd_(fd), lim_(lim) {}
  IoStatus read(void* data, size_t n) override { return socketRecvAll(fd_, data, n, lim_); }

 private:
  int fd_;
  const IoLimit& lim_;
};

}  // namespace

fcclResult_t Bootstrap::recv(int peer, uint32_t tag, void* data, size_t bytes) {
  Impl& im = *impl_;
  if (peer < 0 || peer >= nranks_)
    return setError(fcclInvalidArgument, "rank %d: bootstrap recv from rank %d, out of range [0, %d)", rank_,
                    peer, nranks_);
  for (auto it = im.stash.begin(); it != im.stash.end(); ++it) {
    if (it->peer != peer || it->tag != tag) continue;
    const size_t got = it->data.size();
    if (got == bytes && bytes) memcpy(data, it->data.data(), bytes);
    im.stashBytes -= got;
    im.stash.erase(it);
    if (got != bytes)
      return setError(fcclInvalidUsage,
                      "rank %d: bootstrap recv from rank %d tag %u: message has %zu bytes, expected %zu",
                      rank_, peer, tag, got, bytes);
    return fcclSuccess;
  }
  if (peer == rank_)
    return setError(fcclInvalidUsage,
                    "rank %d: bootstrap recv from itself with tag %u, but no such send was posted", rank_,
                    tag);
  if (!im.broken.empty()) return setError(fcclInternalError, "rank %d: %s", rank_, im.broken.c_str());
  IoLimit lim = im.limit();
  if (im.recvFds[peer] < 0) FCCL_CHECK(im.acceptPeer(peer, kConnP2p, lim, &im.recvFds[peer]));
  SocketReader in(im.recvFds[peer], lim);
  WireStatus ws = wireRecvP2p(in, tag, data, bytes, peer, &im.stash, &im.stashBytes);
  if (ws.ok()) return fcclSuccess;
  if (!ws.io.ok()) return im.fail(ws.io, "rank %d (message with tag %u)", peer, tag);
  if (ws.code == fcclInternalError) {
    im.broken = "bootstrap stream from rank " + std::to_string(peer) + " " + ws.why;
    return setError(fcclInternalError, "rank %d: %s", rank_, im.broken.c_str());
  }
  return setError(ws.code, "rank %d: bootstrap recv from rank %d tag %u: %s", rank_, peer, tag,
                  ws.why.c_str());
}

void Bootstrap::abort() {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.fdMu);
  im.aborted.store(1);
  // Shutting down (not closing) wakes any poll on these fds now; the owner closes them later.
  for (int fd : im.tracked) shutdown(fd, SHUT_RDWR);
}

}  // namespace fccl
