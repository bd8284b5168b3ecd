// shm_segment_test.cc - one mapping per segment per process: a rank that is a thread of the
// creator's process gets the creator's mapping (same address, so ThreadSanitizer sees the
// FIFOs' release/acquire pair up), a segment this process did not create is mapped anew, a
// segment whose last user let go is mapped anew too, and the size check holds either way.
#include "transports/shm/shm_segment.h"
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cstring>
#include <memory>
#include <string>
#include "src/base/error.h"

namespace fccl {
namespace {

std::string uniqueName(const char* what) {
  static int counter = 0;
  return "/fccl-test-shmseg-" + std::to_string(getpid()) + "-" + what + "-" + std::to_string(counter++);
}

TEST(ShmSegment, AttachInTheCreatorsProcessSharesItsMapping) {
  const std::string name = uniqueName("shared");
  std::shared_ptr<ShmSegment> own, peer;
  ASSERT_EQ(ShmSegment::create(name, 4096, &own), fcclSuccess) << lastError();
  ASSERT_EQ(ShmSegment::attach(name, 4096, &peer), fcclSuccess) << lastError();
  EXPECT_EQ(own.get(), peer.get());
  EXPECT_EQ(own->base(), peer->base());
  // The creator's unlink removes the name; the mapping stays usable for every holder.
  own->unlink();
  EXPECT_EQ(shm_open(name.c_str(), O_RDWR, 0600), -1);
  own.reset();
  peer->base()[0] = 42;
  EXPECT_EQ(peer->base()[0], 42);
}

TEST(ShmSegment, SegmentOfAnotherProcessIsMappedAnew) {
  // Made with shm_open directly, as another process would have: not in this process's registry.
  const std::string name = uniqueName("foreign");
  int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 8192), 0);
  close(fd);
  std::shared_ptr<ShmSegment> a, b;
  ASSERT_EQ(ShmSegment::attach(name, 8192, &a), fcclSuccess) << lastError();
  ASSERT_EQ(ShmSegment::attach(name, 8192, &b), fcclSuccess) << lastError();
  EXPECT_NE(a->base(), b->base());  // attachments are not shared, only the creator's mapping
  a->base()[100] = 7;
  EXPECT_EQ(b->base()[100], 7);  // same memory behind both
  std::shared_ptr<ShmSegment> big;
  EXPECT_EQ(ShmSegment::attach(name, 16384, &big), fcclSystemError);  // the fstat path
  EXPECT_NE(std::string(lastError()).find("smaller than expected"), std::string::npos) << lastError();
  ShmSegment::unlinkName(name);
}

TEST(ShmSegment, ReleasedSegmentIsMappedAnew) {
  const std::string name = uniqueName("released");
  std::shared_ptr<ShmSegment> own;
  ASSERT_EQ(ShmSegment::create(name, 4096, &own), fcclSuccess) << lastError();
  own.reset();  // unmapped and unlinked: the registry must not hand it out again
  std::shared_ptr<ShmSegment> late;
  EXPECT_EQ(ShmSegment::attach(name, 4096, &late), fcclSystemError);
  EXPECT_NE(std::string(lastError()).find("cannot open peer segment " + name), std::string::npos)
      << lastError();
  EXPECT_EQ(late, nullptr);
}

TEST(ShmSegment, AttachChecksTheSizeOfTheSharedMapping) {
  const std::string name = uniqueName("small");
  std::shared_ptr<ShmSegment> own, peer;
  ASSERT_EQ(ShmSegment::create(name, 4096, &own), fcclSuccess) << lastError();
  EXPECT_EQ(ShmSegment::attach(name, 8192, &peer), fcclSystemError);
  EXPECT_NE(std::string(lastError()).find("smaller than expected"), std::string::npos);
  EXPECT_EQ(peer, nullptr);
  int fd = shm_open(name.c_str(), O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  close(fd);
  own.reset();
  EXPECT_EQ(shm_open(name.c_str(), O_RDWR, 0600), -1);  // the creator's destructor unlinked it
}

}  // namespace
}  // namespace fccl
