// bootstrap_root.cc - unique ids and the bootstrap root: the thread fcclGetUniqueId starts,
// which collects every rank's hello and sends each the table of ranks (see bootstrap.h; the
// wire format is in bootstrap_wire.h). The root is single-threaded and never blocks on one
// client (its HelloInbox polls all of them), so garbage or silent connections cannot stop real
// ranks from joining. It ends once every rank has joined (table sent), else at the earliest
// deadline (join time + config.timeoutMs) of any rank that joined, even one that left since,
// or at FCCL_TIMEOUT when no rank ever joined.
#include <poll.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "src/base/checks.h"
#include "src/base/debug.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "src/base/wait.h"
#include "src/bootstrap.h"
#include "src/bootstrap_wire.h"
#include "src/hello_inbox.h"

namespace fccl {

namespace {

// 256 bits from text: four differently seeded lanes, each lane also keyed by the previous one
// so the lanes are not independent functions of the same FNV state.
void hash256(const std::string& text, uint8_t out[32]) {
  uint64_t prev = 0x6663636c53454352ull;  // "fcclSECR"
  for (int lane = 0; lane < 4; lane++) {
    prev = hash64(text.data(), text.size(), prev + 0x9e3779b97f4a7c15ull * uint64_t(lane + 1));
    memcpy(out + 8 * lane, &prev, 8);
  }
}

// ---- the root ----

struct RootClient {  // a client whose whole hello arrived
  int fd = -1;
  SocketAddress from{};
  RootHelloFrame frame{};
  int64_t joinNs = 0;
};

class Root {
 public:
  Root(int listenFd, const uint8_t secret[32], int64_t timeoutMs)
      : listenFd_(listenFd),
        timeoutMs_(timeoutMs > 0 ? timeoutMs : int64_t(1) << 40),
        inbox_(kMsgHello, sizeof(RootHelloFrame), "bootstrap root") {
    memcpy(secret_, secret, 32);
  }
  void run();

