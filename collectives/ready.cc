// ready.cc - see ready.h: the interval set behind fcclReady_t (the exported calls are in
// src/ready_api.cc).
#include "collectives/ready.h"
#include <algorithm>

void fcclReady::mark(size_t begin, size_t end) {
  if (begin >= end) return;
  {
    std::lock_guard<std::mutex> lock(mu);
    size_t p = prefix.load(std::memory_order_relaxed);
    begin = std::max(begin, p);
    if (begin < end) {
      // Merge [begin, end) with every interval it overlaps or touches.
      auto first =
          std::lower_bound(intervals.begin(), intervals.end(), begin,
                           [](const std::pair<size_t, size_t>& iv, size_t b) { return iv.second < b; });
      auto last = first;
      while (last != intervals.end() && last->first <= end) {
        begin = std::min(begin, last->first);
        end = std::max(end, last->second);
        ++last;
      }
      first = intervals.erase(first, last);
      intervals.insert(first, {begin, end});
      // The lowest interval joins the prefix once it starts there.
      if (intervals.front().first <= p) {
        p = intervals.front().second;
        intervals.erase(intervals.begin());
        prefix.store(p, std::memory_order_release);
      }
    }
  }
  marks.fetch_add(1, std::memory_order_release);
}

void fcclReady::reset() {
  {
    std::lock_guard<std::mutex> lock(mu);
    intervals.clear();
    prefix.store(0, std::memory_order_release);
  }
  marks.fetch_add(1, std::memory_order_release);
}

bool fcclReady::coversSlow(size_t begin, size_t end) {
  std::lock_guard<std::mutex> lock(mu);
  if (end <= prefix.load(std::memory_order_relaxed)) return true;
  begin = std::max(begin, prefix.load(std::memory_order_relaxed));
  auto it = std::upper_bound(intervals.begin(), intervals.end(), begin,
                             [](size_t b, const std::pair<size_t, size_t>& iv) { return b < iv.first; });
  if (it == intervals.begin()) return false;
  --it;
  return it->first <= begin && end <= it->second;
}
