// abort_test.cc - fcclCommAbort from another thread unblocks a rank stuck in a call whose peer
// never takes part (AllReduce, a fused program launch, a Send without a Recv): the call returns
// a non-success code within kMaxAbortLatencySec of the abort, with a text that says it was
// aborted, and the peer that did not take part learns of the abort promptly (its next call
// fails naming rank 0, long before its timeout). fcclCommGetAsyncError: fcclInProgress while a
// non-blocking init runs, then fcclSuccess; the error after a failed (timed out) collective;
// fcclSuccess on a healthy communicator. Threads and forked processes.
//
// Sequencing across ranks is by time (processes share no memory): rank 0 is aborted
// kAbortAfterMs into its blocked call; rank 1 calls only kPeerCallAfterMs after init.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <functional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

using namespace fccltest;

namespace fccltest {
// GoogleTest prints a Mode parameter by name (readable ctest entry names).
inline void PrintTo(Mode m, std::ostream* os) { *os << modeName(m); }
}  // namespace fccltest

namespace {

constexpr int kCommTimeoutMs = 30000;  // far beyond every bound checked here
constexpr int kAbortAfterMs = 300;
constexpr int kPeerCallAfterMs = 1500;
constexpr double kMaxAbortLatencySec = 1.0;
constexpr double kMaxPeerNoticeSec = 2.0;

double secondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return (char)std::tolower(c); });
  return s;
}

// Rank 0 calls `call` (which must not complete: rank 1 takes no part yet) while a helper thread
// aborts rank 0's communicator kAbortAfterMs later. Rank 1 then makes the matching call (the
// same collective, the Recv of the Send, ...), which must fail promptly naming rank 0 (it
// aborted), and destroys its communicator.
using BlockedCall = std::function<fcclResult_t(fcclComm_t comm, int rank)>;
using Prepare = std::function<void(fcclComm_t comm, int rank)>;  // before the blocked call, both ranks
using Cleanup = std::function<void(int rank)>;                   // after, both ranks

void abortCase(Mode mode, const char* what, const BlockedCall& blocked, const Prepare& prepare = nullptr,
               const Cleanup& cleanup = nullptr) {
  RunResult rr = runRanksRaw(
      2, mode,
      [&](const fcclUniqueId& id, int rank, int nranks) {
        fcclComm_t comm = initRankComm(id, rank, nranks, kCommTimeoutMs, "abort_test");
        if (!comm) return;
        auto t0 = std::chrono::steady_clock::now();
        if (prepare) prepare(comm, rank);
        if (rank == 1) {
          // Never takes part in rank 0's call; then finds out that rank 0 aborted.
          std::this_thread::sleep_until(t0 + std::chrono::milliseconds(kPeerCallAfterMs));
          auto t1 = std::chrono::steady_clock::now();
          fcclResult_t r = blocked(comm, rank);
          double sec = secondsSince(t1);
          std::string text = fcclGetLastError(comm);
          fprintf(stderr,
                  "abort_test [%s, %s]: rank 1: its call after rank 0's abort returned %d in %.3f s: %s\n",
                  what, modeName(mode), (int)r, sec, text.c_str());
          RVERIFY(r != fcclSuccess, "the peer of an aborted rank completed its %s", what);
          RVERIFY(sec < kMaxPeerNoticeSec, "the peer noticed rank 0's abort only after %.3f s", sec);
          RVERIFY(text.find("rank 0") != std::string::npos, "text does not name rank 0: %s", text.c_str());
          fcclResult_t async = fcclSuccess;
          RVERIFY(fcclCommGetAsyncError(comm, &async) == fcclSuccess);
          RVERIFY(async != fcclSuccess && async != fcclInProgress, "async error %d after the failure",
                  (int)async);
          if (cleanup) cleanup(rank);
          RVERIFY(fcclCommDestroy(comm) == fcclSuccess);
          return;
        }
        std::atomic<int64_t> abortNs{0};
        std::atomic<int> abortRes{-1};
        std::thread aborter([&] {
          std::this_thread::sleep_for(std::chrono::milliseconds(kAbortAfterMs));
          abortNs.store(std::chrono::steady_clock::now().time_since_epoch().count());
          abortRes.store(fcclCommAbort(comm));
        });
        fcclResult_t r = blocked(comm, rank);
        int64_t returnNs = std::chrono::steady_clock::now().time_since_epoch().count();
        // The comm is freed by the abort: only the thread's own last error may be read now.
        std::string text = fcclGetLastError(nullptr);
        aborter.join();
        double latency = double(returnNs - abortNs.load()) * 1e-9;
        fprintf(stderr, "abort_test [%s, %s]: rank 0: returned %d %.3f ms after fcclCommAbort: %s\n", what,
                modeName(mode), (int)r, latency * 1e3, text.c_str());
        RVERIFY(abortNs.load() != 0 && returnNs >= abortNs.load(),
                "%s returned before the abort (result %d: %s)", what, (int)r, text.c_str());
        RVERIFY(r != fcclSuccess, "%s returned fcclSuccess although it was aborted", what);
        RVERIFY(latency < kMaxAbortLatencySec, "%s returned %.3f s after the abort", what, latency);
        RVERIFY(lower(text).find("abort") != std::string::npos, "text does not say aborted: %s",
                text.c_str());
        RVERIFY(abortRes.load() == fcclSuccess, "fcclCommAbort returned %d", abortRes.load());
        if (cleanup) cleanup(rank);
      },
      60);
  EXPECT_RANKS_OK(rr);
}

