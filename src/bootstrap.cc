// bootstrap.cc - unique ids, the root thread, and the per-rank bootstrap (see bootstrap.h).
// Invariants: every wire message starts with a fixed WireHeader whose magic, type and length
// are checked before its payload is read, and no length from the wire sizes an allocation
// beyond kMaxMessageBytes; the root is single-threaded and never blocks on one client (it
// polls all of them), so garbage or silent connections cannot stop real ranks from joining.
// About 870 lines, past STYLE's ~600: the root (first half) and the ranks (second half) share
// the private wire format; they are the natural split into bootstrap_root.cc if it grows.
#include "bootstrap.h"

#include <poll.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "checks.h"
#include "debug.h"
#include "env.h"
#include "error.h"
#include "wait.h"

namespace fccl {

namespace {

// ---- wire format (same binary on every rank: plain structs, host byte order) ----

constexpr uint64_t kWireMagic = 0x6663636c424f4f54ull;  // "fcclBOOT"
constexpr size_t kMaxMessageBytes = size_t(1) << 30;    // cap for p2p payloads from peers
constexpr int kMaxRanks = 1 << 16;                      // cap for the root's table
constexpr int kMaxPendingConnections = 1024;            // root: unidentified clients at once
constexpr int64_t kRootReplyGraceMs = 250;              // rank waits this long past its timeout
                                                        // for the root's "who is missing" reply

enum MsgType : uint32_t {
  kMsgHello = 1,      // rank -> root: RootHello
  kMsgTable = 2,      // root -> rank: nranks x TableEntry
  kMsgError = 3,      // root -> rank: ErrorMsg, then the root closes
  kMsgPeerHello = 4,  // rank -> rank, first message on a new connection: PeerHello
  kMsgGather = 5,     // ring allGather block (tag = the call's sequence number)
  kMsgP2p = 6,        // tagged point-to-point message
};

struct WireHeader {
  uint64_t magic;
  uint32_t type;
  uint32_t tag;
  uint64_t length;  // payload bytes that follow
};

struct RootHello {
  uint8_t secret[32];
  int32_t rank;
  int32_t nranks;
  int64_t timeoutMs;  // the rank gives up after this; the root reports who is missing by then
  SocketAddress listenAddr;
  PeerInfo info;
};

struct TableEntry {
  SocketAddress listenAddr;
  PeerInfo info;
};

struct ErrorMsg {
  int32_t code;  // fcclResult_t
  char text[252];
};

enum PeerConnKind : int32_t { kConnRing = 1, kConnP2p = 2 };

struct PeerHello {
  uint8_t secret[32];
  int32_t rank;
  int32_t kind;  // PeerConnKind
};

WireHeader makeHeader(MsgType type, uint32_t tag, uint64_t length) {
  WireHeader h;
  h.magic = kWireMagic;
  h.type = type;
  h.tag = tag;
  h.length = length;
  return h;
}

// ---- hashing (not cryptographic: the secret only keeps stale or foreign jobs out) ----

uint64_t mix64(uint64_t x) {  // splitmix64's finalizer: every input bit reaches every output bit
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t hash64(const void* data, size_t n, uint64_t seed) {  // FNV-1a, seeded, then mixed
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t h = 0xcbf29ce484222325ull ^ mix64(seed);
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return mix64(h ^ n);
}

// 256 bits from text: four differently seeded lanes, each lane also keyed by the previous one
// so the lanes are not independent functions of the same FNV state.
void hash256(const std::string& text, uint8_t out[32]) {
  uint64_t prev = 0x6663636c53454352ull;  // "fcclSECR"
  for (int lane = 0; lane < 4; lane++) {
    prev = hash64(text.data(), text.size(), prev + 0x9e3779b97f4a7c15ull * uint64_t(lane + 1));
    memcpy(out + 8 * lane, &prev, 8);
  }
}

bool sameSecret(const uint8_t* a, const uint8_t* b) {
  uint8_t diff = 0;  // constant time, out of habit
  for (int i = 0; i < 32; i++) diff |= a[i] ^ b[i];
  return diff == 0;
}

UniqueIdContents idContents(const fcclUniqueId& id) {
  UniqueIdContents c;
  memcpy(&c, id.internal, sizeof(c));
  return c;
}

bool validAddress(const SocketAddress& a) {
  return a.sa.sa_family == AF_INET || a.sa.sa_family == AF_INET6;
}

// ---- the root ----

struct RootClient {
  int fd = -1;
  SocketAddress from{};
  size_t got = 0;  // bytes of `frame` received so far
  struct {
    WireHeader hdr;
    RootHello hello;
  } frame{};
  int64_t joinNs = 0;
};

class Root {
 public:
  Root(int listenFd, const uint8_t secret[32], int64_t timeoutMs)
      : listenFd_(listenFd), timeoutMs_(timeoutMs > 0 ? timeoutMs : int64_t(1) << 40) {
    memcpy(secret_, secret, 32);
  }
  void run();

 private:
  void acceptNew();
  // Reads what is available; false when the client was dropped (or moved to joined_).
  bool serve(RootClient& c);
  void reject(RootClient& c, const char* why);  // WARN, close
  void replyError(RootClient& c, fcclResult_t code, const char* fmt, ...)
      __attribute__((format(printf, 4, 5)));
  void join(RootClient& c);
  void checkJoinedAlive();
  void sendTable();
  void timeOut();

  int listenFd_;
  uint8_t secret_[32];
  int64_t timeoutMs_;
  int nranks_ = 0;      // fixed by the first valid hello
  int firstRank_ = -1;  // the rank whose hello fixed nranks_
  int joinedCount_ = 0;
  std::vector<RootClient> joined_;  // by rank; fd < 0 while not joined
  std::vector<RootClient> pending_;
};

void Root::reject(RootClient& c, const char* why) {
  FCCL_WARN("bootstrap root: rejected connection from %s: %s",
            socketAddressToString(c.from).c_str(), why);
  socketClose(&c.fd);
}

void Root::replyError(RootClient& c, fcclResult_t code, const char* fmt, ...) {
  struct {
    WireHeader hdr;
    ErrorMsg msg;
  } out{};
  out.hdr = makeHeader(kMsgError, 0, sizeof(ErrorMsg));
  out.msg.code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out.msg.text, sizeof(out.msg.text), fmt, ap);
  va_end(ap);
  FCCL_WARN("bootstrap root: error reply to rank %d at %s: %s", c.frame.hello.rank,
            socketAddressToString(c.from).c_str(), out.msg.text);
  // A few hundred bytes fit in any socket buffer: this does not wait on a slow client.
  socketSendAll(c.fd, &out, sizeof(out), ioLimitAfterMs(1000));
  socketClose(&c.fd);
}

void Root::acceptNew() {
  for (;;) {
    RootClient c;
    socklen_t len = sizeof(c.from);
    c.fd = accept4(listenFd_, &c.from.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c.fd < 0) return;  // EAGAIN (drained) or a transient error: poll again
    if (int(pending_.size()) >= kMaxPendingConnections) {
      reject(c, "too many unidentified connections");
      continue;
    }
    pending_.push_back(c);
  }
}

bool Root::serve(RootClient& c) {
  char* buf = reinterpret_cast<char*>(&c.frame);
  size_t want = c.got < sizeof(WireHeader) ? sizeof(WireHeader) : sizeof(c.frame);
  ssize_t n = recv(c.fd, buf + c.got, want - c.got, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
  if (n <= 0) {
    char why[96];
    snprintf(why, sizeof(why), "truncated hello (connection closed after %zu of %zu bytes)",
             c.got, sizeof(c.frame));
    reject(c, why);
    return false;
  }
  c.got += size_t(n);
  if (c.got == sizeof(WireHeader)) {
    const WireHeader& h = c.frame.hdr;
    char why[128];
    if (h.magic != kWireMagic) {
      reject(c, "not an fccl bootstrap hello (bad magic)");
      return false;
    }
    if (h.type != kMsgHello || h.length != sizeof(RootHello)) {
      snprintf(why, sizeof(why), "bad hello header: type %u, length %llu (expected type %u, length %zu)",
               h.type, (unsigned long long)h.length, unsigned(kMsgHello), sizeof(RootHello));
      reject(c, why);
      return false;
    }
  }
  if (c.got < sizeof(c.frame)) return true;
  const RootHello& h = c.frame.hello;
  if (!sameSecret(h.secret, secret_)) {
    reject(c, "wrong secret");
    return false;
  }
  if (h.nranks < 1 || h.nranks > kMaxRanks) {
    replyError(c, fcclInvalidUsage, "rank %d says nranks=%d, outside [1, %d]", h.rank, h.nranks,
               kMaxRanks);
    return false;
  }
  if (h.rank < 0 || h.rank >= h.nranks) {
    replyError(c, fcclInvalidUsage, "rank %d is out of range for nranks=%d", h.rank, h.nranks);
    return false;
  }
  if (nranks_ == 0) {
    nranks_ = h.nranks;
    firstRank_ = h.rank;
    joined_.resize(size_t(nranks_));
  } else if (h.nranks != nranks_) {
    replyError(c, fcclInvalidUsage, "rank %d says nranks=%d but rank %d said nranks=%d", h.rank,
               h.nranks, firstRank_, nranks_);
    return false;
  }
  if (joined_[h.rank].fd >= 0) {
    replyError(c, fcclInvalidUsage, "rank %d joined twice (first from %s, again from %s)", h.rank,
               socketAddressToString(joined_[h.rank].from).c_str(),
               socketAddressToString(c.from).c_str());
    return false;
  }
  join(c);
  return false;
}

void Root::join(RootClient& c) {
  int r = c.frame.hello.rank;
  c.joinNs = nowNs();
  joined_[r] = c;
  c.fd = -1;  // ownership moved
  joinedCount_++;
  FCCL_INFO(kLogBootstrap, "bootstrap root: rank %d of %d joined from %s (%d/%d)", r, nranks_,
            socketAddressToString(joined_[r].from).c_str(), joinedCount_, nranks_);
}

// A joined rank sends nothing more; readable means it closed (gave up, crashed): free its slot
// so it does not count as present, and a restarted rank may take it.
void Root::checkJoinedAlive() {
  std::vector<pollfd> pfds;
  for (const RootClient& j : joined_)
    if (j.fd >= 0) pfds.push_back({j.fd, POLLIN, 0});
  if (pfds.empty() || poll(pfds.data(), pfds.size(), 0) <= 0) return;
  for (const pollfd& p : pfds) {
    if (!p.revents) continue;
    for (RootClient& j : joined_) {
      if (j.fd != p.fd) continue;
      FCCL_INFO(kLogBootstrap, "bootstrap root: rank %d left before all ranks joined",
                j.frame.hello.rank);
      socketClose(&j.fd);
      joinedCount_--;
    }
  }
}

void Root::sendTable() {
  std::vector<char> buf(sizeof(WireHeader) + size_t(nranks_) * sizeof(TableEntry));
  WireHeader h = makeHeader(kMsgTable, 0, uint64_t(nranks_) * sizeof(TableEntry));
  memcpy(buf.data(), &h, sizeof(h));
  for (int r = 0; r < nranks_; r++) {
    TableEntry e;
    e.listenAddr = joined_[r].frame.hello.listenAddr;
    e.info = joined_[r].frame.hello.info;
    e.info.rank = r;
    memcpy(buf.data() + sizeof(h) + size_t(r) * sizeof(e), &e, sizeof(e));
  }
  for (RootClient& j : joined_) {
    IoStatus st = socketSendAll(j.fd, buf.data(), buf.size(), ioLimitAfterMs(timeoutMs_ < 60000 ? timeoutMs_ : 60000));
    if (!st.ok())
      FCCL_WARN("bootstrap root: could not send the table to rank %d: %s", j.frame.hello.rank,
                ioStatusString(st).c_str());
    socketClose(&j.fd);
  }
  FCCL_INFO(kLogBootstrap, "bootstrap root: all %d ranks joined; table sent, root exits", nranks_);
}

void Root::timeOut() {
  std::string missing;
  int nMissing = 0;
  for (int r = 0; r < nranks_; r++) {
    if (joined_[r].fd >= 0) continue;
    if (nMissing < 8) missing += (nMissing ? ", " : "") + std::to_string(r);
    nMissing++;
  }
  if (nMissing > 8) missing += ", ...";
  for (RootClient& j : joined_) {
    if (j.fd < 0) continue;
    int64_t waitedMs = (nowNs() - j.joinNs) / 1000000;
    replyError(j, fcclRemoteError, "timed out after %lld ms waiting for rank%s %s (%d of %d ranks joined the root)",
               (long long)waitedMs, nMissing > 1 ? "s" : "", missing.c_str(), joinedCount_, nranks_);
  }
  FCCL_WARN("bootstrap root: giving up, %d of %d ranks joined (missing: %s)", joinedCount_,
            nranks_, nranks_ ? missing.c_str() : "all");
}

void Root::run() {
  logSetRank(-1);
  const int64_t rootDeadlineNs = nowNs() + timeoutMs_ * 1000000;
  while (nranks_ == 0 || joinedCount_ < nranks_) {
    // Report before the earliest joined rank gives up, so it learns who is missing.
    int64_t deadlineNs = rootDeadlineNs;
    for (const RootClient& j : joined_)
      if (j.fd >= 0 && j.frame.hello.timeoutMs > 0)
        deadlineNs = std::min(deadlineNs, j.joinNs + j.frame.hello.timeoutMs * 1000000);
    int64_t now = nowNs();
    if (now >= deadlineNs) {
      timeOut();
      break;
    }
    std::vector<pollfd> pfds;
    pfds.push_back({listenFd_, POLLIN, 0});
    for (const RootClient& c : pending_) pfds.push_back({c.fd, POLLIN, 0});
    int64_t leftMs = (deadlineNs - now) / 1000000 + 1;
    poll(pfds.data(), pfds.size(), int(leftMs < 100 ? leftMs : 100));
    if (pfds[0].revents) acceptNew();
    // pending_ may have grown in acceptNew; the new ones are served on the next turn.
    std::vector<RootClient> still;
    for (size_t i = 0; i + 1 < pfds.size(); i++) {
      RootClient& c = pending_[i];
      if (!pfds[i + 1].revents || serve(c)) still.push_back(c);
    }
    for (size_t i = pfds.size() - 1; i < pending_.size(); i++) still.push_back(pending_[i]);
    pending_.swap(still);
    checkJoinedAlive();
  }
  // Stop listening first: with FCCL_COMM_ID the next communicator's root binds this same
  // port as soon as its rank 0 gets here, which may be right after it receives the table.
  socketClose(&listenFd_);
  for (RootClient& c : pending_) socketClose(&c.fd);
  if (nranks_ > 0 && joinedCount_ == nranks_) sendTable();
  for (RootClient& j : joined_) socketClose(&j.fd);
}

fcclResult_t startRootThread(int listenFd, const uint8_t secret[32]) {
  try {
    std::thread([listenFd, secret = std::vector<uint8_t>(secret, secret + 32),
                 timeoutMs = env().timeoutMs]() {
      try {
        Root(listenFd, secret.data(), timeoutMs).run();
      } catch (const std::exception& e) {
        FCCL_WARN("bootstrap root: stopped: %s", e.what());
      }
    }).detach();
  } catch (const std::exception& e) {
    close(listenFd);
    return setError(fcclSystemError, "cannot start the bootstrap root thread: %s", e.what());
  }
  return fcclSuccess;
}

// ---- a rank's identity ----

PeerInfo localPeerInfo(int rank, const fcclUniqueId& id) {
  PeerInfo p{};
  p.rank = rank;
  p.pid = int(getpid());
  gethostname(p.hostname, sizeof(p.hostname) - 1);
  p.hostname[sizeof(p.hostname) - 1] = '\0';
  // Hostname alone is not enough (containers share names); the boot id tells kernels apart.
  std::string host = p.hostname;
  if (FILE* f = fopen("/proc/sys/kernel/random/boot_id", "r")) {
    char boot[64] = {};
    if (fgets(boot, sizeof(boot), f)) host += boot;
    fclose(f);
  }
  p.hostHash = hash64(host.data(), host.size(), 0);
  p.commHash = hash64(id.internal, sizeof(id.internal), 1);
  return p;
}

}  // namespace

// ---- unique ids ----

fcclResult_t bootstrapIdFromEnv(fcclUniqueId* id) {
  UniqueIdContents c;
  memset(&c, 0, sizeof(c));
  c.magic = kUniqueIdMagic;
  FCCL_CHECK(socketAddressParse(env().commId, &c.addr));
  // Every rank derives the same secret; without FCCL_COMM_SECRET it is a fixed string, which
  // still keeps jobs that use another secret (or a random unique id) apart.
  hash256(env().commSecret.empty() ? std::string("fccl default bootstrap secret v1")
                                   : env().commSecret,
          c.secret);
  memset(id, 0, sizeof(*id));
  memcpy(id->internal, &c, sizeof(c));
  return fcclSuccess;
}

fcclResult_t bootstrapStartRoot(const fcclUniqueId& id) {
  UniqueIdContents c = idContents(id);
  if (c.magic != kUniqueIdMagic || !validAddress(c.addr))
    return setError(fcclInvalidArgument, "bootstrap: cannot start a root for a corrupted unique id");
  int fd = -1;
  SocketAddress bound;
  if (socketListen(c.addr, &fd, &bound) != fcclSuccess) {
    // FCCL_COMM_ID may name this host by an address that is not local as such (NAT, a name
    // for a VIP): listen on every address with that port instead.
    SocketAddress any = {};
    any.sa.sa_family = c.addr.sa.sa_family;
    if (any.sa.sa_family == AF_INET) {
      any.sin.sin_port = c.addr.sin.sin_port;
      any.sin.sin_addr.s_addr = htonl(INADDR_ANY);
    } else {
      any.sin6.sin6_port = c.addr.sin6.sin6_port;
      any.sin6.sin6_addr = in6addr_any;
    }
    FCCL_CHECK(socketListen(any, &fd, &bound));
  }
  FCCL_INFO(kLogBootstrap, "bootstrap root listening on %s", socketAddressToString(bound).c_str());
  return startRootThread(fd, c.secret);
}

fcclResult_t bootstrapGetUniqueId(fcclUniqueId* id) {
  if (!env().commId.empty()) return bootstrapIdFromEnv(id);  // rank 0 starts the root
  UniqueIdContents c;
  memset(&c, 0, sizeof(c));
  c.magic = kUniqueIdMagic;
  std::string ifname;
  SocketAddress local;
  FCCL_CHECK(socketFindInterface(&local, &ifname));
  int fd = -1;
  FCCL_CHECK(socketListen(local, &fd, &c.addr));
  for (size_t got = 0; got < sizeof(c.secret);) {
    ssize_t n = getrandom(c.secret + got, sizeof(c.secret) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return setError(fcclSystemError, "fcclGetUniqueId: getrandom failed: %s", strerror(errno));
    }
    got += size_t(n);
  }
  memset(id, 0, sizeof(*id));
  memcpy(id->internal, &c, sizeof(c));
  FCCL_INFO(kLogBootstrap, "bootstrap root listening on %s (interface %s)",
            socketAddressToString(c.addr).c_str(), ifname.c_str());
  return startRootThread(fd, c.secret);
}

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
  std::vector<TableEntry> peers;
  int ringNext = -1;  // connection to rank+1 (we send on it)
  int ringPrev = -1;  // connection from rank-1 (we receive on it)
  std::vector<int> sendFds;  // per peer: our connection to it (p2p send)
  std::vector<int> recvFds;  // per peer: its connection to us (p2p recv)
  struct Incoming {
    int peer, kind, fd;
  };
  std::vector<Incoming> incoming;  // identified connections nobody asked for yet
  struct Message {
    int peer;
    uint32_t tag;
    std::vector<char> data;
  };
  std::deque<Message> stash;  // p2p messages received while looking for another tag
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
  fcclResult_t readHeader(int fd, int peer, const char* what, const IoLimit& lim, WireHeader* h);
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
      return setError(fcclRemoteError, "rank %d: bootstrap timed out after %lld ms waiting for %s",
                      rank, (long long)timeoutMs, what);
    case IoStatus::kAborted:
      return setError(fcclSystemError, "rank %d: bootstrap aborted while waiting for %s", rank, what);
    case IoStatus::kClosed:
      return setError(fcclRemoteError,
                      "rank %d: bootstrap connection closed while waiting for %s (did that rank fail?)",
                      rank, what);
    default:
      return setError(fcclSystemError, "rank %d: bootstrap socket error while waiting for %s: %s",
                      rank, what, strerror(st.err));
  }
}