 private:
  // A client whose whole hello arrived: joins it, or replies why not, or drops it.
  void serve(HelloInbox::Client& client);
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
  int leftCount_ = 0;  // ranks that joined, then closed before the table
  // The earliest deadline of any rank that joined, kept after that rank leaves: leaving never
  // extends the root's life, so an id whose joined ranks all left (an aborted non-blocking
  // init) ends by their config.timeoutMs rather than FCCL_TIMEOUT.
  int64_t joinedDeadlineNs_ = INT64_MAX;
  std::vector<RootClient> joined_;  // by rank; fd < 0 while not joined
  HelloInbox inbox_;                // clients whose hello has not arrived whole
  // Scratch of run()'s loop, kept across turns: an idle root allocates nothing. A process that
  // forks while another thread holds its allocator's lock (sanitizer allocators have no fork
  // handler) leaves the child deadlocked; the root wakes every 100 ms for its whole life.
  std::vector<pollfd> joinedPfds_;
  std::vector<HelloInbox::Client> hellos_;
};

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

void Root::serve(HelloInbox::Client& client) {
  RootHello h;
  WireStatus ws = wireParseRootHello(client.frame, sizeof(RootHelloFrame), secret_, &h);
  if (ws.code != fcclSuccess && ws.code != fcclInvalidUsage) return inbox_.reject(client, ws.why.c_str());
  RootClient c;
  c.fd = client.fd;
  c.from = client.from;
  memcpy(&c.frame, client.frame, sizeof(c.frame));
  if (!ws.ok()) {
    replyError(c, fcclInvalidUsage, "%s", ws.why.c_str());
    return;
  }
  if (nranks_ == 0) {
    nranks_ = h.nranks;
    firstRank_ = h.rank;
    joined_.resize(size_t(nranks_));
  } else if (h.nranks != nranks_) {
    replyError(c, fcclInvalidUsage, "rank %d says nranks=%d but rank %d said nranks=%d", h.rank, h.nranks,
               firstRank_, nranks_);
    return;
  }
  if (joined_[h.rank].fd >= 0) {
    replyError(c, fcclInvalidUsage, "rank %d joined twice (first from %s, again from %s)", h.rank,
               socketAddressToString(joined_[h.rank].from).c_str(), socketAddressToString(c.from).c_str());
    return;
  }
  join(c);
}

void Root::join(RootClient& c) {
  int r = c.frame.hello.rank;
  c.joinNs = nowNs();
  joined_[r] = c;
  c.fd = -1;  // ownership moved
  joinedCount_++;
  if (c.frame.hello.timeoutMs > 0)
    joinedDeadlineNs_ = std::min(joinedDeadlineNs_, c.joinNs + c.frame.hello.timeoutMs * 1000000);
  FCCL_INFO(kLogBootstrap, "bootstrap root: rank %d of %d joined from %s (%d/%d)", r, nranks_,
            socketAddressToString(joined_[r].from).c_str(), joinedCount_, nranks_);
}

// A joined rank sends nothing more; readable means it closed (gave up, crashed, aborted): free
// its slot so it does not count as present, and a restarted rank may take it (before the
// deadline it set, which stays: see joinedDeadlineNs_).
void Root::checkJoinedAlive() {
  std::vector<pollfd>& pfds = joinedPfds_;
  pfds.clear();
  for (const RootClient& j : joined_)
    if (j.fd >= 0) pfds.push_back({j.fd, POLLIN, 0});
  if (pfds.empty() || poll(pfds.data(), pfds.size(), 0) <= 0) return;
  for (const pollfd& p : pfds) {
    if (!p.revents) continue;
    for (RootClient& j : joined_) {
      if (j.fd != p.fd) continue;
      FCCL_INFO(kLogBootstrap, "bootstrap root: rank %d left before all ranks joined", j.frame.hello.rank);
      socketClose(&j.fd);
      joinedCount_--;
      leftCount_++;
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
    IoStatus st =
        socketSendAll(j.fd, buf.data(), buf.size(), ioLimitAfterMs(timeoutMs_ < 60000 ? timeoutMs_ : 60000));
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
    replyError(j, fcclRemoteError,
               "timed out after %lld ms waiting for rank%s %s (%d of %d ranks joined the root)",
               (long long)waitedMs, nMissing > 1 ? "s" : "", missing.c_str(), joinedCount_, nranks_);
  }
  FCCL_WARN("bootstrap root: giving up, %d of %d ranks joined (missing: %s)%s", joinedCount_, nranks_,
            nranks_ ? missing.c_str() : "all",
            joinedCount_ == 0 && leftCount_ > 0 ? "; every rank that joined has left" : "");
}

void Root::run() {
  logSetRank(-1);
  const int64_t rootDeadlineNs = nowNs() + timeoutMs_ * 1000000;
  while (nranks_ == 0 || joinedCount_ < nranks_) {
    // Report before the earliest joined rank gives up, so it learns who is missing; the ranks
    // still joined would hear the same had the ones that left stayed.
    const int64_t deadlineNs = std::min(rootDeadlineNs, joinedDeadlineNs_);
    int64_t now = nowNs();
    if (now >= deadlineNs) {
      timeOut();
      break;
    }
    int64_t leftMs = (deadlineNs - now) / 1000000 + 1;
    hellos_.clear();
    // An accept error (out of fds, say) is no reason to give up on the ranks already joined:
    // the next turn tries again.
    (void)inbox_.poll(listenFd_, int(leftMs < 100 ? leftMs : 100), &hellos_);
    for (HelloInbox::Client& h : hellos_) serve(h);
    checkJoinedAlive();
  }
  // Stop listening first: with FCCL_COMM_ID the next communicator's root binds this same
  // port as soon as its rank 0 gets here, which may be right after it receives the table.
  socketClose(&listenFd_);
  inbox_.closeAll();
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

}  // namespace

// ---- unique ids ----

fcclResult_t bootstrapIdFromEnv(fcclUniqueId* id) { return bootstrapIdFromAddress(env().commId, id); }

fcclResult_t bootstrapIdFromAddress(const std::string& hostPort, fcclUniqueId* id) {
  UniqueIdContents c;
  memset(&c, 0, sizeof(c));
  c.magic = kUniqueIdMagic;
  c.flags = kIdFixedRoot;
  FCCL_CHECK(socketAddressParse(hostPort, &c.addr));
  // Every rank derives the same secret; without FCCL_COMM_SECRET it is a fixed string, which
  // still keeps jobs that use another secret (or a random unique id) apart.
  hash256(env().commSecret.empty() ? std::string("fccl default bootstrap secret v1") : env().commSecret,
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

}  // namespace fccl