class Abort : public ::testing::TestWithParam<Mode> {};

TEST_P(Abort, UnblocksAllReduceWhosePeerNeverCalls) {
  std::vector<float> buf[2] = {std::vector<float>(1 << 16, 1.0f), std::vector<float>(1 << 16, 1.0f)};
  abortCase(GetParam(), "AllReduce", [&](fcclComm_t comm, int rank) {
    return fcclAllReduce(buf[rank].data(), buf[rank].data(), buf[rank].size(), fcclFloat, fcclSum, comm,
                         nullptr);
  });
}

// A send completes once its data is in the peer's FIFO (NCCL's eager behaviour: a Send of up to
// the FIFO's size returns without a Recv), so this one is far larger than any FIFO.
TEST_P(Abort, UnblocksSendWithoutRecv) {
  constexpr size_t kCount = size_t(16) << 20;  // 64 MiB of float
  // One buffer per rank: with ranks as threads, a shared one would be a race to TSan.
  std::vector<float> buf[2] = {std::vector<float>(kCount, 1.0f), std::vector<float>(kCount)};
  abortCase(GetParam(), "Send", [&](fcclComm_t comm, int rank) {
    if (rank == 0) return fcclSend(buf[0].data(), kCount, fcclFloat, 1, comm, nullptr);
    return fcclRecv(buf[1].data(), kCount, fcclFloat, 0, comm, nullptr);
  });
}

// 4 MiB each way, more than the FIFO (8 slots of 128 KiB by default) holds: neither rank's
// group can complete from what the other left in the FIFO before the abort.
TEST_P(Abort, UnblocksGroupedSendRecv) {
  constexpr size_t kCount = size_t(1) << 20;
  std::vector<float> a[2] = {std::vector<float>(kCount, 1.0f), std::vector<float>(kCount, 1.0f)};
  std::vector<float> b[2] = {std::vector<float>(kCount), std::vector<float>(kCount)};
  abortCase(GetParam(), "group Send+Recv", [&](fcclComm_t comm, int rank) {
    fcclResult_t r = fcclGroupStart();
    if (r != fcclSuccess) return r;
    fcclResult_t s = fcclSend(a[rank].data(), kCount, fcclFloat, 1 - rank, comm, nullptr);
    fcclResult_t q = fcclRecv(b[rank].data(), kCount, fcclFloat, 1 - rank, comm, nullptr);
    r = fcclGroupEnd();
    return r != fcclSuccess ? r : (s != fcclSuccess ? s : q);
  });
}

