// shm_segment.h - one POSIX shared-memory segment: created (zero-filled) by its owner,
// mapped by peers by name, unlinked by the owner as soon as every peer has mapped it, so
// nothing is left in /dev/shm even if a process dies later.
#pragma once
#include <cstddef>
#include <string>
#include "fccl.h"

namespace fccl {

class ShmSegment {
 public:
  ShmSegment() = default;
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;
  ~ShmSegment();

  fcclResult_t create(const std::string& name, size_t bytes);
  fcclResult_t attach(const std::string& name, size_t bytes);
  void unlink();  // idempotent; only the creator unlinks
  // Removes a segment by name, for a creator that died before it could (no error if gone).
  static void unlinkName(const std::string& name);

  char* base() const { return static_cast<char*>(base_); }
  size_t bytes() const { return bytes_; }

 private:
  void* base_ = nullptr;
  size_t bytes_ = 0;
  std::string name_;
  bool owner_ = false;
};

}  // namespace fccl
