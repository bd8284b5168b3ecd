// overlap_perf.cc - what overlapping buys: C = A x B (cblas_sgemm, OpenBLAS) feeding an
// allreduce of C, per size, two ways on every rank:
//   serial   the whole sgemm, then fcclAllReduce(C)
//   overlap  a producer thread computes C in row blocks, in the order the ring consumes them,
//            and marks each one ready; the rank's thread runs fcclAllReduceOverlap(C) meanwhile
// Ranks are threads of this process. Prints both times (the slowest rank, mean over -n
// iterations after -w warm-ups), the ratio serial/overlap, and (-c 1) whether the overlapped
// result is bit-identical to fcclAllReduce of the same C.
// Usage: overlap_perf [-t ranks=2] [-b 256K] [-e 16M] [-f 4] [-n iters=5] [-w warmup=1] [-c 1]
//                     [-k inner=256] [-R rowsPerBlock=16]
// Sizes are C's bytes; C is m x m float32 with m = floor(sqrt(bytes / 4)).
// BLAS runs single-threaded (openblas_set_num_threads(1)): the ranks share the cores.
#include <cblas.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>
#include "fccl.h"
#include "options.h"

namespace {

double nowUs() {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

#define CHECK_FCCL(call)                                                               \
  do {                                                                                 \
    fcclResult_t r_ = (call);                                                          \
    if (r_ != fcclSuccess) {                                                           \
      fprintf(stderr, "overlap_perf: %s failed: %s\n", #call, fcclGetErrorString(r_)); \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

void gemmRows(const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c, size_t r0,
              size_t rows, size_t k, size_t n) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(n), int(k), 1.0f, a.data() + r0 * k,
              int(k), b.data(), int(n), 0.0f, c.data() + r0 * n, int(n));
}

// Row blocks in ring consumption order: by offset within their slice, then slice.
std::vector<size_t> ringOrder(fcclComm_t comm, size_t m, size_t n, size_t rowsPerBlock) {
  size_t b0, e0;
  CHECK_FCCL(fcclSliceRange(comm, 0, m * n, &b0, &e0));
  const size_t slice = std::max<size_t>(e0 - b0, 1);
  std::vector<size_t> rows;
  for (size_t r = 0; r < m; r += rowsPerBlock) rows.push_back(r);
  auto key = [&](size_t r) { return std::make_pair(r * n % slice, r * n / slice); };
  std::stable_sort(rows.begin(), rows.end(), [&](size_t x, size_t y) { return key(x) < key(y); });
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  using fccl::perf::Options;
  Options o;
  o.nThreads = 2;
  o.minBytes = 256u << 10;
  o.maxBytes = 16u << 20;
  o.stepFactor = 4;
  o.iters = 5;
  o.warmupIters = 1;
  fccl::perf::Tool tool{
      "overlap_perf",
      "tbeifnwc",
      {{'k', "inner", "<k>", "inner dimension of the sgemm",
        fccl::perf::countAt(&Options::inner, 1, 1 << 16)},
       {'R', "rows_per_block", "<rows>", "rows the producer computes and marks ready at a time",
        fccl::perf::countAt(&Options::rows, 1, 1 << 20)}},
      "Sizes are C's bytes (C is m x m float32, m = floor(sqrt(bytes / 4))). Ranks are threads (-t).\n"};
  int rc = fccl::perf::parseOptions(argc, argv, tool, &o);
  if (rc >= 0) return rc;
  openblas_set_num_threads(1);
  fcclUniqueId id;
  CHECK_FCCL(fcclGetUniqueId(&id));
  std::vector<size_t> sizes;  // C is m x m float32
  for (size_t bytes = o.minBytes; bytes <= o.maxBytes;) {
    const size_t m = std::max<size_t>(1, size_t(std::sqrt(double(bytes / sizeof(float)))));
    if (sizes.empty() || sizes.back() != m) sizes.push_back(m);
    const size_t next = o.stepFactor > 1 ? bytes * o.stepFactor : bytes + o.stepBytes;
    if (next <= bytes) break;
    bytes = next;
  }
  printf(
      "# overlap_perf: %d ranks (threads), k = %zu, %zu rows per block, %d warm-up and %d timed iterations\n",
      o.nThreads, o.inner, o.rows, o.warmupIters, o.iters);
  printf("# %10s %12s %14s %14s %8s %6s\n", "C", "bytes", "serial(us)", "overlap(us)", "ratio", "same");
  std::barrier sync(o.nThreads);
  std::vector<double> serialUs(o.nThreads), overlapUs(o.nThreads);
  std::atomic<bool> same{true};
  std::vector<std::thread> threads;
  for (int r = 0; r < o.nThreads; ++r) {
    threads.emplace_back([&, r] {
      fcclComm_t comm;
      CHECK_FCCL(fcclCommInitRank(&comm, o.nThreads, id, r));
      for (size_t m : sizes) {
        const size_t n = m, count = m * n;
        std::vector<float> a(m * o.inner), b(o.inner * n), c(count), out1(count), out2(count);
        std::mt19937 gen(42u + unsigned(r));
        std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
        for (float& x : a) x = dist(gen);
        for (float& x : b) x = dist(gen);
        const std::vector<size_t> order = ringOrder(comm, m, n, o.rows);
        fcclReady_t ready;
        CHECK_FCCL(fcclReadyCreate(&ready, count));
        double tSerial = 0, tOverlap = 0;
        for (int it = -o.warmupIters; it < o.iters; ++it) {
          sync.arrive_and_wait();
          double t0 = nowUs();
          gemmRows(a, b, c, 0, m, o.inner, n);
          CHECK_FCCL(fcclAllReduce(c.data(), out1.data(), count, fcclFloat32, fcclSum, comm, nullptr));
          double t1 = nowUs();
          sync.arrive_and_wait();
          std::fill(c.begin(), c.end(), 0.0f);
          CHECK_FCCL(fcclReadyReset(ready));
          sync.arrive_and_wait();
          double t2 = nowUs();
          std::thread producer([&] {
            for (size_t r0 : order) {
              size_t rows = std::min(o.rows, m - r0);
              gemmRows(a, b, c, r0, rows, o.inner, n);
              fcclReadyMark(ready, r0 * n, (r0 + rows) * n);
            }
          });
          CHECK_FCCL(
              fcclAllReduceOverlap(c.data(), out2.data(), count, fcclFloat32, fcclSum, ready, comm, nullptr));
          producer.join();
          double t3 = nowUs();
          if (it >= 0) {
            tSerial += t1 - t0;
            tOverlap += t3 - t2;
          }
          // The reference: fcclAllReduce of the same (blockwise computed) C, untimed. The serial
          // sgemm in one call may round differently from the row blocks.
          if (o.check) {
            CHECK_FCCL(fcclAllReduce(c.data(), out1.data(), count, fcclFloat32, fcclSum, comm, nullptr));
            if (memcmp(out1.data(), out2.data(), count * sizeof(float)) != 0) same = false;
          }
        }
        serialUs[r] = tSerial / o.iters;
        overlapUs[r] = tOverlap / o.iters;
        sync.arrive_and_wait();
        if (r == 0) {
          double s = *std::max_element(serialUs.begin(), serialUs.end());
          double v = *std::max_element(overlapUs.begin(), overlapUs.end());
          printf("  %5zux%-5zu %12zu %14.1f %14.1f %8.2f %6s\n", m, n, count * sizeof(float), s, v, s / v,
                 !o.check      ? "N/A"
                 : same.load() ? "yes"
                               : "NO");
          fflush(stdout);
        }
        sync.arrive_and_wait();
        fcclReadyDestroy(ready);
      }
      fcclCommDestroy(comm);
    });
  }
  for (std::thread& t : threads) t.join();
  return same.load() ? 0 : 1;
}