// An allreduce followed by pointwise work: the fused schedule's reduce-scatter blocks first.
const char* const kProgram =
    "program scaled_sum\n"
    "  in  g : f32[N] local\n"
    "  inout w : f32[N] replicated\n"
    "  scalar lr : f32\n"
    "  w = w - lr * allreduce(sum, g)\n";

TEST_P(Abort, UnblocksFusedProgramLaunch) {
  constexpr size_t kN = 1 << 15;
  // Per rank state (threads mode shares this object; index by rank).
  fcclProgram_t progs[2] = {nullptr, nullptr};
  std::vector<float> g(kN, 1.0f), w[2] = {std::vector<float>(kN, 1.0f), std::vector<float>(kN, 1.0f)};
  abortCase(
      GetParam(), "fcclProgramLaunch",
      [&](fcclComm_t comm, int rank) {
        fcclTensorBinding_t t[2] = {{"g", g.data(), kN}, {"w", w[rank].data(), kN}};
        fcclScalarBinding_t s[1] = {{"lr", 0.5}};
        return fcclProgramLaunch(progs[rank], t, 2, s, 1, nullptr, comm, nullptr);
      },
      [&](fcclComm_t comm, int rank) {
        fcclResult_t r = fcclProgramCreate(&progs[rank], kProgram, "scaled_sum.fccl");
        const char* log = "";
        if (progs[rank]) fcclProgramGetLog(progs[rank], &log);
        RVERIFY(r == fcclSuccess, "fcclProgramCreate: %s\n%s", describeResult(r, nullptr).c_str(), log);
        r = fcclProgramCompile(progs[rank], comm, nullptr);
        RVERIFY(r == fcclSuccess, "fcclProgramCompile: %s", describeResult(r, comm).c_str());
      },
      [&](int rank) {
        if (progs[rank]) RVERIFY(fcclProgramDestroy(progs[rank]) == fcclSuccess);
        progs[rank] = nullptr;
      });
}

INSTANTIATE_TEST_SUITE_P(Modes, Abort, ::testing::Values(Mode::Threads, Mode::Processes),
                         [](const ::testing::TestParamInfo<Mode>& i) {
                           return std::string(modeName(i.param));
                         });

// ---- fcclCommGetAsyncError ----------------------------------------------------------------

class AsyncError : public ::testing::TestWithParam<Mode> {};

// Non-blocking init: fcclInProgress until rank 1 (which starts late) has joined, then
// fcclSuccess; the communicator then works and stays fcclSuccess.
TEST_P(AsyncError, InProgressDuringNonBlockingInitThenSuccess) {
  RunResult rr = runRanksRaw(
      2, GetParam(),
      [](const fcclUniqueId& id, int rank, int nranks) {
        fcclComm_t comm = nullptr;
        if (rank == 1) {
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
          comm = initRankComm(id, rank, nranks, kCommTimeoutMs, "abort_test");
          if (!comm) return;
        } else {
          fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
          config.timeoutMs = kCommTimeoutMs;
          config.blocking = 0;
          fcclResult_t r = fcclCommInitRankConfig(&comm, nranks, id, rank, &config);
          RCHECK(r == fcclInProgress || r == fcclSuccess, "%s", describeResult(r, nullptr).c_str());
          RCHECK(comm != nullptr);
          fcclResult_t async = fcclNumResults;
          RCHECK_FCCL(fcclCommGetAsyncError(comm, &async), comm);
          // Rank 1 joins only 500 ms from now: init cannot be done yet.
          RVERIFY(async == fcclInProgress, "async error %d right after a non-blocking init", (int)async);
          auto t0 = std::chrono::steady_clock::now();
          int polls = 0;
          while (async == fcclInProgress && secondsSince(t0) < 20) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            RCHECK_FCCL(fcclCommGetAsyncError(comm, &async), comm);
            ++polls;
          }
          RCHECK(async == fcclSuccess, "async error %d after %.3f s (%d polls): %s", (int)async,
                 secondsSince(t0), polls, fcclGetLastError(comm));
          RVERIFY(polls > 0, "init finished before rank 1 joined?");
        }
        std::vector<int32_t> v(1000);
        for (size_t i = 0; i < v.size(); ++i) v[i] = int32_t(i) * (rank + 1);
        RCHECK_FCCL(fcclAllReduce(v.data(), v.data(), v.size(), fcclInt32, fcclSum, comm, nullptr), comm);
        for (size_t i = 0; i < v.size(); ++i) {
          RVERIFY(v[i] == int32_t(i) * 3, "element %zu: %d", i, v[i]);
          if (v[i] != int32_t(i) * 3) break;
        }
        fcclResult_t async = fcclNumResults;
        RCHECK_FCCL(fcclCommGetAsyncError(comm, &async), comm);
        RVERIFY(async == fcclSuccess, "async error %d on a healthy communicator", (int)async);
        RVERIFY(fcclCommDestroy(comm) == fcclSuccess);
      },
      60);
  EXPECT_RANKS_OK(rr);
}

