// socket.cc - TCP helpers for the bootstrap (see socket.h). Every wait is a poll() of at most
// kPollSliceMs so that the deadline and the abort flags are noticed promptly even when the
// peer never answers; fds are non-blocking so a short read never stalls a caller.
#include "src/base/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "src/base/debug.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "src/base/wait.h"

namespace fccl {

namespace {

constexpr int kPollSliceMs = 50;

int newSocket(int family) {
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  // Bootstrap messages are small request/response pairs: Nagle would only add latency.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

bool retryableConnectError(int err) {
  return err == ECONNREFUSED || err == ETIMEDOUT || err == ECONNRESET || err == EAGAIN || err == EINTR ||
         err == ECONNABORTED;
}

// Interface filter from FCCL_SOCKET_IFNAME: "^" excludes, "=" matches exactly, "," separates.
struct IfFilter {
  // NCCL_SOCKET_IFNAME's grammar: "^" (exclude) then "=" (exact), e.g. "^=docker0,lo".
  bool set = false;
  bool exclude = false;
  bool exact = false;
  std::vector<std::string> names;

  explicit IfFilter(std::string spec) {
    if (spec.empty()) return;
    set = true;
    if (spec[0] == '^') exclude = true, spec.erase(0, 1);
    if (!spec.empty() && spec[0] == '=') exact = true, spec.erase(0, 1);
    size_t start = 0;
    while (start <= spec.size()) {
      size_t comma = spec.find(',', start);
      if (comma == std::string::npos) comma = spec.size();
      if (comma > start) names.push_back(spec.substr(start, comma - start));
      start = comma + 1;
    }
  }
  bool matches(const char* ifname) const {
    bool hit = false;
    for (const std::string& n : names)
      if (exact ? n == ifname : strncmp(ifname, n.c_str(), n.size()) == 0) hit = true;
    return exclude ? !hit : hit;
  }
};

}  // namespace

int ioPollSliceMs(const IoLimit& lim) {
  int64_t leftMs = (lim.deadlineNs - nowNs()) / 1000000;
  if (leftMs < 1) return 1;
  return leftMs < kPollSliceMs ? int(leftMs) : kPollSliceMs;
}

IoStatus ioCheckLimit(const IoLimit& lim) {
  if (lim.aborted()) return {IoStatus::kAborted, 0};
  if (lim.expired()) return {IoStatus::kTimeout, 0};
  return {};
}

bool IoLimit::aborted() const {
  return (abortFlag && abortFlag->load(std::memory_order_relaxed)) ||
         (abortFlag2 && abortFlag2->load(std::memory_order_relaxed));
}
bool IoLimit::expired() const { return nowNs() >= deadlineNs; }

IoLimit ioLimitAfterMs(int64_t ms, const std::atomic<int>* abortFlag, const std::atomic<int>* abortFlag2) {
  IoLimit lim;
  lim.deadlineNs = nowNs() + ms * 1000000;
  lim.abortFlag = abortFlag;
  lim.abortFlag2 = abortFlag2;
  return lim;
}

std::string ioStatusString(IoStatus s) {
  switch (s.kind) {
    case IoStatus::kOk:
      return "ok";
    case IoStatus::kTimeout:
      return "timed out";
    case IoStatus::kAborted:
      return "aborted";
    case IoStatus::kClosed:
      return "connection closed by peer";
    case IoStatus::kError:
      return strerror(s.err);
  }
  return "?";
}

socklen_t socketAddressLen(const SocketAddress& a) {
  return a.sa.sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

std::string socketAddressToString(const SocketAddress& a) {
  char host[INET6_ADDRSTRLEN] = {};
  char out[INET6_ADDRSTRLEN + 16];
  if (a.sa.sa_family == AF_INET) {
    inet_ntop(AF_INET, &a.sin.sin_addr, host, sizeof(host));
    snprintf(out, sizeof(out), "%s:%u", host, unsigned(ntohs(a.sin.sin_port)));
    return out;
  }
  if (a.sa.sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &a.sin6.sin6_addr, host, sizeof(host));
    snprintf(out, sizeof(out), "[%s]:%u", host, unsigned(ntohs(a.sin6.sin6_port)));
    return out;
  }
  return "<invalid>";
}

fcclResult_t socketAddressParse(const std::string& text, SocketAddress* out) {
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return setError(fcclInvalidArgument, "bad socket address '%s' (expected [v6addr]:port)", text.c_str());
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0)
      return setError(fcclInvalidArgument, "bad socket address '%s' (expected host:port)", text.c_str());
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  char* end = nullptr;
  long portNum = strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || portNum < 0 || portNum > 65535)
    return setError(fcclInvalidArgument, "bad port in socket address '%s'", text.c_str());
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res)
    return setError(fcclInvalidArgument, "cannot resolve host '%s' in '%s': %s", host.c_str(), text.c_str(),
                    gai_strerror(rc));
  // Prefer IPv4 when a name resolves to both, as most launchers' MASTER_ADDR does.
  const addrinfo* pick = nullptr;
  for (const addrinfo* ai = res; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET && !pick) pick = ai;
  for (const addrinfo* ai = res; ai && !pick; ai = ai->ai_next)
    if (ai->ai_family == AF_INET6) pick = ai;
  if (!pick) {
    freeaddrinfo(res);
    return setError(fcclInvalidArgument, "host '%s' has no IPv4/IPv6 address", host.c_str());
  }
  memset(out, 0, sizeof(*out));
  memcpy(out, pick->ai_addr, pick->ai_addrlen);
  freeaddrinfo(res);
  if (out->sa.sa_family == AF_INET)
    out->sin.sin_port = htons(uint16_t(portNum));
  else
    out->sin6.sin6_port = htons(uint16_t(portNum));
  return fcclSuccess;
}

