// mismatch_test.cc - ranks that disagree are told so, fast, with both calls named: different
// counts that make ranks pick different algorithms (direct vs ring), datatypes of the same byte
// size, ops, roots, collectives; a peer that aborted or destroyed its communicator ends the wait
// with that reason. Every case runs with ranks as threads and as processes, with a 20 s
// communicator timeout that the detection must beat by far (it runs in the waits' slow path,
// every ~50 ms). See src/callboard.h.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "harness.h"

using namespace fccltest;

namespace {

constexpr int kCommTimeoutMs = 20000;
// Detection takes milliseconds; the bound only shows it was not the 20 s timeout. Under
// ThreadSanitizer, with ctest -j2 on 2 cores, one detection took 2.6 s (0.01-0.07 s alone).
#if defined(__SANITIZE_THREAD__)
constexpr double kMaxDetectSec = 8.0;
#else
constexpr double kMaxDetectSec = 2.0;
#endif

// What one rank calls after a first AllReduce that every rank makes alike (so the boards are
// in step and the mismatching call is #2).
// A call that frees the communicator sets comm to nullptr.
using RankCall = std::function<fcclResult_t(fcclComm_t& comm, int rank, std::vector<char>& buf)>;

struct Expect {
  fcclResult_t code;                  // what every rank that does not finish returns
  std::vector<std::string> contains;  // substrings of its fcclGetLastError text
  // Ranks whose call may succeed because they wait on nobody the mismatch blocks. Such a rank
  // can still reach its wait's slow path first (a slow peer, a sanitizer build) and then reads
  // the boards like the others: it must then fail with the same error.
  std::vector<int> finishers = {};
};

void runCase(int nranks, Mode mode, const RankCall& call, const Expect& expect) {
  RunResult r = runRanksRaw(
      nranks, mode,
      [&](const fcclUniqueId& id, int rank, int n) {
        fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
        config.timeoutMs = kCommTimeoutMs;
        fcclComm_t comm = nullptr;
        RCHECK_FCCL(fcclCommInitRankConfig(&comm, n, id, rank, &config), nullptr);
        std::vector<float> small(16, 1.0f);
        RCHECK_FCCL(
            fcclAllReduce(small.data(), small.data(), small.size(), fcclFloat, fcclSum, comm, nullptr), comm);
        std::vector<char> buf(size_t(64) << 20);
        auto t0 = std::chrono::steady_clock::now();
        fcclResult_t res = call(comm, rank, buf);
        double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        bool finisher = false;
        for (int f : expect.finishers) finisher |= f == rank;
        if (finisher && res == fcclSuccess) {
          // Finished before any board told it of the mismatch.
        } else if (comm == nullptr) {
          RVERIFY(res == fcclSuccess, "freeing the communicator returned %s", fcclGetErrorString(res));
        } else {
          std::string err = fcclGetLastError(comm);
          fprintf(stderr, "mismatch_test: rank %d: %.3f s: %s\n", rank, sec, err.c_str());
          RVERIFY(res == expect.code, "%s", describeResult(res, comm).c_str());
          for (const std::string& s : expect.contains)
            RVERIFY(err.find(s) != std::string::npos, "\"%s\" not in: %s", s.c_str(), err.c_str());
          RVERIFY(sec < kMaxDetectSec, "detection took %.3f s", sec);
        }
        if (comm != nullptr) fcclCommAbort(comm);
      },
      60);
  EXPECT_RANKS_OK(r);
}

class Mismatch : public ::testing::TestWithParam<Mode> {};

TEST_P(Mismatch, CountsThatPickDifferentAlgorithms) {
  // 32 B goes direct, 4 MiB goes by the ring: without the boards each would wait on memory the
  // other never writes, until the timeout.
  runCase(2, GetParam(),
          [](fcclComm_t& comm, int rank, std::vector<char>& buf) {
            size_t count = rank == 0 ? 8 : size_t(1) << 20;
            return fcclAllReduce(buf.data(), buf.data(), count, fcclFloat, fcclSum, comm, nullptr);
          },
          {fcclInvalidUsage,
           {"AllReduce #2 (count 8, float, sum, direct)", "AllReduce #2 (count 1048576, float, sum, ring)"}});
}

TEST_P(Mismatch, DatatypesOfTheSameSize) {
  // Same bytes on the wire: caught at the first publication by the call tag, not combined.
  runCase(2, GetParam(),
          [](fcclComm_t& comm, int rank, std::vector<char>& buf) {
            return fcclAllReduce(buf.data(), buf.data(), 4, rank == 0 ? fcclFloat : fcclInt32, fcclSum, comm,
                                 nullptr);
          },
          {fcclInvalidUsage, {"AllReduce #2 (count 4, float, sum", "AllReduce #2 (count 4, int32, sum"}});
}

TEST_P(Mismatch, OpsOnTheRing) {
  runCase(3, GetParam(),
          [](fcclComm_t& comm, int rank, std::vector<char>& buf) {
            return fcclAllReduce(buf.data(), buf.data(), size_t(1) << 20, fcclFloat,
                                 rank == 1 ? fcclMax : fcclSum, comm, nullptr);
          },
          {fcclInvalidUsage, {"(count 1048576, float, max, ring)", "(count 1048576, float, sum, ring)"}});
}

TEST_P(Mismatch, CollectiveKinds) {
  runCase(2, GetParam(),
          [](fcclComm_t& comm, int rank, std::vector<char>& buf) {
            if (rank == 0)
              return fcclAllReduce(buf.data(), buf.data(), 1000, fcclFloat, fcclSum, comm, nullptr);
            return fcclAllGather(buf.data(), buf.data() + 4000, 1000, fcclFloat, comm, nullptr);
          },
          {fcclInvalidUsage, {"AllReduce #2 (count 1000", "AllGather #2 (count 1000"}});
}

TEST_P(Mismatch, BroadcastRoots) {
  // Ranks 0 and 1 take rank 0 for the root and usually finish (rank 1 reads rank 0's data); rank 2
  // takes rank 1 for the root and waits for data rank 1 never publishes.
  runCase(3, GetParam(),
          [](fcclComm_t& comm, int rank, std::vector<char>& buf) {
            return fcclBroadcast(buf.data(), buf.data(), 100, fcclInt8, rank == 2 ? 1 : 0, comm, nullptr);
          },
          {fcclInvalidUsage,
           {"rank 2 called Broadcast #2 (count 100, int8, root 1", "Broadcast #2 (count 100, int8, root 0"},
           {0, 1}});
}

TEST_P(Mismatch, PeerAborted) {
  runCase(2, GetParam(),
          [](fcclComm_t& comm, int rank, std::vector<char>& buf) {
            if (rank == 1) {
              usleep(100 * 1000);
              fcclResult_t res = fcclCommAbort(comm);
              comm = nullptr;
              return res;
            }
            return fcclAllReduce(buf.data(), buf.data(), size_t(1) << 20, fcclFloat, fcclSum, comm, nullptr);
          },
          {fcclRemoteError, {"rank 1 called fcclCommAbort after finishing collective #1"}, {1}});
}

TEST_P(Mismatch, PeerDestroyedItsCommunicator) {
  runCase(2, GetParam(),
          [](fcclComm_t& comm, int rank, std::vector<char>& buf) {
            if (rank == 1) {
              usleep(100 * 1000);
              fcclResult_t res = fcclCommDestroy(comm);
              comm = nullptr;
              return res;
            }
            return fcclAllReduce(buf.data(), buf.data(), 8, fcclFloat, fcclSum, comm, nullptr);
          },
          {fcclRemoteError, {"rank 0: AllReduce #2 stopped", "rank 1 destroyed its communicator"}, {1}});
}

// Two programs whose collectives are alike (one allreduce of N floats): the call board carries
// the program, so the ranks learn they launched different programs.
TEST_P(Mismatch, Programs) {
  runCase(2, GetParam(),
          [](fcclComm_t& comm, int rank, std::vector<char>& buf) {
            const char* source = rank == 0 ? "program descend\n"
                                             "  in  g : f32[N] local\n"
                                             "  inout w : f32[N] replicated\n"
                                             "  w = w - 0.5 * allreduce(sum, g)\n"
                                           : "program ascend\n"
                                             "  in  g : f32[N] local\n"
                                             "  inout w : f32[N] replicated\n"
                                             "  w = w + allreduce(sum, g)\n";
            fcclProgram_t prog = nullptr;
            fcclResult_t res = fcclProgramCreate(&prog, source, rank == 0 ? "descend.fccl" : "ascend.fccl");
            if (res == fcclSuccess) res = fcclProgramCompile(prog, comm, nullptr);
            const size_t n = 100000;
            float* g = reinterpret_cast<float*>(buf.data());
            float* w = g + n;
            fcclTensorBinding_t t[2] = {{"g", g, n}, {"w", w, n}};
            if (res == fcclSuccess) res = fcclProgramLaunch(prog, t, 2, nullptr, 0, nullptr, comm, nullptr);
            fcclProgramDestroy(prog);
            return res;
          },
          {fcclInvalidUsage, {", program descend)", ", program ascend)"}});
}

INSTANTIATE_TEST_SUITE_P(All, Mismatch, ::testing::Values(Mode::Threads, Mode::Processes),
                         [](const ::testing::TestParamInfo<Mode>& info) { return modeName(info.param); });

}  // namespace