// A collective that times out (rank 1 never calls it): the call's error is what
// fcclCommGetAsyncError reports afterwards, and the communicator refuses further work.
TEST_P(AsyncError, ReportsTheErrorOfAFailedCollective) {
  constexpr int kShortTimeoutMs = 500;
  RunResult rr = runRanksRaw(
      2, GetParam(),
      [](const fcclUniqueId& id, int rank, int nranks) {
        fcclComm_t comm = initRankComm(id, rank, nranks, kShortTimeoutMs, "abort_test");
        if (!comm) return;
        std::vector<float> v(4096, 1.0f);
        RCHECK_FCCL(fcclAllReduce(v.data(), v.data(), v.size(), fcclFloat, fcclSum, comm, nullptr), comm);
        fcclResult_t async = fcclNumResults;
        RCHECK_FCCL(fcclCommGetAsyncError(comm, &async), comm);
        RVERIFY(async == fcclSuccess, "async error %d on a healthy communicator", (int)async);
        if (rank == 0) {
          auto t0 = std::chrono::steady_clock::now();
          fcclResult_t r = fcclAllReduce(v.data(), v.data(), v.size(), fcclFloat, fcclSum, comm, nullptr);
          double sec = secondsSince(t0);
          std::string text = fcclGetLastError(comm);
          fprintf(stderr, "abort_test [timeout, %s]: rank 0: returned %d after %.3f s: %s\n",
                  modeName(GetParam()), (int)r, sec, text.c_str());
          RVERIFY(r != fcclSuccess, "an AllReduce whose peer never called succeeded");
          RVERIFY(sec >= kShortTimeoutMs * 1e-3 * 0.9 && sec < 10, "gave up after %.3f s", sec);
          RCHECK_FCCL(fcclCommGetAsyncError(comm, &async), comm);
          RVERIFY(async == r, "fcclCommGetAsyncError %d, the call returned %d", (int)async, (int)r);
          RVERIFY(
              fcclAllReduce(v.data(), v.data(), v.size(), fcclFloat, fcclSum, comm, nullptr) != fcclSuccess,
              "a failed communicator accepted another collective");
          RCHECK_FCCL(fcclCommGetAsyncError(comm, &async), comm);
          RVERIFY(async == r, "async error changed to %d", (int)async);
        } else {
          // Stays away until rank 0 has given up (and destroys without calling).
          std::this_thread::sleep_for(std::chrono::milliseconds(kShortTimeoutMs * 3));
        }
        RVERIFY(fcclCommDestroy(comm) == fcclSuccess);
      },
      60);
  EXPECT_RANKS_OK(rr);
}

INSTANTIATE_TEST_SUITE_P(Modes, AsyncError, ::testing::Values(Mode::Threads, Mode::Processes),
                         [](const ::testing::TestParamInfo<Mode>& i) {
                           return std::string(modeName(i.param));
                         });

}  // namespace
