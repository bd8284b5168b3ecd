// harness_test.cc - tests of the test harness itself: the suite's own float16/bfloat16
// conversions against known bit patterns, failure reporting per rank, a hang turned into a
// bounded failure naming the ranks, a crashed process reported with its signal.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "buffers.h"
#include "coll_check.h"
#include "dtypes.h"
#include "harness.h"

using namespace fccltest;

TEST(HarnessDtypes, HalfKnownValues) {
  EXPECT_EQ(floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(floatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(floatToHalf(65519.0f), 0x7bff);  // rounds down below the halfway point
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00);  // halfway to 2^16: even is infinity
  EXPECT_EQ(floatToHalf(1e9f), 0x7c00);
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -24)), 0x0001);             // smallest subnormal
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -25)), 0x0000);             // halfway to 0: even
  EXPECT_EQ(floatToHalf(std::ldexp(3.0f, -26)), 0x0001);             // 0.75 units: up
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -14)), 0x0400);             // smallest normal
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie: even
  EXPECT_EQ(floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie: even (up)
  EXPECT_EQ(floatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(floatToHalf(INFINITY), 0x7c00);
  EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(NAN))));
  for (uint32_t h = 0; h < 0x10000; ++h) {  // every finite half round-trips exactly
    if ((h & 0x7c00) == 0x7c00) continue;
    ASSERT_EQ(floatToHalf(halfToFloat((uint16_t)h)), h) << std::hex << h;
  }
}

TEST(HarnessDtypes, Bf16KnownValues) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(floatToBf16(-3.0f), 0xc040);
  EXPECT_EQ(floatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // tie: even
  EXPECT_EQ(floatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie: even (up)
  EXPECT_EQ(floatToBf16(3.4e38f), 0x7f80);                          // overflow: infinity
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(NAN))));
  for (uint32_t b = 0; b < 0x10000; ++b) {
    if ((b & 0x7f80) == 0x7f80) continue;
    ASSERT_EQ(floatToBf16(bf16ToFloat((uint16_t)b)), b) << std::hex << b;
  }
}

TEST(HarnessDtypes, IntegerWrapAndSignExtension) {
  uint64_t buf = 0;
  storeInt(fcclInt8, &buf, 0, (uint64_t)-3);
  EXPECT_EQ(loadInt(fcclInt8, &buf, 0), -3);
  EXPECT_EQ(loadBits(fcclInt8, &buf, 0), 0xfdu);
  storeInt(fcclUint8, &buf, 0, 256 + 7);
  EXPECT_EQ(loadBits(fcclUint8, &buf, 0), 7u);
  EXPECT_EQ(maskBits(fcclUint32, 0x1'0000'0005ull), 5u);
}

TEST(HarnessBuffers, GuardsSeeWritesOutside) {
  GuardedBuf b(10, 3);
  long bad = 0;
  EXPECT_TRUE(b.guardsIntact(&bad));
  b.data()[10] = 0;
  EXPECT_FALSE(b.guardsIntact(&bad));
  EXPECT_EQ(bad, 10);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, 3u);
}

class HarnessModes : public ::testing::TestWithParam<Mode> {};

TEST_P(HarnessModes, ReportsEveryFailingRank) {
  RunResult r = runRanksRaw(
      3, GetParam(),
      [](const fcclUniqueId&, int rank, int) {
        RVERIFY(rank == 0, "soft failure");
        RCHECK(rank != 2, "fatal failure");
        RVERIFY(rank == 0, "rank %d continued", rank);
      },
      20);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.report.find("rank 0:"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("rank 1: "), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("rank 1 continued"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("fatal failure"), std::string::npos) << r.report;
  EXPECT_EQ(r.report.find("rank 2 continued"), std::string::npos) << r.report;
}

TEST_P(HarnessModes, HangBecomesBoundedFailureNamingRanks) {
  auto start = std::chrono::steady_clock::now();
  RunResult r = runRanksRaw(
      3, GetParam(),
      [](const fcclUniqueId&, int rank, int) {
        if (rank == 1) {
          RVERIFY(false, "about to hang");
          std::this_thread::sleep_for(std::chrono::seconds(GetParam() == Mode::Threads ? 4 : 600));
        }
      },
      2);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(r.ok);
  EXPECT_LT(secs, 4.0);
  EXPECT_NE(r.report.find("did not finish"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find(": 1\n"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("about to hang"), std::string::npos) << r.report;  // recorded before
  if (GetParam() == Mode::Threads) std::this_thread::sleep_for(std::chrono::seconds(3));
}

TEST_P(HarnessModes, PassingBodyIsOk) {
  RunResult r = runRanksRaw(
      4, GetParam(),
      [](const fcclUniqueId&, int rank, int n) {
        RCHECK(rank >= 0 && rank < n);
        RCHECK(currentRank() == rank);
        std::thread t = rankThread([rank] { RCHECK(currentRank() == rank); });
        t.join();
      },
      20);
  EXPECT_TRUE(r.ok) << r.report;
}

TEST(HarnessProcesses, CrashIsReportedWithSignal) {
  RunResult r = runRanksRaw(
      2, Mode::Processes,
      [](const fcclUniqueId&, int rank, int) {
        if (rank == 1) abort();
      },
      20);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.report.find("rank 1: killed by signal 6"), std::string::npos) << r.report;
}

INSTANTIATE_TEST_SUITE_P(Modes, HarnessModes, ::testing::Values(Mode::Threads, Mode::Processes),
                         [](const auto& info) { return std::string(modeName(info.param)); });

// The sweep's verification must not be vacuous: a call that never ran, or a write past the
// output, has to be reported for every collective.
TEST(HarnessCollCheck, VerifyCatchesMissingCallAndStrayWrites) {
  for (int k = 0; k < kNumColls; ++k) {
    RunResult r = runRanksRaw(
        1, Mode::Threads,
        [k](const fcclUniqueId&, int, int) {
          const int nranks = 3, rank = 1;
          CollCase c;
          c.coll = (Coll)k;
          c.dt = fcclInt32;
          c.count = 5;
          c.root = 1;
          CollRun notCalled(c, rank, nranks);
          RVERIFY(!notCalled.verify(), "%s: unwritten output passed", collName(c.coll));
          CollRun stray(c, rank, nranks);
          memcpy(static_cast<char*>(stray.recvPtr()) - 1, "x", 1);
          RVERIFY(!stray.verify(), "%s: write before recvbuff passed", collName(c.coll));
        },
        20);
    EXPECT_FALSE(r.ok);
    // Only verify()'s own messages: the RVERIFYs above must not fire.
    EXPECT_EQ(r.report.find("passed"), std::string::npos) << r.report;
    EXPECT_NE(r.report.find("output elements wrong"), std::string::npos) << r.report;
    EXPECT_NE(r.report.find("wrote outside recvbuff"), std::string::npos) << r.report;
  }
}
