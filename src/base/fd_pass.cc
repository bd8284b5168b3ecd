// fd_pass.cc - see fd_pass.h.
#include "src/base/fd_pass.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "src/base/debug.h"
#include "src/base/error.h"
#include "src/base/wait.h"

namespace fccl {

namespace {

constexpr uint32_t kFdMagic = 0x64466666u;  // "ffFd"

struct FdMessage {
  uint32_t magic;
  int32_t rank;  // the sender
  uint64_t commHash;
  uint64_t tag;
};

sockaddr_un addressOf(const std::string& name, socklen_t* len) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  // Abstract namespace (leading NUL): no file to clean up, gone with the socket.
  memcpy(a.sun_path + 1, name.data(), name.size());
  *len = socklen_t(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

// Waits up to ms for something to read (true) or nothing (false).
bool readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, ms) > 0;
}

}  // namespace

std::string FdSocket::nameOf(uint64_t commHash, int rank) {
  char buf[64];
  snprintf(buf, sizeof(buf), "fccl-fd-%016llx-%d", (unsigned long long)commHash, rank);
  return buf;
}

FdSocket::~FdSocket() { close(); }

void FdSocket::close() {
  if (fd_ >= 0) ::close(fd_), fd_ = -1;
}

fcclResult_t FdSocket::open(uint64_t commHash, int rank) {
  close();
  rank_ = rank;
  commHash_ = commHash;
  fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return setError(fcclSystemError, "rank %d: socket(AF_UNIX) failed: %s", rank, strerror(errno));
  socklen_t len;
  const sockaddr_un a = addressOf(nameOf(commHash, rank), &len);
  if (bind(fd_, reinterpret_cast<const sockaddr*>(&a), len) != 0) {
    const int e = errno;
    close();
    return setError(fcclSystemError, "rank %d: cannot bind the descriptor socket %s: %s", rank,
                    nameOf(commHash, rank).c_str(), strerror(e));
  }
  return fcclSuccess;
}

int FdSocket::trySend(int peerRank, uint64_t tag, const int* fds, int nfds) {
  if (nfds < 1 || nfds > kMaxPassedFds)
    return setError(fcclInternalError, "rank %d: %d descriptors in one message", rank_, nfds), -1;
  FdMessage m{kFdMagic, rank_, commHash_, tag};
  iovec iov{&m, sizeof(m)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
  socklen_t len;
  sockaddr_un to = addressOf(nameOf(commHash_, peerRank), &len);
  msghdr mh{};
  mh.msg_name = &to;
  mh.msg_namelen = len;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = CMSG_SPACE(sizeof(int) * size_t(nfds));
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * size_t(nfds));
  memcpy(CMSG_DATA(c), fds, sizeof(int) * size_t(nfds));
  if (sendmsg(fd_, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == ssize_t(sizeof(m))) return 1;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ENOBUFS) return 0;
  return setError(fcclSystemError, "rank %d: passing descriptors to rank %d (%s) failed: %s", rank_, peerRank,
                  nameOf(commHash_, peerRank).c_str(), strerror(errno)),
         -1;
}

