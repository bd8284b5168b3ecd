// hello_inbox_test.cc - the inbox behind the bootstrap's listen ports: a hello that arrives in
// pieces comes out whole, a bad header is dropped as soon as it is whole, a client that closes
// mid-hello is dropped, and a real client is served at once among many silent ones (which the
// old one-at-a-time accept made wait a hello timeout each). Every call has a timeout.
#include "hello_inbox.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "src/base/wait.h"

namespace fccl {
namespace {

struct Listener {
  int fd = -1;
  SocketAddress addr{};
  std::vector<int> clients;
  Listener() {
    SocketAddress lo;
    EXPECT_EQ(socketAddressParse("127.0.0.1:0", &lo), fcclSuccess);
    EXPECT_EQ(socketListen(lo, &fd, &addr), fcclSuccess);
  }
  ~Listener() {
    for (int& c : clients) socketClose(&c);
    socketClose(&fd);
  }
  int connect() {
    int c = -1;
    EXPECT_TRUE(socketConnect(addr, ioLimitAfterMs(5000), &c).ok());
    clients.push_back(c);
    return c;
  }
};

PeerHelloFrame peerHello(int rank) {
  PeerHelloFrame f{};
  f.hdr = makeHeader(kMsgPeerHello, 0, sizeof(PeerHello));
  memset(f.hello.secret, 0x5a, sizeof(f.hello.secret));
  f.hello.rank = rank;
  f.hello.kind = kConnRing;
  return f;
}

// Polls until `want` hellos are ready or 5 s pass.
std::vector<HelloInbox::Client> pollFor(HelloInbox& inbox, int listenFd, size_t want) {
  std::vector<HelloInbox::Client> ready;
  const int64_t endNs = nowNs() + int64_t(5000) * 1000000;
  while (ready.size() < want && nowNs() < endNs) EXPECT_TRUE(inbox.poll(listenFd, 20, &ready).ok());
  return ready;
}

// True when the peer closed fd within 5 s.
bool closedByPeer(int fd) {
  char b;
  return socketRecvAll(fd, &b, 1, ioLimitAfterMs(5000)).kind == IoStatus::kClosed;
}

TEST(HelloInbox, HelloInPiecesComesOutWhole) {
  Listener l;
  HelloInbox inbox(kMsgPeerHello, sizeof(PeerHelloFrame), "test");
  int c = l.connect();
  PeerHelloFrame f = peerHello(3);
  const char* bytes = reinterpret_cast<const char*>(&f);
  std::vector<HelloInbox::Client> ready;
  for (size_t off = 0; off < sizeof(f); off += 7) {  // 7-byte pieces, a poll between each
    ASSERT_TRUE(
        socketSendAll(c, bytes + off, std::min<size_t>(7, sizeof(f) - off), ioLimitAfterMs(5000)).ok());
    ASSERT_TRUE(inbox.poll(l.fd, 20, &ready).ok());
    if (off + 7 < sizeof(f)) EXPECT_TRUE(ready.empty()) << "ready after " << off + 7 << " bytes";
  }
  ready = ready.empty() ? pollFor(inbox, l.fd, 1) : ready;
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(memcmp(ready[0].frame, &f, sizeof(f)), 0);
  socketClose(&ready[0].fd);
}

TEST(HelloInbox, BadHeaderIsDroppedAtOnce) {
  Listener l;
  HelloInbox inbox(kMsgPeerHello, sizeof(PeerHelloFrame), "test");
  int wrongType = l.connect(), wrongLength = l.connect();
  WireHeader h1 = makeHeader(kMsgHello, 0, sizeof(PeerHello));
  WireHeader h2 = makeHeader(kMsgPeerHello, 0, sizeof(PeerHello) + 1);
  ASSERT_TRUE(socketSendAll(wrongType, &h1, sizeof(h1), ioLimitAfterMs(5000)).ok());
  ASSERT_TRUE(socketSendAll(wrongLength, &h2, sizeof(h2), ioLimitAfterMs(5000)).ok());
  const int64_t t0 = nowNs();
  std::vector<HelloInbox::Client> ready;
  for (int i = 0; i < 10; i++) ASSERT_TRUE(inbox.poll(l.fd, 20, &ready).ok());
  EXPECT_TRUE(ready.empty());
  EXPECT_TRUE(closedByPeer(wrongType));
  EXPECT_TRUE(closedByPeer(wrongLength));
  EXPECT_LT(nowNs() - t0, kPeerHelloTimeoutMs * 1000000 / 2) << "dropped by the timeout, not at once";
}

TEST(HelloInbox, ClientClosingMidHelloIsDropped) {
  Listener l;
  HelloInbox inbox(kMsgPeerHello, sizeof(PeerHelloFrame), "test");
  int c = l.connect();
  PeerHelloFrame f = peerHello(1);
  ASSERT_TRUE(socketSendAll(c, &f, sizeof(f) - 5, ioLimitAfterMs(5000)).ok());
  std::vector<HelloInbox::Client> ready;
  for (int i = 0; i < 5; i++) ASSERT_TRUE(inbox.poll(l.fd, 20, &ready).ok());
  socketClose(&l.clients.back());
  for (int i = 0; i < 5; i++) ASSERT_TRUE(inbox.poll(l.fd, 20, &ready).ok());
  EXPECT_TRUE(ready.empty());
}

TEST(HelloInbox, RealClientIsServedAmongSilentOnes) {
  Listener l;
  HelloInbox inbox(kMsgPeerHello, sizeof(PeerHelloFrame), "test");
  for (int i = 0; i < 100; i++) l.connect();  // connected, never a byte
  int real = l.connect();
  PeerHelloFrame f = peerHello(2);
  ASSERT_TRUE(socketSendAll(real, &f, sizeof(f), ioLimitAfterMs(5000)).ok());
  const int64_t t0 = nowNs();
  std::vector<HelloInbox::Client> ready = pollFor(inbox, l.fd, 1);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(memcmp(ready[0].frame, &f, sizeof(f)), 0);
  EXPECT_LT(nowNs() - t0, int64_t(1000) * 1000000) << "the silent clients held up the real one";
  socketClose(&ready[0].fd);
}

}  // namespace
}  // namespace fccl
