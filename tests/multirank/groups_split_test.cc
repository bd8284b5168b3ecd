// groups_split_test.cc - groups (p2p mixed with collectives, nesting, all-pairs exchange),
// two communicators driven concurrently by two threads of each rank and mixed in one group,
// fcclCommSplit (colors, key order, FCCL_SPLIT_NOCOLOR), and fcclCommInitAll with one thread
// driving every rank through one group (NCCL's single-process multi-device pattern).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "coll_check.h"
#include "harness.h"

using namespace fccltest;

namespace {

CollCase makeCase(Coll coll, fcclDataType_t dt, fcclRedOp_t op, size_t count, uint64_t seed, int root = 0) {
  CollCase c;
  c.coll = coll;
  c.dt = dt;
  c.op = op;
  c.count = count;
  c.seed = seed;
  c.root = root;
  return c;
}

// Issues every run inside one group (nested one level when `nested`), then verifies them.
void groupAndVerify(std::vector<std::unique_ptr<CollRun>>& runs, const std::vector<fcclComm_t>& comms,
                    bool nested) {
  RCHECK_FCCL(fcclGroupStart(), nullptr);
  for (size_t k = 0; k < runs.size(); ++k) {
    if (nested && k == runs.size() / 2) RCHECK_FCCL(fcclGroupStart(), nullptr);
    fcclResult_t r = runs[k]->issue(comms[k]);
    RVERIFY(r == fcclSuccess, "call %zu in the group -> %s", k, describeResult(r, comms[k]).c_str());
    if (nested && k == runs.size() - 1) RCHECK_FCCL(fcclGroupEnd(), nullptr);
  }
  RCHECK_FCCL(fcclGroupEnd(), nullptr);
  for (auto& run : runs) run->verify();
}

using GroupParam = std::tuple<int, Mode>;
class Groups : public ::testing::TestWithParam<GroupParam> {};

TEST_P(Groups, SendRecvMixedWithCollectives) {
  auto [nranks, mode] = GetParam();
  RunResult r = runRanks(nranks, mode, [](fcclComm_t comm, int rank, int n) {
    for (int nested = 0; nested < 2; ++nested) {
      std::vector<CollCase> cases = {
          makeCase(Coll::SendRecv, fcclFloat32, fcclSum, 1023, 1),
          makeCase(Coll::AllReduce, fcclInt32, fcclSum, 7, 2),
          makeCase(Coll::Broadcast, fcclFloat64, fcclSum, 65537, 3, n - 1),
          makeCase(Coll::SendRecv, fcclUint8, fcclSum, 70001, 4),
          makeCase(Coll::AllReduce, fcclBfloat16, fcclMax, 4099, 5),
      };
      std::vector<std::unique_ptr<CollRun>> runs;
      for (CollCase& c : cases) {
        noteProgress("group: " + c.describe(n));
        runs.push_back(std::make_unique<CollRun>(c, rank, n));
      }
      groupAndVerify(runs, std::vector<fcclComm_t>(runs.size(), comm), nested);
    }
  });
  EXPECT_RANKS_OK(r);
}

// Every rank sends a distinct block to every rank (itself included) in one group.
TEST_P(Groups, AllPairsExchange) {
  auto [nranks, mode] = GetParam();
  RunResult r = runRanks(nranks, mode, [](fcclComm_t comm, int rank, int n) {
    const size_t count = 3001;
    auto value = [](int src, int dst, size_t i) { return (int32_t)(src * 1000003 + dst * 7919 + (int)i); };
    std::vector<std::vector<int32_t>> out(n), in(n);
    RCHECK_FCCL(fcclGroupStart(), comm);
    for (int p = 0; p < n; ++p) {
      out[p].resize(count);
      in[p].assign(count, -1);
      for (size_t i = 0; i < count; ++i) out[p][i] = value(rank, p, i);
      RVERIFY(fcclSend(out[p].data(), count, fcclInt32, p, comm, nullptr) == fcclSuccess, "send to %d", p);
      RVERIFY(fcclRecv(in[p].data(), count, fcclInt32, p, comm, nullptr) == fcclSuccess, "recv from %d", p);
    }
    RCHECK_FCCL(fcclGroupEnd(), comm);
    for (int p = 0; p < n; ++p) {
      size_t bad = 0;
      for (size_t i = 0; i < count; ++i) bad += in[p][i] != value(p, rank, i);
      RVERIFY(bad == 0, "%zu of %zu elements from rank %d wrong (first: %d, want %d)", bad, count, p,
              (int)in[p][0], (int)value(p, rank, 0));
    }
  });
  EXPECT_RANKS_OK(r);
}

// Two communicators over the same ranks: each rank drives them from two threads at once, then
// mixes both in one group.
TEST_P(Groups, TwoCommunicatorsConcurrently) {
  auto [nranks, mode] = GetParam();
  RunResult r = runRanksRaw(nranks, mode, [](const fcclUniqueId& id1, int rank, int n) {
    fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
    config.timeoutMs = 30000;
    fcclComm_t c1 = nullptr, c2 = nullptr;
    RCHECK_FCCL(fcclCommInitRankConfig(&c1, n, id1, rank, &config), nullptr);
    // The second id travels over the first communicator, as users pass ids around (not
    // created before the harness forks: see tests/harness/harness.cc on fork and threads).
    fcclUniqueId id2{};
    if (rank == 0) RCHECK_FCCL(fcclGetUniqueId(&id2), nullptr);
    RCHECK_FCCL(fcclBroadcast(&id2, &id2, sizeof(id2), fcclInt8, 0, c1, nullptr), c1);
    RCHECK_FCCL(fcclCommInitRankConfig(&c2, n, id2, rank, &config), nullptr);
    std::thread t1 = rankThread([&] {
      for (int k = 0; k < 20; ++k)
        runCollCase(makeCase(Coll::AllReduce, fcclFloat32, fcclSum, 1023 + 997 * k, 10 + k), c1, rank, n);
    });
    std::thread t2 = rankThread([&] {
      for (int k = 0; k < 20; ++k) {
        Coll coll = k % 2 ? Coll::AllGather : Coll::Broadcast;
        runCollCase(makeCase(coll, fcclInt8, fcclSum, 777 * k + 1, 50 + k, k % n), c2, rank, n);
      }
    });
    t1.join();
    t2.join();
    std::vector<std::unique_ptr<CollRun>> runs;
    runs.push_back(
        std::make_unique<CollRun>(makeCase(Coll::AllReduce, fcclFloat64, fcclSum, 5000, 90), rank, n));
    runs.push_back(
        std::make_unique<CollRun>(makeCase(Coll::ReduceScatter, fcclInt64, fcclMin, 300, 91), rank, n));
    runs.push_back(
        std::make_unique<CollRun>(makeCase(Coll::SendRecv, fcclFloat16, fcclSum, 999, 92), rank, n));
    runs.push_back(std::make_unique<CollRun>(makeCase(Coll::SendRecv, fcclInt32, fcclSum, 998, 93), rank, n));
    groupAndVerify(runs, {c1, c2, c1, c2}, false);
    RVERIFY(fcclCommDestroy(c1) == fcclSuccess);
    RVERIFY(fcclCommDestroy(c2) == fcclSuccess);
  });
  EXPECT_RANKS_OK(r);
}

// Split into even/odd ranks with the key reversing the order; then FCCL_SPLIT_NOCOLOR on rank
// 0; collectives on every new communicator (the two halves run at the same time).
TEST_P(Groups, CommSplit) {
  auto [nranks, mode] = GetParam();
  RunResult r = runRanks(nranks, mode, [](fcclComm_t comm, int rank, int n) {
    fcclComm_t half = nullptr;
    fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
    config.timeoutMs = 30000;
    RCHECK_FCCL(fcclCommSplit(comm, rank % 2, n - rank, &half, &config), comm);
    RCHECK(half != nullptr, "split with a color gave NULL");
    std::vector<int> members;  // old ranks by new rank: same parity, descending (key = n - rank)
    for (int q = n - 1; q >= 0; --q)
      if (q % 2 == rank % 2) members.push_back(q);
    int cnt = -1, me = -1;
    RCHECK_FCCL(fcclCommCount(half, &cnt), half);
    RCHECK_FCCL(fcclCommUserRank(half, &me), half);
    int want = (int)(std::find(members.begin(), members.end(), rank) - members.begin());
    RCHECK(cnt == (int)members.size() && me == want, "split: count %d rank %d, want %zu and %d", cnt, me,
           members.size(), want);
    std::vector<int32_t> olds(cnt, -1);
    int32_t mine = rank;
    RCHECK_FCCL(fcclAllGather(&mine, olds.data(), 1, fcclInt32, half, nullptr), half);
    for (int j = 0; j < cnt; ++j)
      RVERIFY(olds[j] == members[j], "new rank %d is old rank %d, want %d", j, olds[j], members[j]);
    runCollCase(makeCase(Coll::AllReduce, fcclFloat32, fcclSum, 65537, 7), half, me, cnt);
    runCollCase(makeCase(Coll::ReduceScatter, fcclInt32, fcclProd, 100, 8), half, me, cnt);
    runCollCase(makeCase(Coll::Broadcast, fcclUint64, fcclSum, 1000, 9, cnt - 1), half, me, cnt);

    fcclComm_t rest = nullptr;
    RCHECK_FCCL(fcclCommSplit(comm, rank == 0 ? FCCL_SPLIT_NOCOLOR : 3, rank, &rest, nullptr), comm);
    if (rank == 0) {
      RVERIFY(rest == nullptr, "FCCL_SPLIT_NOCOLOR gave a communicator");
    } else {
      RCHECK(rest != nullptr, "split with color 3 gave NULL");
      RCHECK_FCCL(fcclCommCount(rest, &cnt), rest);
      RCHECK_FCCL(fcclCommUserRank(rest, &me), rest);
      RVERIFY(cnt == n - 1 && me == rank - 1, "NOCOLOR split: count %d rank %d", cnt, me);
      runCollCase(makeCase(Coll::AllGather, fcclFloat16, fcclSum, 513, 11), rest, me, cnt);
      RVERIFY(fcclCommDestroy(rest) == fcclSuccess);
    }
    runCollCase(makeCase(Coll::AllReduce, fcclInt8, fcclMax, 4096, 12), comm, rank, n);  // parent still works
    RVERIFY(fcclCommDestroy(half) == fcclSuccess);
  });
  EXPECT_RANKS_OK(r);
}

INSTANTIATE_TEST_SUITE_P(All, Groups,
                         ::testing::Values(GroupParam{2, Mode::Threads}, GroupParam{3, Mode::Threads},
                                           GroupParam{4, Mode::Threads}, GroupParam{5, Mode::Threads},
                                           GroupParam{3, Mode::Processes}, GroupParam{4, Mode::Processes}),
                         [](const auto& info) {
                           return strf("N%d_%s", std::get<0>(info.param), modeName(std::get<1>(info.param)));
                         });

// fcclCommInitAll: n ranks as threads of this process, and one thread drives all of them by
// issuing one call per communicator inside a single group, as with NCCL on several devices.
// This only works if fcclGroupEnd runs each communicator's work in parallel (a rank's
// collective cannot finish before its peers' start), which this test requires.
class InitAll : public ::testing::TestWithParam<int> {};

TEST_P(InitAll, OneThreadDrivesAllRanksInAGroup) {
  const int n = GetParam();
  RunResult r = runRanksRaw(1, Mode::Threads, [n](const fcclUniqueId&, int, int) {
    std::vector<fcclComm_t> comms(n, nullptr);
    RCHECK_FCCL(fcclCommInitAll(comms.data(), n, nullptr), nullptr);
    for (int i = 0; i < n; ++i) {
      int cnt = -1, rk = -1;
      RVERIFY(fcclCommCount(comms[i], &cnt) == fcclSuccess && cnt == n, "comms[%d] count %d", i, cnt);
      RVERIFY(fcclCommUserRank(comms[i], &rk) == fcclSuccess && rk == i, "comms[%d] rank %d", i, rk);
    }
    const CollCase cases[] = {
        makeCase(Coll::AllReduce, fcclFloat32, fcclSum, 65537, 1),
        makeCase(Coll::Broadcast, fcclInt8, fcclSum, 1023, 2, n - 1),
        makeCase(Coll::AllGather, fcclFloat16, fcclSum, 7, 3),
        makeCase(Coll::ReduceScatter, fcclBfloat16, fcclMax, 1023, 4),
        makeCase(Coll::Reduce, fcclInt64, fcclProd, 333, 5, 1 % n),
        makeCase(Coll::SendRecv, fcclInt64, fcclSum, 33, 6),
        makeCase(Coll::AlltoAll, fcclUint32, fcclSum, 100, 7),
    };
    for (const CollCase& c : cases) {
      noteProgress("InitAll group: " + c.describe(n));
      std::vector<std::unique_ptr<CollRun>> runs;
      for (int i = 0; i < n; ++i) runs.push_back(std::make_unique<CollRun>(c, i, n));
      groupAndVerify(runs, comms, false);
    }
    for (fcclComm_t c : comms) RVERIFY(fcclCommDestroy(c) == fcclSuccess);
  });
  EXPECT_RANKS_OK(r);
}

INSTANTIATE_TEST_SUITE_P(Ranks, InitAll, ::testing::Values(1, 2, 4),
                         [](const auto& info) { return strf("N%d", info.param); });

}  // namespace
