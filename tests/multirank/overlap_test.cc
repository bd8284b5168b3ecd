// overlap_test.cc - fcclAllReduceOverlap fed by a producer thread computing C = A x B with
// cblas_sgemm row block by row block, marking each block ready as it finishes, while the rank's
// thread runs the collective. The result must equal fcclAllReduce of the finished C bit for bit
// (the same ring, the same order). Also: out-of-order marks, a producer that never marks a
// chunk (a timeout naming the chunk, not a hang), count 0, Reset and reuse.
#include <cblas.h>
#include <gtest/gtest.h>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

using namespace fccltest;

namespace {

struct Matmul {
  size_t m, k, n;  // C (m x n) = A (m x k) x B (k x n), row major
  size_t rowsPerBlock;
  std::vector<float> a, b, c;
};

Matmul makeMatmul(int rank, size_t m, size_t k, size_t n, size_t rowsPerBlock, unsigned iter = 0) {
  Matmul mm{m,
            k,
            n,
            rowsPerBlock,
            std::vector<float>(m * k),
            std::vector<float>(k * n),
            std::vector<float>(m * n, -1.0f)};
  std::mt19937 gen(1234u + 77u * unsigned(rank) + 1000u * iter);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& x : mm.a) x = dist(gen);
  for (float& x : mm.b) x = dist(gen);
  return mm;
}

// Row blocks in the order the ring consumes them: by offset within their slice, then slice.
std::vector<size_t> ringOrder(fcclComm_t comm, int nranks, const Matmul& mm) {
  const size_t count = mm.m * mm.n;
  size_t b0, e0;
  fcclSliceRange(comm, 0, count, &b0, &e0);
  const size_t slice = std::max<size_t>(e0 - b0, 1);
  std::vector<size_t> rows;
  for (size_t r = 0; r < mm.m; r += mm.rowsPerBlock) rows.push_back(r);
  auto key = [&](size_t r) {
    size_t first = r * mm.n;
    return std::make_pair(first % slice, first / slice);
  };
  std::stable_sort(rows.begin(), rows.end(), [&](size_t x, size_t y) { return key(x) < key(y); });
  (void)nranks;
  return rows;
}

// Computes the blocks in `order`, marking each; skips (never marks) elements [skipB, skipE).
void produce(Matmul& mm, fcclReady_t ready, const std::vector<size_t>& order, size_t skipB = 0,
             size_t skipE = 0) {
  for (size_t r0 : order) {
    size_t rows = std::min(mm.rowsPerBlock, mm.m - r0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(mm.n), int(mm.k), 1.0f,
                mm.a.data() + r0 * mm.k, int(mm.k), mm.b.data(), int(mm.n), 0.0f, mm.c.data() + r0 * mm.n,
                int(mm.n));
    size_t b = r0 * mm.n, e = (r0 + rows) * mm.n;
    if (skipE > skipB && b < skipE && skipB < e) {
      // Mark around the hole only.
      if (b < skipB) fcclReadyMark(ready, b, skipB);
      if (skipE < e) fcclReadyMark(ready, skipE, e);
      continue;
    }
    fcclReadyMark(ready, b, e);
  }
}

// One overlapped allreduce checked against fcclAllReduce of the finished matrix.
void overlapOnce(fcclComm_t comm, int rank, int nranks, Matmul mm, fcclReady_t ready, bool reverse) {
  std::vector<size_t> order = ringOrder(comm, nranks, mm);
  if (reverse) std::reverse(order.begin(), order.end());
  const size_t count = mm.m * mm.n;
  std::vector<float> out(count, 0.0f), ref(count, 0.0f);
  std::thread producer([&] { produce(mm, ready, order); });
  fcclResult_t res =
      fcclAllReduceOverlap(mm.c.data(), out.data(), count, fcclFloat32, fcclSum, ready, comm, nullptr);
  producer.join();
  RCHECK_FCCL(res, comm);
  RCHECK_FCCL(fcclAllReduce(mm.c.data(), ref.data(), count, fcclFloat32, fcclSum, comm, nullptr), comm);
  RVERIFY(memcmp(out.data(), ref.data(), count * sizeof(float)) == 0, "rank %d: overlapped result differs",
          rank);
}

struct Shape {
  size_t m, k, n, rowsPerBlock;
};

// 32x32: small (the ring even where fcclAllReduce would go direct; 2 ranks add exactly in
// either order). 512x256: two FIFO chunks per slice at 2 ranks.
const Shape kShapes[] = {{32, 16, 32, 4}, {192, 64, 160, 8}, {512, 64, 256, 16}};

