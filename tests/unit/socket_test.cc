// socket_test.cc - address parsing/printing, interface choice, and bounded socket calls.
// Every blocking call here is given a short limit, so a bug shows as a failure, not a hang.
#include "src/base/socket.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "src/base/wait.h"

namespace fccl {
namespace {

TEST(Socket, ParseAndPrintIpv4) {
  SocketAddress a;
  ASSERT_EQ(socketAddressParse("127.0.0.1:5678", &a), fcclSuccess);
  EXPECT_EQ(a.sa.sa_family, AF_INET);
  EXPECT_EQ(socketAddressToString(a), "127.0.0.1:5678");
}

TEST(Socket, ParseAndPrintIpv6) {
  SocketAddress a;
  ASSERT_EQ(socketAddressParse("[::1]:5678", &a), fcclSuccess);
  EXPECT_EQ(a.sa.sa_family, AF_INET6);
  EXPECT_EQ(socketAddressToString(a), "[::1]:5678");
}

TEST(Socket, ParseHostName) {
  SocketAddress a;
  ASSERT_EQ(socketAddressParse("localhost:80", &a), fcclSuccess);
  EXPECT_TRUE(a.sa.sa_family == AF_INET || a.sa.sa_family == AF_INET6);
}

TEST(Socket, ParseRejectsBadText) {
  SocketAddress a;
  for (const char* bad : {"", "nocolon", ":80", "1.2.3.4:", "1.2.3.4:99999", "1.2.3.4:12x", "[::1]5678",
                          "[::1", "no.such.host.invalid:80"})
    EXPECT_EQ(socketAddressParse(bad, &a), fcclInvalidArgument) << bad;
}

TEST(Socket, FindsAnInterface) {
  SocketAddress a;
  std::string ifname;
  ASSERT_EQ(socketFindInterface(&a, &ifname), fcclSuccess);
  EXPECT_TRUE(a.sa.sa_family == AF_INET || a.sa.sa_family == AF_INET6);
  EXPECT_FALSE(ifname.empty());
}

TEST(Socket, ListenConnectSendRecv) {
  SocketAddress lo, bound;
  ASSERT_EQ(socketAddressParse("127.0.0.1:0", &lo), fcclSuccess);
  int lfd = -1;
  ASSERT_EQ(socketListen(lo, &lfd, &bound), fcclSuccess);
  EXPECT_NE(socketAddressToString(bound), "127.0.0.1:0");  // an ephemeral port was chosen
  int cfd = -1, afd = -1;
  ASSERT_TRUE(socketConnect(bound, ioLimitAfterMs(5000), &cfd).ok());
  ASSERT_TRUE(socketAccept(lfd, ioLimitAfterMs(5000), &afd, nullptr).ok());
  const char msg[] = "hello bootstrap";
  char got[sizeof(msg)] = {};
  ASSERT_TRUE(socketSendAll(cfd, msg, sizeof(msg), ioLimitAfterMs(5000)).ok());
  ASSERT_TRUE(socketRecvAll(afd, got, sizeof(got), ioLimitAfterMs(5000)).ok());
  EXPECT_STREQ(got, msg);
  socketClose(&cfd);
  EXPECT_EQ(socketRecvAll(afd, got, 1, ioLimitAfterMs(5000)).kind, IoStatus::kClosed);
  socketClose(&afd);
  socketClose(&lfd);
  EXPECT_EQ(lfd, -1);
}

TEST(Socket, RecvTimesOutAndAborts) {
  SocketAddress lo, bound;
  ASSERT_EQ(socketAddressParse("127.0.0.1:0", &lo), fcclSuccess);
  int lfd = -1, cfd = -1, afd = -1;
  ASSERT_EQ(socketListen(lo, &lfd, &bound), fcclSuccess);
  ASSERT_TRUE(socketConnect(bound, ioLimitAfterMs(5000), &cfd).ok());
  ASSERT_TRUE(socketAccept(lfd, ioLimitAfterMs(5000), &afd, nullptr).ok());
  char c;
  int64_t t0 = nowNs();
  EXPECT_EQ(socketRecvAll(afd, &c, 1, ioLimitAfterMs(100)).kind, IoStatus::kTimeout);
  EXPECT_LT(nowNs() - t0, 2000000000);
  std::atomic<int> flag{1};
  EXPECT_EQ(socketRecvAll(afd, &c, 1, ioLimitAfterMs(60000, &flag)).kind, IoStatus::kAborted);
  EXPECT_EQ(socketAccept(lfd, ioLimitAfterMs(60000, nullptr, &flag), &afd, nullptr).kind, IoStatus::kAborted);
  socketClose(&cfd);
  socketClose(&afd);
  socketClose(&lfd);
}

TEST(Socket, ConnectRetriesUntilListenerAppears) {
  // Find a free port, release it, and start listening on it only after the connect began.
  SocketAddress lo, bound;
  ASSERT_EQ(socketAddressParse("127.0.0.1:0", &lo), fcclSuccess);
  int lfd = -1;
  ASSERT_EQ(socketListen(lo, &lfd, &bound), fcclSuccess);
  socketClose(&lfd);
  std::thread late([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(socketListen(bound, &lfd, nullptr), fcclSuccess);
  });
  int cfd = -1;
  IoStatus st = socketConnect(bound, ioLimitAfterMs(5000), &cfd);
  late.join();
  EXPECT_TRUE(st.ok()) << ioStatusString(st);
  socketClose(&cfd);
  socketClose(&lfd);
}

TEST(Socket, ConnectToNobodyTimesOut) {
  SocketAddress lo, bound;
  ASSERT_EQ(socketAddressParse("127.0.0.1:0", &lo), fcclSuccess);
  int lfd = -1;
  ASSERT_EQ(socketListen(lo, &lfd, &bound), fcclSuccess);
  socketClose(&lfd);
  int cfd = -1;
  EXPECT_EQ(socketConnect(bound, ioLimitAfterMs(200), &cfd).kind, IoStatus::kTimeout);
}

}  // namespace
}  // namespace fccl