namespace {

// Whether `a` lies in the subnet of interface address `ifa` with mask `mask` (same family).
bool inSubnet(const sockaddr* ifa, const sockaddr* mask, const SocketAddress& a) {
  if (ifa == nullptr || mask == nullptr || ifa->sa_family != a.sa.sa_family) return false;
  const unsigned char *x, *m, *y;
  size_t n;
  if (a.sa.sa_family == AF_INET) {
    x = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in*>(ifa)->sin_addr);
    m = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in*>(mask)->sin_addr);
    y = reinterpret_cast<const unsigned char*>(&a.sin.sin_addr);
    n = 4;
  } else {
    x = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in6*>(ifa)->sin6_addr);
    m = reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr);
    y = reinterpret_cast<const unsigned char*>(&a.sin6.sin6_addr);
    n = 16;
  }
  for (size_t i = 0; i < n; ++i)
    if ((x[i] & m[i]) != (y[i] & m[i])) return false;
  return true;
}

bool isLoopbackAddress(const SocketAddress& a) {
  if (a.sa.sa_family == AF_INET) return (ntohl(a.sin.sin_addr.s_addr) >> 24) == 127;
  return a.sa.sa_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&a.sin6.sin6_addr);
}

}  // namespace

fcclResult_t socketFindInterface(SocketAddress* out, std::string* ifname, const SocketAddress* near) {
  int family = AF_UNSPEC;
  const std::string& fam = env().socketFamily;
  if (fam == "AF_INET")
    family = AF_INET;
  else if (fam == "AF_INET6")
    family = AF_INET6;

  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return setError(fcclSystemError, "getifaddrs failed: %s", strerror(errno));
  IfFilter filter(env().socketIfname);
  // NCCL's order. With FCCL_SOCKET_IFNAME: the first matching interface. Without it: the
  // interface on the subnet of `near` (the root's address: every rank then reaches the root the
  // way the root listens, loopback included), else the first interface that is not loopback,
  // docker or virbr, then docker/virbr, then loopback. IPv4 before IPv6 within each class.
  // classes: [0] filter match / ordinary, [1] docker/virbr, [2] loopback, [3] near's subnet.
  const ifaddrs* best[4][2] = {};
  for (const ifaddrs* ia = list; ia; ia = ia->ifa_next) {
    if (!ia->ifa_addr || !(ia->ifa_flags & IFF_UP)) continue;
    int f = ia->ifa_addr->sa_family;
    if (f != AF_INET && f != AF_INET6) continue;
    if (family != AF_UNSPEC && f != family) continue;
    // Link-local IPv6 needs a scope id that other hosts cannot use; skip it like NCCL.
    if (f == AF_INET6 &&
        IN6_IS_ADDR_LINKLOCAL(&reinterpret_cast<const sockaddr_in6*>(ia->ifa_addr)->sin6_addr))
      continue;
    const int slot = f == AF_INET ? 0 : 1;
    int cls;
    if (filter.set)
      cls = filter.matches(ia->ifa_name) ? 0 : -1;
    else if (near != nullptr && (inSubnet(ia->ifa_addr, ia->ifa_netmask, *near) ||
                                 (isLoopbackAddress(*near) && (ia->ifa_flags & IFF_LOOPBACK))))
      cls = 3;
    else if (ia->ifa_flags & IFF_LOOPBACK)
      cls = 2;
    else if (strncmp(ia->ifa_name, "docker", 6) == 0 || strncmp(ia->ifa_name, "virbr", 5) == 0)
      cls = 1;
    else
      cls = 0;
    if (cls >= 0 && !best[cls][slot]) best[cls][slot] = ia;
  }
  const ifaddrs* pick = nullptr;
  for (int cls : {3, 0, 1, 2})
    for (int slot = 0; slot < 2 && !pick; ++slot) pick = best[cls][slot];
  if (near != nullptr && !filter.set && pick != best[3][0] && pick != best[3][1] && pick != nullptr)
    FCCL_INFO(kLogNet, "no interface on the subnet of %s: using %s", socketAddressToString(*near).c_str(),
              pick->ifa_name);
  if (!pick) {
    freeifaddrs(list);
    if (filter.set)
      return setError(fcclSystemError,
                      "no up interface matches FCCL_SOCKET_IFNAME=%s%s%s (with an address%s)",
                      env().socketIfname.c_str(), fam.empty() ? "" : " and FCCL_SOCKET_FAMILY=", fam.c_str(),
                      fam.empty() ? "" : " of that family");
    return setError(fcclSystemError, "no usable network interface%s%s (not even loopback)",
                    fam.empty() ? "" : " with FCCL_SOCKET_FAMILY=", fam.c_str());
  }
  memset(out, 0, sizeof(*out));
  memcpy(out, pick->ifa_addr,
         pick->ifa_addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
  if (ifname) *ifname = pick->ifa_name;
  freeifaddrs(list);
  return fcclSuccess;
}

fcclResult_t socketListen(const SocketAddress& addr, int* fd, SocketAddress* bound) {
  int s = newSocket(addr.sa.sa_family);
  if (s < 0) return setError(fcclSystemError, "socket() failed: %s", strerror(errno));
  int one = 1;
  // A fixed FCCL_COMM_ID port must be reusable right after the previous job's root closed.
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(s, &addr.sa, socketAddressLen(addr)) != 0 || listen(s, SOMAXCONN) != 0) {
    int err = errno;
    close(s);
    return setError(fcclSystemError, "cannot listen on %s: %s", socketAddressToString(addr).c_str(),
                    strerror(err));
  }
  SocketAddress got = {};
  socklen_t len = sizeof(got);
  getsockname(s, &got.sa, &len);
  if (bound) *bound = got;
  *fd = s;
  return fcclSuccess;
}