void runMatmulCase(int nranks, bool reverse) {
  EXPECT_RANKS_OK(runRanks(nranks, Mode::Threads, [&](fcclComm_t comm, int rank, int n) {
    for (const Shape& s : kShapes) {
      if (n > 2 && s.m == 32) continue;  // direct vs ring order differs for 3 ranks below 32 KiB
      noteProgress(strf("%zux%zu", s.m, s.n));
      fcclReady_t ready;
      RCHECK_FCCL(fcclReadyCreate(&ready, s.m * s.n), comm);
      overlapOnce(comm, rank, n, makeMatmul(rank, s.m, s.k, s.n, s.rowsPerBlock), ready, reverse);
      fcclReadyDestroy(ready);
    }
  }));
}

TEST(Overlap, MatmulTwoRanks) { runMatmulCase(2, false); }
TEST(Overlap, MatmulThreeRanks) { runMatmulCase(3, false); }
TEST(Overlap, OutOfOrderMarks) {
  runMatmulCase(2, true);
  runMatmulCase(3, true);
}

TEST(Overlap, ResetAndReuse) {
  EXPECT_RANKS_OK(runRanks(3, Mode::Threads, [&](fcclComm_t comm, int rank, int n) {
    fcclReady_t ready;
    RCHECK_FCCL(fcclReadyCreate(&ready, 192 * 160), comm);
    for (unsigned iter = 0; iter < 3; ++iter) {
      RCHECK_FCCL(fcclReadyReset(ready), comm);
      overlapOnce(comm, rank, n, makeMatmul(rank, 192, 64, 160, 8, iter), ready, iter == 1);
    }
    fcclReadyDestroy(ready);
  }));
}

TEST(Overlap, CountZeroAndBadArguments) {
  EXPECT_RANKS_OK(runRanks(2, Mode::Threads, [&](fcclComm_t comm, int, int) {
    fcclReady_t ready;
    RCHECK_FCCL(fcclReadyCreate(&ready, 0), comm);
    RCHECK_FCCL(fcclAllReduceOverlap(nullptr, nullptr, 0, fcclFloat32, fcclSum, ready, comm, nullptr), comm);
    float x = 1, y = 0;
    RVERIFY(fcclAllReduceOverlap(&x, &y, 1, fcclFloat32, fcclSum, ready, comm, nullptr) ==
            fcclInvalidArgument);
    RVERIFY(fcclAllReduceOverlap(&x, &y, 1, fcclFloat32, fcclSum, nullptr, comm, nullptr) ==
            fcclInvalidArgument);
    RVERIFY(fcclReadyMark(ready, 0, 1) == fcclInvalidArgument);
    fcclReadyDestroy(ready);
  }));
}

// Rank's producer leaves the first chunk of slice 0 unmarked: with 2 ranks both ranks need it
// before anything else can finish, so both stop within the 500 ms timeout naming it: each by
// its own timeout (fcclSystemError), or, if the other timed out first, by that rank's failure
// on its call board, which carries the same sentence (fcclRemoteError).
TEST(Overlap, UnmarkedChunkTimesOut) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_RANKS_OK(runRanks(
      2, Mode::Threads,
      [&](fcclComm_t comm, int rank, int nranks) {
        Matmul mm = makeMatmul(rank, 32, 16, 32, 4);
        const size_t count = mm.m * mm.n;
        fcclReady_t ready;
        RCHECK_FCCL(fcclReadyCreate(&ready, count), comm);
        std::vector<float> out(count);
        std::vector<size_t> order = ringOrder(comm, nranks, mm);
        std::thread producer([&] { produce(mm, ready, order, 0, 4); });
        fcclResult_t res =
            fcclAllReduceOverlap(mm.c.data(), out.data(), count, fcclFloat32, fcclSum, ready, comm, nullptr);
        producer.join();
        std::string text = fcclGetLastError(comm);
        RVERIFY(res == fcclSystemError ||
                    (res == fcclRemoteError && text.find("stopped (rank") != std::string::npos),
                "rank %d: %s", rank, describeResult(res, comm).c_str());
        RVERIFY(text.find("input chunk [0, ") != std::string::npos &&
                    text.find("to be marked ready by the producer") != std::string::npos &&
                    text.find("timed out") != std::string::npos,
                "rank %d: %s", rank, text.c_str());
        fcclReadyDestroy(ready);
      },
      30, 500));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

}  // namespace
