// shm_segment.cc - shm_open + ftruncate + mmap. Pages are touched lazily, so a large
// segment of mostly unused FIFOs costs address space, not memory.
#include "transports/shm/shm_segment.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include "src/error.h"

namespace fccl {

ShmSegment::~ShmSegment() {
  unlink();
  if (base_ != nullptr) munmap(base_, bytes_);
}

fcclResult_t ShmSegment::create(const std::string& name, size_t bytes) {
  int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0)
    return setError(fcclSystemError, "shm: cannot create segment %s: %s", name.c_str(), strerror(errno));
  name_ = name;
  owner_ = true;
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    int err = errno;
    close(fd);
    unlink();
    return setError(fcclSystemError, "shm: cannot size segment %s to %zu bytes: %s (is /dev/shm full?)",
                    name.c_str(), bytes, strerror(err));
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (p == MAP_FAILED) {
    unlink();
    return setError(fcclSystemError, "shm: cannot map segment %s: %s", name.c_str(), strerror(err));
  }
  base_ = p;
  bytes_ = bytes;
  return fcclSuccess;
}

fcclResult_t ShmSegment::attach(const std::string& name, size_t bytes) {
  int fd = shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0)
    return setError(fcclSystemError, "shm: cannot open peer segment %s: %s", name.c_str(), strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < bytes) {
    close(fd);
    return setError(fcclSystemError, "shm: peer segment %s is smaller than expected (%zu bytes)",
                    name.c_str(), bytes);
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (p == MAP_FAILED)
    return setError(fcclSystemError, "shm: cannot map peer segment %s: %s", name.c_str(), strerror(err));
  base_ = p;
  bytes_ = bytes;
  name_ = name;
  return fcclSuccess;
}

void ShmSegment::unlinkName(const std::string& name) { shm_unlink(name.c_str()); }

void ShmSegment::unlink() {
  if (owner_ && !name_.empty()) shm_unlink(name_.c_str());
  owner_ = false;
}

}  // namespace fccl
