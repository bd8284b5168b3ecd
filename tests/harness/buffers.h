// buffers.h - user buffers with guard bytes on both sides, so a test sees any write outside
// the range a collective was given. The data region starts `offset` bytes past a 64-byte
// aligned address (offset != 0 gives the unaligned pointers of the semantics tests).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace fccltest {

constexpr uint8_t kGuardByte = 0xA5;      // around every buffer
constexpr uint8_t kUnwrittenByte = 0x5A;  // output regions before the call
constexpr size_t kGuardBytes = 64;

class GuardedBuf {
 public:
  GuardedBuf() : GuardedBuf(0, 0) {}
  GuardedBuf(size_t bytes, size_t offset) : bytes_(bytes), offset_(offset) {
    total_ = (kGuardBytes + offset + bytes + kGuardBytes + 63) / 64 * 64;
    base_.reset(static_cast<char*>(std::aligned_alloc(64, total_)));
    memset(base_.get(), kGuardByte, total_);
  }
  char* data() const { return base_.get() + kGuardBytes + offset_; }
  size_t bytes() const { return bytes_; }
  void fill(uint8_t b) { memset(data(), b, bytes_); }
  // Byte offset (relative to data(), negative before it) of the first damaged guard byte.
  bool guardsIntact(long* firstBad) const {
    const char* d = data();
    for (const char* p = base_.get(); p < d; ++p) {
      if ((uint8_t)*p != kGuardByte) {
        *firstBad = (long)(p - d);
        return false;
      }
    }
    for (const char* p = d + bytes_; p < base_.get() + total_; ++p) {
      if ((uint8_t)*p != kGuardByte) {
        *firstBad = (long)(p - d);
        return false;
      }
    }
    return true;
  }

 private:
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  size_t bytes_, offset_, total_;
  std::unique_ptr<char, Free> base_;
};

}  // namespace fccltest