fcclResult_t Bootstrap::Impl::readHeader(int fd, int peer, const char* what, const IoLimit& lim,
                                         WireHeader* h) {
  IoStatus st = socketRecvAll(fd, h, sizeof(*h), lim);
  if (!st.ok()) return fail(st, "rank %d (%s)", peer, what);
  if (h->magic != kWireMagic) {
    broken = "bootstrap stream from rank " + std::to_string(peer) + " lost sync (bad magic)";
    return setError(fcclInternalError, "rank %d: %s", rank, broken.c_str());
  }
  return fcclSuccess;
}

fcclResult_t Bootstrap::Impl::connectPeer(int peer, PeerConnKind kind, const IoLimit& lim,
                                          int* fd) {
  const char* what = kind == kConnRing ? "ring connection" : "connection for send";
  IoStatus st = socketConnect(peers[peer].listenAddr, lim, fd);
  if (!st.ok()) return fail(st, "rank %d (%s to %s)", peer, what,
                            socketAddressToString(peers[peer].listenAddr).c_str());
  track(*fd);
  struct {
    WireHeader hdr;
    PeerHello hello;
  } out{};
  out.hdr = makeHeader(kMsgPeerHello, 0, sizeof(PeerHello));
  memcpy(out.hello.secret, secret, 32);
  out.hello.rank = rank;
  out.hello.kind = kind;
  st = socketSendAll(*fd, &out, sizeof(out), lim);
  if (!st.ok()) return fail(st, "rank %d (%s)", peer, what);
  return fcclSuccess;
}

