// peer_death_test.cc - a rank whose process exits mid-job is detected: the other ranks' pending
// collective returns fcclRemoteError naming the dead rank within about a second (not the
// communicator's 30 s timeout), and the survivors can build a new communicator among
// themselves and use it. Processes only: a rank that is a thread of this process cannot die alone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "harness.h"

using namespace fccltest;

namespace {

constexpr int kDeadRank = 2;
constexpr int kCommTimeoutMs = 30000;
constexpr double kMaxDetectSec = 2.0;

void deadPeerCase(size_t count) {
  RunResult r = runRanksRaw(
      3, Mode::Processes,
      [count](const fcclUniqueId& id, int rank, int nranks) {
        fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
        config.timeoutMs = kCommTimeoutMs;
        fcclComm_t comm = nullptr;
        RCHECK_FCCL(fcclCommInitRankConfig(&comm, nranks, id, rank, &config), nullptr);
        // Every rank is up and in step before one of them leaves; rank 0 hands out the id of the
        // survivors' second communicator on the way (created after the harness forked: see
        // tests/harness/harness.cc on fork and threads).
        std::vector<float> small(64, 1.0f);
        RCHECK_FCCL(
            fcclAllReduce(small.data(), small.data(), small.size(), fcclFloat, fcclSum, comm, nullptr), comm);
        fcclUniqueId id2{};
        if (rank == 0) RCHECK_FCCL(fcclGetUniqueId(&id2), nullptr);
        RCHECK_FCCL(fcclBroadcast(&id2, &id2, sizeof(id2), fcclInt8, 0, comm, nullptr), comm);
        if (rank == kDeadRank) _exit(0);  // gone without a word, instead of calling the collective

        std::vector<float> buf(count, 1.0f);
        auto t0 = std::chrono::steady_clock::now();
        fcclResult_t res = fcclAllReduce(buf.data(), buf.data(), count, fcclFloat, fcclSum, comm, nullptr);
        double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::string err = fcclGetLastError(comm);
        fprintf(stderr, "peer_death_test: rank %d: count %zu: detected in %.3f s: %s\n", rank, count, sec,
                err.c_str());
        RVERIFY(res == fcclRemoteError, "%s", describeResult(res, comm).c_str());
        RVERIFY(err.find("peer rank 2") != std::string::npos, "last error: %s", err.c_str());
        RVERIFY(sec < kMaxDetectSec, "detection took %.3f s", sec);
        // The broken communicator refuses further work, then goes away.
        RVERIFY(fcclAllReduce(small.data(), small.data(), small.size(), fcclFloat, fcclSum, comm, nullptr) !=
                fcclSuccess);
        RCHECK_FCCL(fcclCommAbort(comm), nullptr);

        // The survivors start over.
        fcclComm_t comm2 = nullptr;
        RCHECK_FCCL(fcclCommInitRankConfig(&comm2, 2, id2, rank, &config), nullptr);
        std::vector<float> v(count);
        for (size_t i = 0; i < count; ++i) v[i] = float(rank + 1) + float(i % 7);
        RCHECK_FCCL(fcclAllReduce(v.data(), v.data(), count, fcclFloat, fcclSum, comm2, nullptr), comm2);
        size_t bad = 0;
        for (size_t i = 0; i < count; ++i) bad += v[i] != 3.0f + 2.0f * float(i % 7);
        RVERIFY(bad == 0, "%zu wrong elements after the survivors' allreduce", bad);
        RCHECK_FCCL(fcclCommDestroy(comm2), nullptr);
      },
      60);
  EXPECT_RANKS_OK(r);
}

}  // namespace

TEST(PeerDeath, SmallAllReduceReturnsRemoteError) { deadPeerCase(1024); }

TEST(PeerDeath, LargeAllReduceReturnsRemoteError) { deadPeerCase(size_t(16) << 20); }  // 64 MiB
