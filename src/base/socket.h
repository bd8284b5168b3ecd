// socket.h - the small TCP toolkit under the bootstrap: addresses (parse, print, pick an
// interface like NCCL's FCCL_SOCKET_IFNAME), listen/connect/accept, and sendAll/recvAll.
// Invariants: every fd made here is non-blocking and close-on-exec; every blocking call
// polls in short slices and gives up at its IoLimit's deadline or when an abort flag is set;
// sends never raise SIGPIPE.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include "fccl.h"

namespace fccl {

// An IPv4 or IPv6 address; small enough to travel inside a unique id (28 bytes).
union SocketAddress {
  sockaddr sa;
  sockaddr_in sin;
  sockaddr_in6 sin6;
};
socklen_t socketAddressLen(const SocketAddress& a);
// "1.2.3.4:5678", "[::1]:5678"; "<invalid>" for an unknown family.
std::string socketAddressToString(const SocketAddress& a);
// "host:port" or "[v6]:port" (host may be a name; getaddrinfo). fcclInvalidArgument on bad text.
fcclResult_t socketAddressParse(const std::string& text, SocketAddress* out);

// Picks the local address to listen on (port 0) as NCCL does, from FCCL_SOCKET_IFNAME /
// FCCL_SOCKET_FAMILY: "eth0" prefix match, "^docker" excludes prefixes, "=lo" exact, "^=lo"
// excludes exactly, lists "a,b". Unset: the interface on the subnet of `near` (the root's
// address; loopback when the root is on loopback), else the first up interface that is not
// loopback, docker or virbr (IPv4 preferred), then docker/virbr, then loopback.
fcclResult_t socketFindInterface(SocketAddress* out, std::string* ifname,
                                 const SocketAddress* near = nullptr);
// Turns TCP keepalive on and bounds how long sent data may stay unacknowledged
// (TCP_USER_TIMEOUT), so a peer behind a dead link is noticed within about `ms`.
void socketSetLiveness(int fd, int64_t ms);

// Where a blocking call gives up: at deadlineNs (nowNs() clock) or when either flag is nonzero.
struct IoLimit {
  int64_t deadlineNs = 0;
  const std::atomic<int>* abortFlag = nullptr;   // the communicator's (fcclCommAbort)
  const std::atomic<int>* abortFlag2 = nullptr;  // the owner's own (Bootstrap::abort)
  bool aborted() const;
  bool expired() const;
};
IoLimit ioLimitAfterMs(int64_t ms, const std::atomic<int>* abortFlag = nullptr,
                       const std::atomic<int>* abortFlag2 = nullptr);

// Outcome of an I/O call; the caller turns it into a sentence naming the rank and the wait.
struct IoStatus {
  enum Kind {
    kOk,
    kTimeout,
    kAborted,
    kClosed,
    kError
  } kind = kOk;
  int err = 0;  // errno for kError
  bool ok() const { return kind == kOk; }
};
std::string ioStatusString(IoStatus s);  // "timed out", "connection closed by peer", ...
// Ok while a wait under lim may go on; otherwise kAborted or kTimeout.
IoStatus ioCheckLimit(const IoLimit& lim);
// Milliseconds a wait under lim polls for: one short slice (so the abort flags are seen), or
// less when the deadline is closer.
int ioPollSliceMs(const IoLimit& lim);

// Listening socket bound to `addr` (port 0: ephemeral); *bound receives the actual address.
fcclResult_t socketListen(const SocketAddress& addr, int* fd, SocketAddress* bound);
// Connects, retrying refused/reset/timed-out attempts with short naps (the listener may not
// be up yet) until the limit.
IoStatus socketConnect(const SocketAddress& addr, const IoLimit& lim, int* fd);
// Waits for one incoming connection.
IoStatus socketAccept(int listenFd, const IoLimit& lim, int* fd, SocketAddress* peer);
IoStatus socketSendAll(int fd, const void* data, size_t bytes, const IoLimit& lim);
IoStatus socketRecvAll(int fd, void* data, size_t bytes, const IoLimit& lim);
// Sends on one socket while receiving on another, so a ring step where every rank sends
// before it receives cannot deadlock on full socket buffers.
IoStatus socketSendRecv(int sendFd, const void* sendData, size_t sendBytes, int recvFd, void* recvData,
                        size_t recvBytes, const IoLimit& lim);
// Closes *fd if open and sets it to -1.
void socketClose(int* fd);

}  // namespace fccl
