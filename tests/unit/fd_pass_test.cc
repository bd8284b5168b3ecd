// fd_pass_test.cc - descriptors between processes over the ranks' abstract Unix sockets
// (src/base/fd_pass.h): what arrives is the same open file, from another process too; a
// stranger's message is dropped with what it carried; a wait for nothing ends in time.
#include "src/base/fd_pass.h"

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
#include <string>

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

TEST(FdPass, ANameIsBoundOnce) {
  FdSocket a, again;
  ASSERT_EQ(a.open(kComm, 5), fcclSuccess);
  EXPECT_EQ(again.open(kComm, 5), fcclSystemError);
}

}  // namespace
}  // namespace fccl
