// shm_segment.h - one POSIX shared-memory segment: created (zero-filled) by its owner,
// mapped by peers by name, unlinked by the owner as soon as every peer has mapped it, so
// nothing is left in /dev/shm even if a process dies later.
//
// A process maps a segment once: a rank that is a thread of the creator's process shares the
// creator's mapping instead of mapping it again. One piece of memory then has one address in
// the process, which ThreadSanitizer needs (it tracks synchronization per address: with a
// mapping per rank it never saw a FIFO's release through the sender's view pair with the
// acquire through the receiver's), and 8 thread-ranks hold 8 mappings instead of 64.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include "fccl.h"

namespace fccl {

class ShmSegment {
 public:
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;
  ~ShmSegment();

  static fcclResult_t create(const std::string& name, size_t bytes, std::shared_ptr<ShmSegment>* out);
  // The creator's mapping when it lives in this process, else a new mapping of the segment.
  static fcclResult_t attach(const std::string& name, size_t bytes, std::shared_ptr<ShmSegment>* out);
  void unlink();  // idempotent; only the creator unlinks (call it from the creating rank only)
  // Removes a segment by name, for a creator that died before it could (no error if gone).
  static void unlinkName(const std::string& name);

  char* base() const { return static_cast<char*>(base_); }
  size_t bytes() const { return bytes_; }

 private:
  ShmSegment() = default;
  fcclResult_t map(int fd, size_t bytes);

  void* base_ = nullptr;
  size_t bytes_ = 0;
  std::string name_;
  bool owner_ = false;
};

}  // namespace fccl
