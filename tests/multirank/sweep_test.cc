// sweep_test.cc - the correctness sweep: every collective x dtype x op x in/out-of-place x
// count x nranks {1,2,3,4,8} x ranks as threads and as processes, verified against exact
// references (tests/harness/coll_check.h). Communicator setup is the slow part, so each
// (nranks, mode, part) is one test with one communicator that loops over its cases:
//   small: the full matrix (7 collectives x 10 dtypes x 5 ops x counts {0,1,7,1023} x in/out)
//   mid:   count 65537 for every collective x dtype (sum; float32 also prod/max/min/avg)
//   large: (1<<20)+3 for float32 and int32 sum on every collective
// (with 8 ranks on 2 cores, mid and large keep a subset: see buildCases).
// FCCLTEST_SWEEP_TIMING=1 prints rank 0's time per case.
// AlltoAll and SendRecv have no in-place form (bad_input_test checks in-place AlltoAll is
// refused). A call that returns an error is recorded and the sweep goes on (an error that
// every rank sees, e.g. an unsupported dtype, keeps the ranks in step and lists every case).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "coll_check.h"
#include "dtypes.h"
#include "harness.h"

using namespace fccltest;

namespace {

enum class Part {
  Small,
  Mid,
  Large
};

const fcclRedOp_t kOps[] = {fcclSum, fcclProd, fcclMax, fcclMin, fcclAvg};
const Coll kColls[] = {Coll::AllReduce, Coll::Reduce,   Coll::Broadcast, Coll::ReduceScatter,
                       Coll::AllGather, Coll::AlltoAll, Coll::SendRecv};

// Appends c (out-of-place and, where the collective has one, in-place) with a root and
// Reduce's NULL-recvbuff-off-root variant rotating over the case index.
void addBoth(std::vector<CollCase>* cases, CollCase c, int nranks) {
  for (int inPlace = 0; inPlace < 2; ++inPlace) {
    if (inPlace && !collSupportsInPlace(c.coll)) continue;
    CollCase k = c;
    size_t idx = cases->size();
    k.inPlace = inPlace;
    k.seed = idx + 1;
    k.root = collHasRoot(c.coll) ? (int)(idx % nranks) : 0;
    k.nullNonRootRecv = c.coll == Coll::Reduce && !inPlace && idx % 2 == 1;
    cases->push_back(k);
  }
}

std::vector<CollCase> buildCases(Part part, int nranks) {
  std::vector<CollCase> cases;
  if (part == Part::Small) {
    for (Coll coll : kColls) {
      for (fcclDataType_t dt : kAllDtypes) {
        for (fcclRedOp_t op : kOps) {
          if (!collReduces(coll) && op != fcclSum) continue;
          for (size_t count : {0, 1, 7, 1023}) {
            CollCase c;
            c.coll = coll;
            c.dt = dt;
            c.op = op;
            c.count = count;
            addBoth(&cases, c, nranks);
          }
        }
      }
    }
    return cases;
  }
  // 8 ranks share 2 cores: there the large counts keep one dtype per element width (mid) and
  // int32 only for AllReduce (large), which keeps the sweep within its time budget.
  const bool crowded = nranks >= 8;
  for (Coll coll : kColls) {
    if (part == Part::Mid) {
      for (fcclDataType_t dt : kAllDtypes) {
        if (crowded && dt != fcclInt8 && dt != fcclFloat16 && dt != fcclFloat32 && dt != fcclUint64) continue;
        for (fcclRedOp_t op : kOps) {
          if (op != fcclSum && (!collReduces(coll) || dt != fcclFloat32)) continue;
          if (op != fcclSum && crowded && coll != Coll::AllReduce) continue;
          CollCase c;
          c.coll = coll;
          c.dt = dt;
          c.op = op;
          c.count = 65537;
          addBoth(&cases, c, nranks);
        }
      }
      continue;
    }
    for (fcclDataType_t dt : {fcclFloat32, fcclInt32}) {
      if (crowded && dt == fcclInt32 && coll != Coll::AllReduce) continue;
      CollCase c;
      c.coll = coll;
      c.dt = dt;
      c.count = (1 << 20) + 3;
      addBoth(&cases, c, nranks);
    }
  }
  return cases;
}

constexpr int kMaxCallErrors = 20;

using SweepParam = std::tuple<int, Mode, Part>;

class Sweep : public ::testing::TestWithParam<SweepParam> {};

TEST_P(Sweep, MatchesReference) {
  auto [nranks, mode, part] = GetParam();
  RunResult r = runRanks(
      nranks, mode,
      [part](fcclComm_t comm, int rank, int n) {
        std::vector<CollCase> cases = buildCases(part, n);
        int errors = 0;
        const bool timing = rank == 0 && getenv("FCCLTEST_SWEEP_TIMING") != nullptr;
        for (const CollCase& c : cases) {
          auto start = std::chrono::steady_clock::now();
          bool called = runCollCase(c, comm, rank, n);
          if (timing) {
            fprintf(
                stderr, "%8.1f ms  %s\n",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count(),
                c.describe(n).c_str());
          }
          if (!called && ++errors >= kMaxCallErrors) {
            RCHECK(false, "%d calls returned errors; stopping the sweep", errors);
          }
        }
      },
      180);
  EXPECT_TRUE(r.ok) << "nranks=" << nranks << " mode=" << modeName(mode) << "\n" << r.report;
}

std::string paramName(const ::testing::TestParamInfo<SweepParam>& info) {
  auto [nranks, mode, part] = info.param;
  return strf("N%d_%s_%s", nranks, modeName(mode),
              part == Part::Small ? "small"
              : part == Part::Mid ? "mid"
                                  : "large");
}

INSTANTIATE_TEST_SUITE_P(All, Sweep,
                         ::testing::Combine(::testing::Values(1, 2, 3, 4, 8),
                                            ::testing::Values(Mode::Threads, Mode::Processes),
                                            ::testing::Values(Part::Small, Part::Mid, Part::Large)),
                         paramName);

}  // namespace