// A timeout logs, at FCCL_DEBUG=INFO, every rank's state and last call (which rank is behind and
// where). Runs as its own ctest entry with FCCL_DEBUG=INFO and FCCL_DEBUG_FILE set (the log
// settings are read once per process); skipped otherwise.
TEST(TimeoutDump, NamesEachRanksLastCall) {
  const char* logFile = getenv("FCCL_DEBUG_FILE");
  if (logFile == nullptr || std::string(getenv("FCCL_DEBUG") ? getenv("FCCL_DEBUG") : "") != "INFO")
    GTEST_SKIP() << "needs FCCL_DEBUG=INFO and FCCL_DEBUG_FILE (ctest entry multirank.TimeoutDump)";
  unlink(logFile);
  RunResult r = runRanksRaw(
      3, Mode::Threads,
      [](const fcclUniqueId& id, int rank, int n) {
        fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
        config.timeoutMs = 500;
        fcclComm_t comm = nullptr;
        RCHECK_FCCL(fcclCommInitRankConfig(&comm, n, id, rank, &config), nullptr);
        std::vector<float> buf(size_t(1) << 20, 1.0f);
        RCHECK_FCCL(fcclAllReduce(buf.data(), buf.data(), 16, fcclFloat, fcclSum, comm, nullptr), comm);
        if (rank == 2) {
          usleep(1500 * 1000);  // late: the others give up first
        } else {
          fcclResult_t res =
              fcclAllReduce(buf.data(), buf.data(), buf.size(), fcclFloat, fcclSum, comm, nullptr);
          RVERIFY(res != fcclSuccess);
        }
        fcclCommAbort(comm);
      },
      60);
  EXPECT_RANKS_OK(r);
  FILE* f = fopen(logFile, "r");
  ASSERT_NE(f, nullptr) << logFile;
  std::string log;
  char line[1024];
  while (fgets(line, sizeof(line), f) != nullptr) log += line;
  fclose(f);
  EXPECT_NE(log.find("AllReduce #2: in-flight operations per rank:"), std::string::npos) << log;
  EXPECT_NE(
      log.find("rank 2: running, finished through #1, last call AllReduce #1 (count 16, float, sum, direct)"),
      std::string::npos)
      << log;
  EXPECT_NE(log.find("last call AllReduce #2 (count 1048576, float, sum, ring)"), std::string::npos) << log;
}
