// shm_segment.cc - shm_open + ftruncate + mmap. Pages are touched lazily, so a large
// segment of mostly unused FIFOs costs address space, not memory.
#include "transports/shm/shm_segment.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include "src/base/checks.h"
#include "src/base/error.h"

namespace fccl {
namespace {

// The segments this process created and still maps, by name (names are unique per process:
// they carry the pid and a counter).
struct Registry {
  std::mutex mutex;
  std::map<std::string, std::weak_ptr<ShmSegment>> byName;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: segments may outlive static destructors
  return *r;
}

}  // namespace

ShmSegment::~ShmSegment() {
  unlink();
  if (base_ != nullptr) munmap(base_, bytes_);
  Registry& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  auto it = reg.byName.find(name_);
  if (it != reg.byName.end() && it->second.expired()) reg.byName.erase(it);
}

fcclResult_t ShmSegment::map(int fd, size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (p == MAP_FAILED)
    return setError(fcclSystemError, "shm: cannot map segment %s: %s", name_.c_str(), strerror(err));
  base_ = p;
  bytes_ = bytes;
  return fcclSuccess;
}

fcclResult_t ShmSegment::create(const std::string& name, size_t bytes, std::shared_ptr<ShmSegment>* out) {
  int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0)
    return setError(fcclSystemError, "shm: cannot create segment %s: %s", name.c_str(), strerror(errno));
  std::shared_ptr<ShmSegment> seg(new ShmSegment);
  seg->name_ = name;
  seg->owner_ = true;  // from here on, seg's destructor unlinks the name on failure
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    int err = errno;
    close(fd);
    return setError(fcclSystemError, "shm: cannot size segment %s to %zu bytes: %s (is /dev/shm full?)",
                    name.c_str(), bytes, strerror(err));
  }
  FCCL_CHECK(seg->map(fd, bytes));
  {
    Registry& reg = registry();
    std::lock_guard<std::mutex> lock(reg.mutex);
    reg.byName[name] = seg;
  }
  *out = std::move(seg);  // outside the lock: it may release what *out held
  return fcclSuccess;
}

fcclResult_t ShmSegment::attach(const std::string& name, size_t bytes, std::shared_ptr<ShmSegment>* out) {
  // Declared before the lock: should this be the last reference (the creator let go
  // meanwhile), its destructor takes the registry's lock, so it must run after the unlock.
  std::shared_ptr<ShmSegment> mine;
  {
    Registry& reg = registry();
    std::lock_guard<std::mutex> lock(reg.mutex);
    auto it = reg.byName.find(name);
    if (it != reg.byName.end()) mine = it->second.lock();
  }
  if (mine != nullptr) {
    if (mine->bytes_ < bytes)
      return setError(fcclSystemError, "shm: peer segment %s is smaller than expected (%zu bytes)",
                      name.c_str(), bytes);
    *out = std::move(mine);
    return fcclSuccess;
  }
  int fd = shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0)
    return setError(fcclSystemError, "shm: cannot open peer segment %s: %s", name.c_str(), strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < bytes) {
    close(fd);
    return setError(fcclSystemError, "shm: peer segment %s is smaller than expected (%zu bytes)",
                    name.c_str(), bytes);
  }
  std::shared_ptr<ShmSegment> seg(new ShmSegment);
  seg->name_ = name;
  FCCL_CHECK(seg->map(fd, bytes));
  *out = std::move(seg);
  return fcclSuccess;
}

void ShmSegment::unlinkName(const std::string& name) { shm_unlink(name.c_str()); }

void ShmSegment::unlink() {
  if (owner_ && !name_.empty()) shm_unlink(name_.c_str());
  owner_ = false;
}

}  // namespace fccl