IoStatus socketConnect(const SocketAddress& addr, const IoLimit& lim, int* fd) {
  int napMs = 1;
  for (;;) {
    IoStatus st = ioCheckLimit(lim);
    if (!st.ok()) return st;
    int s = newSocket(addr.sa.sa_family);
    if (s < 0) return {IoStatus::kError, errno};
    int err = 0;
    if (connect(s, &addr.sa, socketAddressLen(addr)) != 0) {
      err = errno;
      // Non-blocking connect: wait for the handshake in slices, then read its outcome.
      while (err == EINPROGRESS) {
        pollfd p = {s, POLLOUT, 0};
        int n = poll(&p, 1, ioPollSliceMs(lim));
        if (n > 0) {
          socklen_t len = sizeof(err);
          if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
          break;
        }
        if (n < 0 && errno != EINTR) {
          err = errno;
          break;
        }
        st = ioCheckLimit(lim);
        if (!st.ok()) {
          close(s);
          return st;
        }
      }
    }
    if (err == 0) {
      *fd = s;
      return {};
    }
    close(s);
    if (!retryableConnectError(err)) return {IoStatus::kError, err};
    // The listener is not up yet (or its backlog overflowed): nap, growing to 50 ms.
    int64_t leftMs = (lim.deadlineNs - nowNs()) / 1000000;
    int ms = napMs < leftMs ? napMs : int(leftMs > 0 ? leftMs : 0);
    if (ms > 0) poll(nullptr, 0, ms);
    napMs = napMs * 2 > 50 ? 50 : napMs * 2;
  }
}