// Accepts connections until the one from `peer` of `kind` arrives; others (p2p connections
// from ranks that are already further along) are kept in `incoming` for whoever wants them.
fcclResult_t Bootstrap::Impl::acceptPeer(int peer, PeerConnKind kind, const IoLimit& lim,
                                         int* fd) {
  const char* what = kind == kConnRing ? "ring connection" : "connection for recv";
  for (size_t i = 0; i < incoming.size(); i++) {
    if (incoming[i].peer == peer && incoming[i].kind == kind) {
      *fd = incoming[i].fd;
      incoming.erase(incoming.begin() + long(i));
      track(*fd);
      return fcclSuccess;
    }
  }
  for (;;) {
    int s = -1;
    SocketAddress from;
    IoStatus st = socketAccept(listenFd, lim, &s, &from);
    if (!st.ok()) return fail(st, "rank %d (%s)", peer, what);
    struct {
      WireHeader hdr;
      PeerHello hello;
    } in{};
    st = socketRecvAll(s, &in, sizeof(in), lim);
    bool valid = st.ok() && in.hdr.magic == kWireMagic && in.hdr.type == kMsgPeerHello &&
                 in.hdr.length == sizeof(PeerHello) && sameSecret(in.hello.secret, secret) &&
                 in.hello.rank >= 0 && in.hello.rank < nranks &&
                 (in.hello.kind == kConnRing || in.hello.kind == kConnP2p);
    if (!valid) {
      if (st.kind == IoStatus::kTimeout || st.kind == IoStatus::kAborted) {
        close(s);
        return fail(st, "rank %d (%s)", peer, what);
      }
      FCCL_WARN("rank %d: bootstrap rejected connection from %s: %s", rank,
                socketAddressToString(from).c_str(),
                !st.ok() ? ioStatusString(st).c_str() : "bad hello or wrong secret");
      close(s);
      continue;
    }
    if (in.hello.rank == peer && in.hello.kind == kind) {
      *fd = s;
      track(s);
      return fcclSuccess;
    }
    incoming.push_back({in.hello.rank, in.hello.kind, s});
  }
}

