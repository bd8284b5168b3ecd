// hello_inbox.cc - see hello_inbox.h.
#include "src/hello_inbox.h"

#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "src/base/debug.h"
#include "src/base/wait.h"

namespace fccl {

HelloInbox::HelloInbox(MsgType type, size_t frameBytes, std::string owner)
    : type_(type), frameBytes_(frameBytes), owner_(std::move(owner)) {
  pending_.reserve(64);
  still_.reserve(64);
  pfds_.reserve(65);
}

HelloInbox::~HelloInbox() { closeAll(); }

void HelloInbox::closeAll() {
  for (Client& c : pending_) socketClose(&c.fd);
  pending_.clear();
}

void HelloInbox::reject(Client& c, const char* why) {
  FCCL_WARN("%s rejected connection from %s: %s", owner_.c_str(), socketAddressToString(c.from).c_str(), why);
  socketClose(&c.fd);
}

IoStatus HelloInbox::acceptNew(int listenFd) {
  for (;;) {
    Client c;
    socklen_t len = sizeof(c.from);
    c.fd = accept4(listenFd, &c.from.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c.fd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED) return {};
      return {IoStatus::kError, err};
    }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    // Closed here, removed from pending_ by poll(), whose poll array indexes pending_.
    int live = 0;
    for (const Client& p : pending_) live += p.fd >= 0;
    if (live >= kMaxPendingConnections)
      for (Client& p : pending_)
        if (p.fd >= 0) {
          reject(p, "too many unidentified connections (the oldest is dropped)");
          break;
        }
    c.acceptNs = nowNs();
    pending_.push_back(c);
  }
}

bool HelloInbox::read(Client& c) {
  size_t want = c.got < sizeof(WireHeader) ? sizeof(WireHeader) : frameBytes_;
  ssize_t n = recv(c.fd, c.frame + c.got, want - c.got, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
  if (n <= 0) {
    char why[96];
    snprintf(why, sizeof(why), "truncated hello (connection closed after %zu of %zu bytes)", c.got,
             frameBytes_);
    reject(c, why);
    return false;
  }
  c.got += size_t(n);
  if (c.got == sizeof(WireHeader)) {
    // Judge the header before waiting for the rest: garbage is dropped at once.
    WireStatus ws =
        wireParseHeader(c.frame, sizeof(WireHeader), type_, frameBytes_ - sizeof(WireHeader), nullptr);
    if (!ws.ok()) {
      reject(c, ws.why.c_str());
      return false;
    }
  }
  if (c.got < frameBytes_) return true;
  ready_->push_back(c);
  return false;
}

IoStatus HelloInbox::poll(int listenFd, int timeoutMs, std::vector<Client>* ready) {
  pfds_.clear();
  pfds_.push_back({listenFd, POLLIN, 0});
  for (const Client& c : pending_) pfds_.push_back({c.fd, POLLIN, 0});
  ::poll(pfds_.data(), pfds_.size(), timeoutMs);
  IoStatus st;
  if (pfds_[0].revents) st = acceptNew(listenFd);
  // pending_ may have grown in acceptNew; the new ones are read on the next call.
  ready_ = ready;
  still_.clear();
  const int64_t staleNs = nowNs() - kPeerHelloTimeoutMs * 1000000;
  for (size_t i = 0; i + 1 < pfds_.size(); i++) {
    Client& c = pending_[i];
    if (c.fd < 0) continue;  // dropped by acceptNew
    if (!pfds_[i + 1].revents && c.acceptNs < staleNs) {
      reject(c, "no whole hello within the hello timeout");
      continue;
    }
    if (!pfds_[i + 1].revents || read(c)) still_.push_back(c);
  }
  for (size_t i = pfds_.size() - 1; i < pending_.size(); i++)
    if (pending_[i].fd >= 0) still_.push_back(pending_[i]);
  pending_.swap(still_);
  ready_ = nullptr;
  return st;
}

}  // namespace fccl
