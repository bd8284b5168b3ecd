// socket_transport_test.cc - the socket transport without the core: its wire checks (SipHash's
// reference vector, the task split, every frame header field that can lie, a hello with a wrong
// proof or for another communicator), then two ranks as threads of this process over loopback:
// a stranger that connects to a rank's data port during setup (with junk, and with a hello
// that does not know the secret) is refused and setup completes; messages of every size
// (empty, one task, several tasks over several sockets, wrap-around of the FIFO) arrive intact
// with their tags; a rank that closes is reported by peerLost within a second, naming it.
#include "transports/socket/socket_transport.h"
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include "src/base/socket.h"
#include "transports/socket/socket_wire.h"

namespace fccl {
namespace {

TEST(SocketWire, SipHashReferenceVector) {
  // The SipHash paper's test vector: key 00..0f, message 00..0e.
  uint8_t key[16], msg[15];
  for (int i = 0; i < 16; ++i) key[i] = uint8_t(i);
  for (int i = 0; i < 15; ++i) msg[i] = uint8_t(i);
  EXPECT_EQ(sipHash24(key, msg, sizeof(msg)), 0xa129ca6149be45e5ull);
}

TEST(SocketWire, TasksCoverTheMessage) {
  EXPECT_EQ(taskCount(0, 4), 1);
  EXPECT_EQ(taskCount(100, 4), 1);          // below 64 KiB: one task
  EXPECT_EQ(taskCount(128 * 1024, 2), 2);   // two tasks of 64 KiB
  EXPECT_EQ(taskCount(128 * 1024, 4), 2);   // never below 64 KiB a task
  EXPECT_EQ(taskCount(1024 * 1024, 4), 4);  // 256 KiB each
  EXPECT_EQ(taskBytes(1024 * 1024 + 1, 4) % 4096, 0u);
  EXPECT_LE(taskCount(1024 * 1024 + 1, 4), 4);
}

FrameHeader goodHeader() {
  FrameHeader h{};
  h.seq = 5;
  h.bytes = 200 * 1024;  // 2 tasks of 102400 -> rounded to 102400 (25 pages)
  h.ntasks = uint16_t(taskCount(h.bytes, 2));
  h.task = 1;
  h.offset = uint32_t(taskBytes(h.bytes, 2));
  h.len = h.bytes - h.offset;
  h.tag = 7;
  frameSeal(&h);
  return h;
}

TEST(SocketWire, FrameCheckRejectsEveryLie) {
  std::string why;
  const FrameHeader good = goodHeader();
  const int sock = int((good.seq + good.task) % 2);
  ASSERT_TRUE(frameCheck(good, sock, 2, 256 * 1024, 3, UINT64_MAX, &why)) << why;
  auto rejects = [&](FrameHeader h, bool reseal, int index, size_t slot, uint64_t tail, uint64_t last) {
    if (reseal) frameSeal(&h);
    std::string w;
    bool ok = frameCheck(h, index, 2, slot, tail, last, &w);
    return !ok && !w.empty();
  };
  FrameHeader h = good;
  h.magic ^= 1;
  EXPECT_TRUE(rejects(h, false, sock, 256 * 1024, 3, UINT64_MAX));  // magic
  h = good;
  h.len ^= 1;
  EXPECT_TRUE(rejects(h, false, sock, 256 * 1024, 3, UINT64_MAX));     // checksum
  EXPECT_TRUE(rejects(good, false, sock, 128 * 1024, 3, UINT64_MAX));  // larger than a slot
  h = good;
  h.ntasks = 3;
  EXPECT_TRUE(rejects(h, true, sock, 256 * 1024, 3, UINT64_MAX));  // task count
  h = good;
  h.offset += 1;
  EXPECT_TRUE(rejects(h, true, sock, 256 * 1024, 3, UINT64_MAX));  // offset
  h = good;
  h.len += 4096;
  EXPECT_TRUE(rejects(h, true, sock, 256 * 1024, 3, UINT64_MAX));          // length
  EXPECT_TRUE(rejects(good, false, 1 - sock, 256 * 1024, 3, UINT64_MAX));  // wrong socket
  EXPECT_TRUE(rejects(good, false, sock, 256 * 1024, 6, UINT64_MAX));      // already complete
  EXPECT_TRUE(rejects(good, false, sock, 256 * 1024, 3, 5));               // repeated on this socket
}

TEST(SocketWire, HelloNeedsTheSecret) {
  uint8_t secret[32] = {1, 2, 3}, key[16], other[16];
  socketKeyFromSecret(secret, key);
  secret[31] = 9;
  socketKeyFromSecret(secret, other);
  SocketHello h{};
  h.magic = kSocketHelloMagic;
  h.version = kSocketWireVersion;
  h.nsocks = 2;
  h.rank = 1;
  h.index = 1;
  h.commHash = 42;
  h.proof = helloProof(key, h);
  std::string why;
  EXPECT_TRUE(helloCheck(h, key, 42, 2, &why)) << why;
  EXPECT_FALSE(helloCheck(h, other, 42, 2, &why));
  EXPECT_NE(why.find("secret"), std::string::npos) << why;
  EXPECT_FALSE(helloCheck(h, key, 43, 2, &why));  // another communicator
  EXPECT_FALSE(helloCheck(h, key, 42, 1, &why));  // rank out of range
  SocketHello bad = h;
  bad.index = 2;
  bad.proof = helloProof(key, bad);
  EXPECT_FALSE(helloCheck(bad, key, 42, 2, &why));  // socket index out of range
}

// Two ranks of one communicator over loopback, each a TransportComm of the socket transport.
struct Pair {
  PeerInfo peers[2] = {};
  std::unique_ptr<TransportComm> t[2];
  ConnectBlob blobs[2];
  Connections conns[2];
  std::atomic<int> abortFlag{0};

