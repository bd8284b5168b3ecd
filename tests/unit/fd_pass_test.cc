// fd_pass_test.cc - descriptors between processes over the ranks' abstract Unix sockets
// (src/base/fd_pass.h): what arrives is the same open file, from another process too; a
// stranger's message is dropped with what it carried; a wait for nothing ends in time.
#include "src/base/fd_pass.h"

#include "src/base/error.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace fccl {
namespace {

constexpr uint64_t kComm = 0x5eed0123456789abull;

int memfdWith(const char* text) {
  const int fd = memfd_create("fccl_fd_pass_test", MFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, text, strlen(text)), ssize_t(strlen(text)));
  return fd;
}

std::string contentOf(int fd) {
  char buf[64] = {};
  EXPECT_GE(pread(fd, buf, sizeof(buf) - 1, 0), 0);
  return buf;
}

TEST(FdPass, TheSameOpenFileArrivesWithItsTag) {
  FdSocket a, b;
  ASSERT_EQ(a.open(kComm, 0), fcclSuccess);
  ASSERT_EQ(b.open(kComm, 1), fcclSuccess);
  const int fds[2] = {memfdWith("fifo"), memfdWith("counters")};
  ASSERT_EQ(a.send(1, 42, fds, 2), fcclSuccess);
  int from = -1, n = 0, got[kMaxPassedFds];
  uint64_t tag = 0;
  ASSERT_EQ(b.recv(&from, &tag, got, &n, 2000), fcclSuccess);
  EXPECT_EQ(from, 0);
  EXPECT_EQ(tag, 42u);
  ASSERT_EQ(n, 2);
  struct stat s0, s1;
  ASSERT_EQ(fstat(fds[0], &s0), 0);
  ASSERT_EQ(fstat(got[0], &s1), 0);
  EXPECT_EQ(s0.st_ino, s1.st_ino) << "the same file";
  EXPECT_NE(got[0], fds[0]) << "a new descriptor of it";
  EXPECT_EQ(contentOf(got[1]), "counters");
  for (int f : {fds[0], fds[1], got[0], got[1]}) close(f);
}

TEST(FdPass, FromAnotherProcess) {
  FdSocket parent;
  ASSERT_EQ(parent.open(kComm, 0), fcclSuccess);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    FdSocket s;
    if (s.open(kComm, 3) != fcclSuccess) _exit(1);
    const int fd = memfdWith("from the child");
    _exit(s.send(0, 7, &fd, 1) == fcclSuccess ? 0 : 2);
  }
  int from = -1, n = 0, got[kMaxPassedFds];
  uint64_t tag = 0;
  ASSERT_EQ(parent.recv(&from, &tag, got, &n, 5000), fcclSuccess);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(from, 3);
  ASSERT_EQ(n, 1);
  EXPECT_EQ(contentOf(got[0]), "from the child") << "readable after its sender exited";
  close(got[0]);
}

TEST(FdPass, StrangersAreDroppedAndWaitsEnd) {
  FdSocket b;
  ASSERT_EQ(b.open(kComm, 1), fcclSuccess);
  // A stranger (another communicator's hash) sends a descriptor to rank 1's name.
  FdSocket other;
  ASSERT_EQ(other.open(kComm + 1, 0), fcclSuccess);
  {
    const int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const std::string name = FdSocket::nameOf(kComm, 1);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path + 1, name.data(), name.size());
    const char junk[24] = "not a descriptor msg";
    ASSERT_EQ(sendto(s, junk, sizeof(junk), 0, reinterpret_cast<sockaddr*>(&a),
                     socklen_t(offsetof(sockaddr_un, sun_path) + 1 + name.size())),
              ssize_t(sizeof(junk)));
    close(s);
  }
  int from = -1, n = 0, got[kMaxPassedFds];
  uint64_t tag = 0;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(b.recv(&from, &tag, got, &n, 200), fcclSystemError);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(ms, 150);
  EXPECT_LT(ms, 2000);
  // Then a rank of this communicator still gets through.
  FdSocket a;
  ASSERT_EQ(a.open(kComm, 0), fcclSuccess);
  const int fd = memfdWith("ok");
  ASSERT_EQ(a.send(1, 9, &fd, 1), fcclSuccess);
  ASSERT_EQ(b.recv(&from, &tag, got, &n, 2000), fcclSuccess);
  EXPECT_EQ(contentOf(got[0]), "ok");
  close(fd);
  close(got[0]);
}

// 16 ranks, each sending to all others before it has received anything: more messages than a
// datagram queue holds (about 10), so ranks that send first and receive after would block on
// each other for good; exchange() interleaves and finishes.
TEST(FdPass, SixteenRanksExchangeWithoutBlockingEachOther) {
  constexpr int n = 16;
  std::vector<std::unique_ptr<FdSocket>> socks;
  for (int r = 0; r < n; ++r) {
    socks.push_back(std::make_unique<FdSocket>());
    ASSERT_EQ(socks.back()->open(kComm + 7, r), fcclSuccess);
  }
  std::vector<fcclResult_t> res(n, fcclInternalError);
  std::vector<std::vector<std::vector<int>>> got(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      const int fd = memfdWith(("rank " + std::to_string(r)).c_str());
      std::vector<int> others;
      for (int q = 0; q < n; ++q)
        if (q != r) others.push_back(q);
      res[size_t(r)] = socks[size_t(r)]->exchange(others, &fd, 1, others, &got[size_t(r)], 20000);
      close(fd);
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < n; ++r) {
    ASSERT_EQ(res[size_t(r)], fcclSuccess) << "rank " << r;
    int k = 0;
    for (int q = 0; q < n; ++q) {
      if (q == r) continue;
      ASSERT_EQ(got[size_t(r)][size_t(k)].size(), 1u);
      EXPECT_EQ(contentOf(got[size_t(r)][size_t(k)][0]), "rank " + std::to_string(q));
      close(got[size_t(r)][size_t(k)][0]);
      ++k;
    }
  }
}

// A peer that never sends: the exchange ends at its deadline naming it, and keeps nothing.
TEST(FdPass, ExchangeNamesTheSilentPeer) {
  FdSocket a, b;
  ASSERT_EQ(a.open(kComm + 9, 0), fcclSuccess);
  ASSERT_EQ(b.open(kComm + 9, 1), fcclSuccess);
  const int fd = memfdWith("x");
  std::vector<std::vector<int>> got;
  EXPECT_EQ(a.exchange({1}, &fd, 1, {1}, &got, 200), fcclSystemError);
  EXPECT_NE(std::string(lastError()).find("nothing from rank(s) 1"), std::string::npos) << lastError();
  close(fd);
}

TEST(FdPass, ANameIsBoundOnce) {
  FdSocket a, again;
  ASSERT_EQ(a.open(kComm, 5), fcclSuccess);
  EXPECT_EQ(again.open(kComm, 5), fcclSystemError);
}

}  // namespace
}  // namespace fccl
