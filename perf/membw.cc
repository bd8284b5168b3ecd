// membw.cc - STREAM-like copy bandwidth: N threads each copy their share of a buffer (default
// 256 MiB, 2 threads) and the best of -n repetitions is reported in GB/s counting bytes read
// plus bytes written (2 x buffer per copy), so the memory-bandwidth bound of a collective can be
// measured in the same run as the collective (perf/compare.sh).
// Usage: membw [-t threads] [-s size, e.g. 256M] [-n reps]
// Output (last line, parsed by compare.sh): "membw: <threads> threads <bytes> bytes copy <GB/s> GB/s"
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

bool parseSize(const char* s, size_t* out) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (end == s || !(v > 0)) return false;
  double unit = 1;
  if (*end == 'K' || *end == 'k')
    unit = 1024.0, end++;
  else if (*end == 'M' || *end == 'm')
    unit = 1024.0 * 1024, end++;
  else if (*end == 'G' || *end == 'g')
    unit = 1024.0 * 1024 * 1024, end++;
  if (*end != '\0') return false;
  *out = (size_t)(v * unit);
  return true;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 10;
  size_t bytes = 256u << 20;
  int c;
  while ((c = getopt(argc, argv, "t:s:n:h")) != -1) {
    char* end = nullptr;
    switch (c) {
      case 't':
        threads = (int)std::strtol(optarg, &end, 10);
        if (*end || threads < 1 || threads > 1024) {
          std::fprintf(stderr, "membw: bad -t '%s'\n", optarg);
          return 1;
        }
        break;
      case 'n':
        reps = (int)std::strtol(optarg, &end, 10);
        if (*end || reps < 1) {
          std::fprintf(stderr, "membw: bad -n '%s'\n", optarg);
          return 1;
        }
        break;
      case 's':
        if (!parseSize(optarg, &bytes)) {
          std::fprintf(stderr, "membw: bad -s '%s' (e.g. 256M)\n", optarg);
          return 1;
        }
        break;
      default:
        std::printf("usage: membw [-t threads (2)] [-s bytes (256M)] [-n reps (10)]\n");
        return c == 'h' ? 0 : 1;
    }
  }
  size_t share = (bytes / threads + 63) / 64 * 64;
  char* src = (char*)std::aligned_alloc(4096, share * threads + 4096);
  char* dst = (char*)std::aligned_alloc(4096, share * threads + 4096);
  if (!src || !dst) {
    std::fprintf(stderr, "membw: cannot allocate 2 x %zu bytes\n", bytes);
    return 1;
  }

  // Each thread first touches its own share (first-touch placement), then copies it reps
  // times; all threads start each repetition together and the slowest one sets the time.
  std::atomic<int> ready{0}, go{0}, done{0};
  std::vector<double> best(reps, 0);
  std::vector<std::thread> pool;
  std::vector<double> t0(reps), t1(reps);
  for (int t = 0; t < threads; t++) {
    pool.emplace_back([&, t] {
      char* s = src + t * share;
      char* d = dst + t * share;
      std::memset(s, t + 1, share);
      std::memset(d, 0, share);
      for (int r = 0; r < reps; r++) {
        ready++;
        while (go.load() <= r) {
        }
        std::memcpy(d, s, share);
        done++;
      }
    });
  }
  for (int r = 0; r < reps; r++) {
    while (ready.load() < threads * (r + 1)) {
    }
    t0[r] = now();
    go.store(r + 1);
    while (done.load() < threads * (r + 1)) {
    }
    t1[r] = now();
  }
  for (auto& th : pool) th.join();
  double bestSec = 1e30;
  for (int r = 0; r < reps; r++) bestSec = std::min(bestSec, t1[r] - t0[r]);
  double moved = 2.0 * (double)share * threads;  // read + written
  std::printf("# membw: STREAM-like copy, GB/s = (bytes read + bytes written) / time, best of %d\n", reps);
  std::printf("membw: %d threads %zu bytes copy %.2f GB/s\n", threads, share * threads,
              moved / bestSec / 1e9);
  std::free(src);
  std::free(dst);
  return 0;
}