  Pair() {
    for (int r = 0; r < 2; ++r) {
      peers[r].rank = r;
      peers[r].hostHash = uint64_t(r + 1);  // two "hosts"
      snprintf(peers[r].hostname, sizeof(peers[r].hostname), "host%d", r);
      TransportContext ctx;
      ctx.rank = r;
      ctx.nranks = 2;
      ctx.commHash = 0x1234;
      ctx.peers = peers;
      ctx.links = {1 - r};
      ctx.shape = FifoShape{4, 256 * 1024, 0, 0};
      ctx.wait.abortFlag = &abortFlag;
      ctx.wait.timeoutMs = 10000;
      ctx.wait.rank = r;
      socketAddressParse("127.0.0.1:0", &ctx.localAddr);
      ctx.localIfname = "lo";
      for (int i = 0; i < 32; ++i) ctx.secret[i] = uint8_t(i * 7 + 1);
      t[r] = kSocketTransport.create(ctx);
      conns[r].send.resize(2);
      conns[r].recv.resize(2);
      conns[r].direct.resize(2);
      conns[r].status.resize(2);
    }
  }
  SocketAddress addrOf(int r) const {
    SocketBlob b;
    memcpy(&b, blobs[r].bytes, sizeof(b));
    return b.addr;
  }
  void connectBoth() {
    const ConnectBlob* rows[2] = {&blobs[0], &blobs[1]};
    fcclResult_t res[2];
    std::thread other([&] { res[1] = t[1]->connect(rows, &conns[1]); });
    res[0] = t[0]->connect(rows, &conns[0]);
    other.join();
    ASSERT_EQ(res[0], fcclSuccess);
    ASSERT_EQ(res[1], fcclSuccess);
  }
};

// Drives progress() of both ranks, as the core's progress thread would.
struct Progress {
  std::atomic<bool> stop{false};
  std::thread th;
  explicit Progress(Pair& p) {
    th = std::thread([&] {
      while (!stop.load()) {
        bool busy;
        for (auto& t : p.t) t->progress(&busy);
        usleep(50);
      }
    });
  }
  ~Progress() {
    stop.store(true);
    th.join();
  }
};

TEST(SocketTransport, StrangersAreRefusedAndSetupCompletes) {
  Pair p;
  ASSERT_EQ(p.t[0]->setup(&p.blobs[0]), fcclSuccess);
  ASSERT_EQ(p.t[1]->setup(&p.blobs[1]), fcclSuccess);
  // Before the ranks connect: one stranger sends junk, another a hello with a made-up proof,
  // a third connects and says nothing.
  int junk = -1, forger = -1, silent = -1;
  ASSERT_TRUE(socketConnect(p.addrOf(0), ioLimitAfterMs(5000), &junk).ok());
  ASSERT_TRUE(socketConnect(p.addrOf(0), ioLimitAfterMs(5000), &forger).ok());
  ASSERT_TRUE(socketConnect(p.addrOf(0), ioLimitAfterMs(5000), &silent).ok());
  char garbage[sizeof(SocketHello)];
  memset(garbage, 'x', sizeof(garbage));
  ASSERT_TRUE(socketSendAll(junk, garbage, sizeof(garbage), ioLimitAfterMs(5000)).ok());
  SocketHello h{};
  h.magic = kSocketHelloMagic;
  h.version = kSocketWireVersion;
  h.nsocks = 2;
  h.rank = 1;
  h.index = 0;
  h.commHash = 0x1234;
  h.proof = 0xdeadbeef;
  ASSERT_TRUE(socketSendAll(forger, &h, sizeof(h), ioLimitAfterMs(5000)).ok());
  p.connectBoth();
  // The strangers got nothing but a closed connection.
  char c;
  EXPECT_EQ(socketRecvAll(junk, &c, 1, ioLimitAfterMs(5000)).kind, IoStatus::kClosed);
  EXPECT_EQ(socketRecvAll(forger, &c, 1, ioLimitAfterMs(5000)).kind, IoStatus::kClosed);
  socketClose(&junk);
  socketClose(&forger);
  socketClose(&silent);
  // A stranger after setup is refused by progress().
  {
    Progress prog(p);
    int late = -1;
    ASSERT_TRUE(socketConnect(p.addrOf(1), ioLimitAfterMs(5000), &late).ok());
    ASSERT_TRUE(socketSendAll(late, &h, sizeof(h), ioLimitAfterMs(5000)).ok());
    EXPECT_EQ(socketRecvAll(late, &c, 1, ioLimitAfterMs(5000)).kind, IoStatus::kClosed);
    socketClose(&late);
  }
  p.t[0]->close(false);
  p.t[1]->close(false);
}

TEST(SocketTransport, MessagesOfEverySizeArriveIntact) {
  Pair p;
  ASSERT_EQ(p.t[0]->setup(&p.blobs[0]), fcclSuccess);
  ASSERT_EQ(p.t[1]->setup(&p.blobs[1]), fcclSuccess);
  p.connectBoth();
  Progress prog(p);
  const std::vector<uint32_t> sizes = {0, 1, 4096, 65536, 65537, 200000, 256 * 1024};
  const int rounds = 5;  // several wrap-arounds of the 4-slot FIFO
  WaitContext w;
  w.timeoutMs = 10000;
  w.opName = "test";
  std::thread sender([&] {
    SendConn& s = p.conns[0].send[1];
    uint32_t n = 0;
    for (int r = 0; r < rounds; ++r)
      for (uint32_t bytes : sizes) {
        char* slot = nullptr;
        ASSERT_EQ(s.acquire(&slot, w), fcclSuccess);
        for (uint32_t i = 0; i < bytes; ++i) slot[i] = char((i * 31 + n) & 0xff);
        s.post(bytes, 1000 + n, uint64_t(bytes) * 3);
        ++n;
      }
  });
  RecvConn& rc = p.conns[1].recv[0];
  uint32_t n = 0;
  for (int r = 0; r < rounds; ++r)
    for (uint32_t bytes : sizes) {
      const char* data = nullptr;
      const SlotMeta* meta = nullptr;
      ASSERT_EQ(rc.wait(&data, &meta, w), fcclSuccess);
      ASSERT_EQ(meta->bytes, bytes);
      ASSERT_EQ(meta->tag, 1000 + n);
      ASSERT_EQ(meta->msgBytes, uint64_t(bytes) * 3);
      size_t bad = 0;
      for (uint32_t i = 0; i < bytes; ++i) bad += data[i] != char((i * 31 + n) & 0xff);
      ASSERT_EQ(bad, 0u) << "message " << n << " of " << bytes << " bytes";
      rc.release();
      ++n;
    }
  sender.join();
}

// The waiting rank steps the lanes itself (TransportComm::drive) beside the helpers.
struct DriveTransport final : WaitDriver {
  TransportComm* t;
  explicit DriveTransport(TransportComm* t_) : t(t_) {}
  bool drive() const override { return t->drive(); }
};

// Small frames are read several to a recv and may straddle the read buffer's end; frames read
// ahead wait there while the receiver's slots are full. Sizes around the 4 KiB buffer, in a
// stream of thousands, with the receiver pausing so that frames pile up; both ranks drive.
TEST(SocketTransport, SmallFramesReadTogetherArriveIntactAndInOrder) {
  Pair p;
  ASSERT_EQ(p.t[0]->setup(&p.blobs[0]), fcclSuccess);
  ASSERT_EQ(p.t[1]->setup(&p.blobs[1]), fcclSuccess);
  p.connectBoth();
  Progress prog(p);
  const std::vector<uint32_t> sizes = {0,    1,    7,    100,  4000, 4047,  4048,
                                       4049, 4095, 4096, 4097, 9000, 70000, 3};
  const uint32_t count = 3000;
  auto sizeOf = [&](uint32_t n) { return sizes[(n * 7) % sizes.size()]; };
  auto byteOf = [](uint32_t i, uint32_t n) { return char((i * 13 + n * 5) & 0xff); };
  DriveTransport drive0(p.t[0].get()), drive1(p.t[1].get());
  WaitContext ws, wr;
  ws.timeoutMs = wr.timeoutMs = 10000;
  ws.opName = wr.opName = "test";
  ws.driver = &drive0;
  wr.driver = &drive1;
  std::thread sender([&] {
    SendConn& s = p.conns[0].send[1];
    for (uint32_t n = 0; n < count; ++n) {
      char* slot = nullptr;
      ASSERT_EQ(s.acquire(&slot, ws), fcclSuccess);
      const uint32_t bytes = sizeOf(n);
      for (uint32_t i = 0; i < bytes; ++i) slot[i] = byteOf(i, n);
      s.post(bytes, n, bytes);
    }
  });
  RecvConn& rc = p.conns[1].recv[0];
  for (uint32_t n = 0; n < count; ++n) {
    if (n % 500 == 250) usleep(20000);  // the sender runs ahead: frames wait for free slots
    const char* data = nullptr;
    const SlotMeta* meta = nullptr;
    ASSERT_EQ(rc.wait(&data, &meta, wr), fcclSuccess);
    const uint32_t bytes = sizeOf(n);
    ASSERT_EQ(meta->bytes, bytes) << "message " << n;
    ASSERT_EQ(meta->tag, n);
    size_t bad = 0;
    for (uint32_t i = 0; i < bytes; ++i) bad += data[i] != byteOf(i, n);
    ASSERT_EQ(bad, 0u) << "message " << n << " of " << bytes << " bytes";
    rc.release();
  }
  sender.join();
}

TEST(SocketTransport, ClosedPeerIsLostWithinASecond) {
  Pair p;
  ASSERT_EQ(p.t[0]->setup(&p.blobs[0]), fcclSuccess);
  ASSERT_EQ(p.t[1]->setup(&p.blobs[1]), fcclSuccess);
  p.connectBoth();
  std::string why;
  EXPECT_FALSE(p.t[0]->peerLost(1, &why));
  auto t0 = std::chrono::steady_clock::now();
  p.t[1]->close(false);
  while (!p.t[0]->peerLost(1, &why) && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
    usleep(1000);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(p.t[0]->peerLost(1, &why));
  EXPECT_LT(sec, 1.0);
  EXPECT_NE(why.find("rank 1 (host host1"), std::string::npos) << why;
  EXPECT_NE(why.find("closed"), std::string::npos) << why;
  p.t[0]->close(false);
}

}  // namespace
}  // namespace fccl
