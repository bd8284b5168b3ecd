// ready.h - fcclReady_t: which elements of a buffer a producer has finished, for collectives
// that consume their input while it is still being computed (fcclAllReduceOverlap). Marks may
// come in any order from any thread; they are kept as a sorted set of disjoint intervals
// behind a mutex. The consumer's check has two atomic fast paths: `prefix` (everything below
// it is ready, the common case once the producer is done or marks in order) and `marks` (a
// counter that lets a poll skip the mutex when nothing was marked since its last look).
// Release/acquire: data written before fcclReadyMark is visible to a consumer that saw it.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

struct fcclReady {
  explicit fcclReady(size_t n) : count(n) {}

  const size_t count;
  std::atomic<size_t> prefix{0};   // [0, prefix) is ready
  std::atomic<uint64_t> marks{0};  // bumped after every mark / reset
  std::mutex mu;
  std::vector<std::pair<size_t, size_t>> intervals;  // ready ranges above prefix, sorted, disjoint

  void mark(size_t begin, size_t end);
  void reset();
  // Is [begin, end) ready? Lock-free when it lies below prefix, or when nothing was marked
  // since this caller's last look (*seen, start it at UINT64_MAX).
  bool covers(size_t begin, size_t end, uint64_t* seen) {
    if (end <= prefix.load(std::memory_order_acquire)) return true;
    uint64_t m = marks.load(std::memory_order_acquire);
    if (m == *seen) return false;
    *seen = m;
    return coversSlow(begin, end);
  }

 private:
  bool coversSlow(size_t begin, size_t end);
};