fcclResult_t Bootstrap::Impl::join(const fcclUniqueId& id) {
  UniqueIdContents c = idContents(id);
  memcpy(secret, c.secret, 32);
  IoLimit lim = limit();

  SocketAddress local;
  std::string ifname;
  FCCL_CHECK(socketFindInterface(&local, &ifname));
  FCCL_CHECK(socketListen(local, &listenFd, &listenAddr));
  track(listenFd);

  std::string rootName = socketAddressToString(c.addr);
  int rootFd = -1;
  IoStatus st = socketConnect(c.addr, lim, &rootFd);
  if (!st.ok()) return fail(st, "the root at %s (connect)", rootName.c_str());
  track(rootFd);
  struct {
    WireHeader hdr;
    RootHello hello;
  } out{};
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
  if (h.magic == kWireMagic && h.type == kMsgError && h.length == sizeof(ErrorMsg)) {
    ErrorMsg msg;
    st = socketRecvAll(rootFd, &msg, sizeof(msg), rootLim);
    if (!st.ok()) return fail(st, "the root at %s (error message)", rootName.c_str());
    msg.text[sizeof(msg.text) - 1] = '\0';
    for (char* p = msg.text; *p; p++)
      if (*p < 32 || *p > 126) *p = '?';
    fcclResult_t code = msg.code == fcclInvalidUsage || msg.code == fcclInvalidArgument
                            ? fcclResult_t(msg.code)
                            : fcclRemoteError;
    if (code == fcclRemoteError)
      return setError(code, "rank %d: bootstrap %s", rank, msg.text);
    return setError(code, "rank %d: bootstrap root rejected this rank: %s", rank, msg.text);
  }
  if (h.magic != kWireMagic || h.type != kMsgTable ||
      h.length != uint64_t(nranks) * sizeof(TableEntry))
    return setError(fcclInternalError, "rank %d: bootstrap root at %s sent a malformed table", rank,
                    rootName.c_str());
  peers.resize(size_t(nranks));
  st = socketRecvAll(rootFd, peers.data(), h.length, rootLim);
  if (!st.ok()) return fail(st, "the root at %s (table of ranks)", rootName.c_str());
  closeFd(&rootFd);
  sendFds.assign(size_t(nranks), -1);
  recvFds.assign(size_t(nranks), -1);
  FCCL_INFO(kLogBootstrap, "rank %d/%d: bootstrap joined root %s, listening on %s (%s)", rank,
            nranks, rootName.c_str(), socketAddressToString(listenAddr).c_str(), ifname.c_str());
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
    return setError(fcclInvalidArgument, "fcclCommInitRank: rank=%d is out of range [0, %d)", rank,
                    nranks);
  if (timeoutMs <= 0) timeoutMs = env().timeoutMs;
  if (!env().commId.empty() && rank == 0) FCCL_CHECK(bootstrapStartRoot(id));

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
    if (rh.magic != kWireMagic || rh.type != kMsgGather || rh.tag != seq || rh.length != bytes) {
      im.broken = "bootstrap ring lost sync: rank " + std::to_string(prev) + " sent allGather #" +
                  std::to_string(rh.tag) + " of " + std::to_string(rh.length) +
                  " bytes per rank, this rank expected #" + std::to_string(seq) + " of " +
                  std::to_string(bytes) + " bytes";
      return setError(fcclInvalidUsage, "rank %d: %s", rank_, im.broken.c_str());
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
    return setError(fcclInvalidArgument, "rank %d: bootstrap send to rank %d, out of range [0, %d)",
                    rank_, peer, nranks_);
  if (bytes > kMaxMessageBytes)
    return setError(fcclInvalidArgument, "rank %d: bootstrap send of %zu bytes exceeds the %zu-byte cap",
                    rank_, bytes, kMaxMessageBytes);
  if (peer == rank_) {
    const char* p = static_cast<const char*>(data);
    im.stash.push_back({peer, tag, std::vector<char>(p, p + bytes)});
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

fcclResult_t Bootstrap::recv(int peer, uint32_t tag, void* data, size_t bytes) {
  Impl& im = *impl_;
  if (peer < 0 || peer >= nranks_)
    return setError(fcclInvalidArgument, "rank %d: bootstrap recv from rank %d, out of range [0, %d)",
                    rank_, peer, nranks_);
  for (auto it = im.stash.begin(); it != im.stash.end(); ++it) {
    if (it->peer != peer || it->tag != tag) continue;
    if (it->data.size() != bytes) {
      size_t got = it->data.size();
      im.stash.erase(it);
      return setError(fcclInvalidUsage,
                      "rank %d: bootstrap recv from rank %d tag %u: message has %zu bytes, expected %zu",
                      rank_, peer, tag, got, bytes);
    }
    if (bytes) memcpy(data, it->data.data(), bytes);
    im.stash.erase(it);
    return fcclSuccess;
  }
  if (peer == rank_)
    return setError(fcclInvalidUsage, "rank %d: bootstrap recv from itself with tag %u, but no such send was posted",
                    rank_, tag);
  IoLimit lim = im.limit();
  if (im.recvFds[peer] < 0) FCCL_CHECK(im.acceptPeer(peer, kConnP2p, lim, &im.recvFds[peer]));
  int fd = im.recvFds[peer];
  char what[64];
  snprintf(what, sizeof(what), "message with tag %u", tag);
  for (;;) {
    WireHeader h;
    FCCL_CHECK(im.readHeader(fd, peer, what, lim, &h));
    if (h.type != kMsgP2p || h.length > kMaxMessageBytes) {
      im.broken = "bootstrap stream from rank " + std::to_string(peer) + " lost sync (bad message header)";
      return setError(fcclInternalError, "rank %d: %s", rank_, im.broken.c_str());
    }
    if (h.tag == tag && h.length == bytes) {
      IoStatus st = socketRecvAll(fd, data, bytes, lim);
      if (!st.ok()) return im.fail(st, "rank %d (%s)", peer, what);
      return fcclSuccess;
    }
    // Another tag (or a size mismatch, reported below): read it whole to keep the stream in sync.
    std::vector<char> payload(h.length);
    IoStatus st = socketRecvAll(fd, payload.data(), payload.size(), lim);
    if (!st.ok()) return im.fail(st, "rank %d (%s)", peer, what);
    if (h.tag == tag)
      return setError(fcclInvalidUsage,
                      "rank %d: bootstrap recv from rank %d tag %u: message has %llu bytes, expected %zu",
                      rank_, peer, tag, (unsigned long long)h.length, bytes);
    im.stash.push_back({peer, h.tag, std::move(payload)});
  }
}

void Bootstrap::abort() {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.fdMu);
  im.aborted.store(1);
  // Shutting down (not closing) wakes any poll on these fds now; the owner closes them later.
  for (int fd : im.tracked) shutdown(fd, SHUT_RDWR);
}

}  // namespace fccl