// A rank that destroyed its communicator and exited while the others still run is not a dead
// peer (fcclCommDestroy is local, as in NCCL). Regression test: the dead-peer check's liveness
// window used to count any exited peer process as dead, which failed the sweep's last case
// (SendRecv on a ring, where a rank is done once its two neighbours are) at random, nearly always
// under ASan. Rank 2 leaves at once; rank 1 receives 300 ms late, so rank 0's send waits in the
// slow path, whose liveness window finds rank 2's process gone.
TEST(EarlyExit, RankThatDestroyedItsCommIsNotADeadPeer) {
  RunResult r = runRanksRaw(
      3, Mode::Processes,
      [](const fcclUniqueId& id, int rank, int nranks) {
        fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
        config.timeoutMs = 20000;
        fcclComm_t comm = nullptr;
        RCHECK_FCCL(fcclCommInitRankConfig(&comm, nranks, id, rank, &config), nullptr);
        std::vector<float> small(64, 1.0f);
        RCHECK_FCCL(
            fcclAllReduce(small.data(), small.data(), small.size(), fcclFloat, fcclSum, comm, nullptr), comm);
        if (rank == 2) {
          RCHECK_FCCL(fcclCommDestroy(comm), nullptr);
          _exit(0);  // done with its part: leaves while ranks 0 and 1 still talk
        }
        const size_t count = size_t(4) << 20;  // 16 MiB: many times the FIFO's depth
        std::vector<float> buf(count, float(rank + 1));
        if (rank == 0) {
          RCHECK_FCCL(fcclSend(buf.data(), count, fcclFloat, 1, comm, nullptr), comm);
        } else {
          usleep(300 * 1000);
          RCHECK_FCCL(fcclRecv(buf.data(), count, fcclFloat, 0, comm, nullptr), comm);
          size_t bad = 0;
          for (float v : buf) bad += v != 1.0f;
          RVERIFY(bad == 0, "%zu wrong elements received", bad);
        }
        RCHECK_FCCL(fcclCommDestroy(comm), nullptr);
      },
      60);
  EXPECT_RANKS_OK(r);
}
