// hello_inbox.h - connections accepted but not yet identified, for the bootstrap root's port
// and each rank's listen port. A client must send one fixed-size hello (WireHeader + body)
// right after connecting. The inbox reads every client without blocking, so silent or slow
// clients delay nobody:
//   - a header of another type or length is dropped as soon as it is whole;
//   - a client without a whole hello kPeerHelloTimeoutMs after it connected is dropped;
//   - above kMaxPendingConnections the oldest client goes, not the newcomer (a real peer
//     sends its hello at once, so a flood of silent connections cannot lock it out).
// Only the header is judged here; the caller parses the body (secret, ranges).
// An idle inbox allocates nothing: its scratch vectors are kept across calls (a process that
// forks while another thread holds the allocator's lock leaves the child deadlocked, and the
// root polls for its whole life).
#pragma once
#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "src/bootstrap_wire.h"

namespace fccl {

struct RootHelloFrame {  // rank -> root
  WireHeader hdr;
  RootHello hello;
};
struct PeerHelloFrame {  // rank -> rank, first message on a connection
  WireHeader hdr;
  PeerHello hello;
};
constexpr size_t kMaxHelloFrameBytes = sizeof(RootHelloFrame) > sizeof(PeerHelloFrame)
                                           ? sizeof(RootHelloFrame)
                                           : sizeof(PeerHelloFrame);

class HelloInbox {
 public:
  struct Client {
    int fd = -1;
    SocketAddress from{};
    int64_t acceptNs = 0;
    size_t got = 0;  // bytes of frame received so far
    alignas(8) unsigned char frame[kMaxHelloFrameBytes];
  };

  // owner names the listener in warnings ("bootstrap root", "rank 3: bootstrap").
  HelloInbox(MsgType type, size_t frameBytes, std::string owner);
  ~HelloInbox();  // closes the clients still pending
  HelloInbox(const HelloInbox&) = delete;
  HelloInbox& operator=(const HelloInbox&) = delete;

  // Polls listenFd and the pending clients for up to timeoutMs, accepts new clients, reads what
  // arrived and drops the ones that broke the rules above (a warning each, naming the client).
  // Clients with a whole frame are appended to *ready; the caller owns their fds. Not ok when
  // the listening socket failed (a shut-down socket reads as kError with EINVAL).
  IoStatus poll(int listenFd, int timeoutMs, std::vector<Client>* ready);
  void reject(Client& c, const char* why);  // warns, closes
  void closeAll();

 private:
  IoStatus acceptNew(int listenFd);
  bool read(Client& c);  // false when c was dropped or is complete (then in ready_)

  MsgType type_;
  size_t frameBytes_;
  std::string owner_;
  std::vector<Client> pending_, still_;
  std::vector<pollfd> pfds_;
  std::vector<Client>* ready_ = nullptr;
};

}  // namespace fccl
