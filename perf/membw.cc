// membw.cc - the memory ceiling a collective is compared with, measured the way collectives use
// memory: T threads (one per rank, each bound to its own CPU as mpirun --bind-to core binds
// ranks) stream over their share of each buffer at once; the slowest thread sets the time and
// the best of -n runs counts (after -w warm-up runs), in bytes read + bytes written per second.
// Kernels (perf/loops.cc, built with the JIT's flags):
//   read      reads the buffer
//   copy      reads one buffer, writes another with streaming stores (fccl writes collective
//             outputs this way: a 2-rank allreduce reads its input and writes its output once)
//   copy-rfo  the same copy with ordinary stores: each written line is read first (RFO), which
//             the count of bytes does not include; a STREAM-like copy's number
//   triad     reads two buffers, writes a third with streaming stores
//   update    reads four buffers, writes three of them in place (an optimizer's pattern)
// Usage: membw [-t threads] [-b minbytes] [-e maxbytes] [-f factor] [-n runs] [-w warmups] [-k kernel]
// Output: a table (GB/s per kernel and size), then per kernel of the largest size a line
// "membw: <kernel> <GB/s> GB/s (<threads> threads, <bytes> bytes ...)", parsed by compare.sh.
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "loops.h"
#include "options.h"

namespace fccl::perf {
namespace {

struct Kernel {
  const char* name;
  int buffers;          // float arrays of the share it touches
  double bytesPerElem;  // read + written
  const char* what;
};
const Kernel kKernels[] = {
    {"read", 1, 4, "reads"},
    {"copy", 2, 8, "read + streaming-store copy"},
    {"copy-rfo", 2, 8, "read + ordinary-store copy (read-for-ownership not counted)"},
    {"triad", 3, 12, "2 reads + 1 streaming store"},
    {"update", 4, 28, "4 reads + 3 in-place writes"},
};
constexpr int kNumKernels = sizeof(kKernels) / sizeof(kKernels[0]);

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

volatile double gSink = 0;

void runKernel(int k, float* const* a, size_t n) {
  switch (k) {
    case 0:
      gSink = gSink + readAll(a[0], n);
      break;
    case 1:
      copyStreaming(a[1], a[0], n);
      break;
    case 2:
      copyCached(a[1], a[0], n);
      break;
    case 3:
      triadStreaming(a[2], a[0], a[1], n);
      break;
    default:
      updateInPlace(a[0], a[1], a[2], a[3], n);
      break;
  }
}

// The CPUs this process may use, ascending.
std::vector<int> processCpus() {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

// Spin barrier among the workers only: no other thread spins meanwhile (a timing thread spinning
// beside bound workers took half a CPU from one of them: 2 threads measured half the rate).
class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  void wait() {
    const int gen = gen_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_acq_rel);
    } else {
      while (gen_.load(std::memory_order_acquire) == gen) {
      }
    }
  }

 private:
  const int n_;
  std::atomic<int> arrived_{0}, gen_{0};
};

// Best GB/s of kernel k over `bytes` split among the threads (each its own 4 arrays). Worker 0
// times each run between two barriers of all workers: the slowest worker sets the time.
double measure(int k, size_t bytes, int threads, int runs, int warmups, bool bind) {
  const size_t share = std::max<size_t>((bytes / threads + 63) / 64 * 64 / sizeof(float), 16);
  const std::vector<int> cpus = processCpus();
  SpinBarrier barrier(threads);
  double best = 1e30;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      if (bind && t < int(cpus.size())) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[t], &one);
        pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
      }
      // Own buffers, first touched by this thread (placement near its CPU).
      float* a[4] = {nullptr, nullptr, nullptr, nullptr};
      for (int b = 0; b < kKernels[k].buffers; ++b) {
        a[b] = static_cast<float*>(std::aligned_alloc(4096, (share * sizeof(float) + 4095) / 4096 * 4096));
        if (!a[b]) {
          std::fprintf(stderr, "membw: cannot allocate %zu bytes\n", share * sizeof(float));
          std::exit(1);
        }
        for (size_t i = 0; i < share; ++i) a[b][i] = float(i & 1023) * 0.5f;
      }
      for (int r = 0; r < warmups + runs; ++r) {
        barrier.wait();
        const double t0 = now();
        runKernel(k, a, share);
        barrier.wait();
        if (t == 0 && r >= warmups) best = std::min(best, now() - t0);
      }
      for (float* p : a) std::free(p);
    });
  for (std::thread& th : pool) th.join();
  return kKernels[k].bytesPerElem * double(share) * threads / best / 1e9;
}

int membwMain(int argc, char** argv) {
  static Choice kernelChoices[kNumKernels + 2];
  for (int k = 0; k < kNumKernels; ++k) kernelChoices[k] = {kKernels[k].name, k};
  kernelChoices[kNumKernels] = {"all", -1};
  kernelChoices[kNumKernels + 1] = {nullptr, 0};
  Options o;
  o.nThreads = 2;
  o.minBytes = o.maxBytes = 256u << 20;
  o.stepFactor = 2;
  o.iters = 10;
  o.warmupIters = 1;
  o.choice = -1;
  Tool tool{"membw",
            "tbeifnw",
            {{'k', "kernel", "<kernel>", "what to measure", choiceAt(&Options::choice, kernelChoices)},
             {'B', "bind", "<0/1>", "bind thread i to the i-th CPU of the process (default 1)",
              intAt(&Options::ignored, 0, 1)}},
            "Sizes are the total over the threads (each streams over its share).\n"
            "Defaults: -t 2 -b 256M -e 256M -n 10 -w 1 -k all -B 1.\n"};
  o.ignored = 1;  // -B
  int rc = parseOptions(argc, argv, tool, &o);
  if (rc >= 0) return rc;
  const bool bind = o.ignored != 0;
  std::printf(
      "# membw: %d threads%s, best of %d runs after %d warm-up, GB/s = (bytes read + bytes written) / time\n",
      o.nThreads, bind ? " bound one per CPU" : "", o.iters, o.warmupIters);
  for (int k = 0; k < kNumKernels; ++k)
    if (o.choice < 0 || o.choice == k) std::printf("#   %-8s %s\n", kKernels[k].name, kKernels[k].what);
  std::printf("# %12s", "size(B)");
  for (int k = 0; k < kNumKernels; ++k)
    if (o.choice < 0 || o.choice == k) std::printf(" %9s", kKernels[k].name);
  std::printf("\n");
  double last[kNumKernels] = {0};
  size_t lastBytes = 0;
  for (size_t bytes = o.minBytes; bytes <= o.maxBytes;) {
    std::printf("  %12zu", bytes);
    for (int k = 0; k < kNumKernels; ++k) {
      if (o.choice >= 0 && o.choice != k) continue;
      last[k] = measure(k, bytes, o.nThreads, o.iters, o.warmupIters, bind);
      std::printf(" %9.2f", last[k]);
      std::fflush(stdout);
    }
    std::printf("\n");
    lastBytes = bytes;
    size_t next = o.stepFactor > 1 ? bytes * o.stepFactor : bytes + o.stepBytes;
    if (next <= bytes) break;
    bytes = next;
  }
  for (int k = 0; k < kNumKernels; ++k)
    if (o.choice < 0 || o.choice == k)
      std::printf("membw: %s %.2f GB/s (%d threads, %zu bytes, %s, best of %d)\n", kKernels[k].name, last[k],
                  o.nThreads, lastBytes, kKernels[k].what, o.iters);
  return 0;
}

}  // namespace
}  // namespace fccl::perf

int main(int argc, char** argv) { return fccl::perf::membwMain(argc, argv); }