IoStatus socketAccept(int listenFd, const IoLimit& lim, int* fd, SocketAddress* peer) {
  for (;;) {
    SocketAddress from = {};
    socklen_t len = sizeof(from);
    int s = accept4(listenFd, &from.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s >= 0) {
      int one = 1;
      setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      if (peer) *peer = from;
      *fd = s;
      return {};
    }
    int err = errno;
    if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR && err != ECONNABORTED) {
      // A listening socket shut down by abort() fails with EINVAL: report the abort.
      if (lim.aborted()) return {IoStatus::kAborted, 0};
      return {IoStatus::kError, err};
    }
    IoStatus st = ioCheckLimit(lim);
    if (!st.ok()) return st;
    pollfd p = {listenFd, POLLIN, 0};
    poll(&p, 1, ioPollSliceMs(lim));
  }
}

IoStatus socketSendRecv(int sendFd, const void* sendData, size_t sendBytes, int recvFd, void* recvData,
                        size_t recvBytes, const IoLimit& lim) {
  const char* sp = static_cast<const char*>(sendData);
  char* rp = static_cast<char*>(recvData);
  size_t sent = 0, got = 0;
  while (sent < sendBytes || got < recvBytes) {
    bool progress = false;
    if (sent < sendBytes) {
      ssize_t n = ::send(sendFd, sp + sent, sendBytes - sent, MSG_NOSIGNAL);
      if (n > 0)
        sent += size_t(n), progress = true;
      else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return lim.aborted()                           ? IoStatus{IoStatus::kAborted, 0}
               : errno == EPIPE || errno == ECONNRESET ? IoStatus{IoStatus::kClosed, errno}
                                                       : IoStatus{IoStatus::kError, errno};
    }
    if (got < recvBytes) {
      ssize_t n = ::recv(recvFd, rp + got, recvBytes - got, 0);
      if (n > 0)
        got += size_t(n), progress = true;
      else if (n == 0)
        return lim.aborted() ? IoStatus{IoStatus::kAborted, 0} : IoStatus{IoStatus::kClosed, 0};
      else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return lim.aborted()         ? IoStatus{IoStatus::kAborted, 0}
               : errno == ECONNRESET ? IoStatus{IoStatus::kClosed, errno}
                                     : IoStatus{IoStatus::kError, errno};
    }
    if (progress) continue;
    IoStatus st = ioCheckLimit(lim);
    if (!st.ok()) return st;
    pollfd p[2];
    int np = 0;
    if (sent < sendBytes) p[np++] = {sendFd, POLLOUT, 0};
    if (got < recvBytes) p[np++] = {recvFd, POLLIN, 0};
    poll(p, np, ioPollSliceMs(lim));
  }
  return {};
}

IoStatus socketSendAll(int fd, const void* data, size_t bytes, const IoLimit& lim) {
  return socketSendRecv(fd, data, bytes, -1, nullptr, 0, lim);
}

IoStatus socketRecvAll(int fd, void* data, size_t bytes, const IoLimit& lim) {
  return socketSendRecv(-1, nullptr, 0, fd, data, bytes, lim);
}

void socketSetLiveness(int fd, int64_t ms) {
  const int one = 1;
  const int sec = int(ms / 1000 < 3 ? 3 : (ms / 1000 > 3600 ? 3600 : ms / 1000));
  const int idle = sec / 3 > 0 ? sec / 3 : 1, intvl = sec / 6 > 0 ? sec / 6 : 1, cnt = 2;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
  const unsigned int user = unsigned(sec) * 1000u;
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof(user));
}

void socketClose(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

}  // namespace fccl