int FdSocket::tryRecv(int* fromRank, uint64_t* tag, int* fds, int* nfds) {
  for (;;) {
    FdMessage m{};
    iovec iov{&m, sizeof(m)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof(control);
    const ssize_t got = recvmsg(fd_, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
      return setError(fcclSystemError, "rank %d: recvmsg on the descriptor socket: %s", rank_,
                      strerror(errno)),
             -1;
    }
    int n = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        const int k = int((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < k; ++i) {
          int f;
          memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          if (n < kMaxPassedFds)
            fds[n++] = f;
          else
            ::close(f);
        }
      }
    const bool ours = got == ssize_t(sizeof(m)) && (mh.msg_flags & MSG_CTRUNC) == 0 && m.magic == kFdMagic &&
                      m.commHash == commHash_ && n > 0;
    if (!ours) {
      // Not from this communicator: drop it, and what it carried.
      for (int i = 0; i < n; ++i) ::close(fds[i]);
      FCCL_INFO(kLogInit,
                "rank %d: dropped a message on the descriptor socket that is not this communicator's", rank_);
      continue;
    }
    *fromRank = m.rank;
    *tag = m.tag;
    *nfds = n;
    return 1;
  }
}

fcclResult_t FdSocket::send(int peerRank, uint64_t tag, const int* fds, int nfds) {
  const int64_t deadline = nowNs() + int64_t(10) * 1000 * 1000 * 1000;
  for (;;) {
    const int r = trySend(peerRank, tag, fds, nfds);
    if (r == 1) return fcclSuccess;
    if (r < 0) return fcclSystemError;
    if (nowNs() >= deadline)
      return setError(fcclSystemError, "rank %d: rank %d's descriptor queue stayed full for 10 s", rank_,
                      peerRank);
    usleep(100);
  }
}

fcclResult_t FdSocket::recv(int* fromRank, uint64_t* tag, int* fds, int* nfds, int64_t timeoutMs) {
  const int64_t deadline = nowNs() + timeoutMs * 1000000;
  for (;;) {
    const int r = tryRecv(fromRank, tag, fds, nfds);
    if (r == 1) return fcclSuccess;
    if (r < 0) return fcclSystemError;
    const int64_t left = (deadline - nowNs()) / 1000000;
    if (left <= 0)
      return setError(fcclSystemError,
                      "rank %d: no descriptors from the ranks of other processes within %lld ms (%s)", rank_,
                      (long long)timeoutMs, nameOf(commHash_, rank_).c_str());
    readable(fd_, int(left < 100 ? left : 100));
  }
}

fcclResult_t FdSocket::exchange(const std::vector<int>& sendTo, const int* fds, int nfds,
                                const std::vector<int>& recvFrom, std::vector<std::vector<int>>* got,
                                int64_t timeoutMs) {
  got->assign(recvFrom.size(), std::vector<int>());
  const int64_t deadline = nowNs() + timeoutMs * 1000000;
  size_t sent = 0, received = 0;
  auto fail = [&](fcclResult_t code) {
    for (auto& g : *got)
      for (int f : g) ::close(f);
    got->assign(recvFrom.size(), std::vector<int>());
    return code;
  };
  while (sent < sendTo.size() || received < recvFrom.size()) {
    // Send what the peers' queues take now.
    while (sent < sendTo.size()) {
      const int r = trySend(sendTo[sent], 0, fds, nfds);
      if (r < 0) return fail(fcclSystemError);
      if (r == 0) break;
      ++sent;
    }
    // Take everything waiting, so that our queue drains for the peers still sending to us.
    for (;;) {
      int from = -1, n = 0, in[kMaxPassedFds];
      uint64_t tag = 0;
      const int r = tryRecv(&from, &tag, in, &n);
      if (r < 0) return fail(fcclSystemError);
      if (r == 0) break;
      size_t i = 0;
      while (i < recvFrom.size() && recvFrom[i] != from) ++i;
      if (i == recvFrom.size() || !(*got)[i].empty() || n != nfds) {
        for (int k = 0; k < n; ++k) ::close(in[k]);
        return fail(
            setError(fcclInternalError, "rank %d: unexpected descriptors (%d) from rank %d", rank_, n, from));
      }
      (*got)[i].assign(in, in + n);
      ++received;
    }
    if (sent == sendTo.size() && received == recvFrom.size()) break;
    if (nowNs() >= deadline) {
      std::string missing;
      for (size_t i = 0; i < recvFrom.size(); ++i)
        if ((*got)[i].empty()) missing += (missing.empty() ? "" : ", ") + std::to_string(recvFrom[i]);
      return fail(setError(
          fcclSystemError,
          "rank %d: descriptor exchange unfinished after %lld ms: sent %zu of %zu, nothing from "
          "rank(s) %s",
          rank_, (long long)timeoutMs, sent, sendTo.size(), missing.empty() ? "-" : missing.c_str()));
    }
    readable(fd_, sent < sendTo.size() ? 1 : 100);
  }
  return fcclSuccess;
}

}  // namespace fccl
