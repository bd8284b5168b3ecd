// pipeline_test.cc - fcclAllReduceSendSliced / fcclRecvAllGather across two communicators: the
// world splits into 2 stages x tp tensor-parallel ranks (tp comm: color = stage, pp comm:
// color = tp index). Stage 0 allreduces its inputs and sends the slices; stage 1 must hold the
// exact allreduce (integer-valued inputs, so any reduction order gives the same bits). Also:
// a receiver with the wrong count gets a sentence, not a hang, and both comms stay usable;
// argument checks.
#include <gtest/gtest.h>
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "harness.h"

using namespace fccltest;

namespace {

struct Stage {
  fcclComm_t tp = nullptr, pp = nullptr;
  int stage = 0, tpRank = 0, tpSize = 0;
};

// Splits the world (2 stages of n/2 ranks); records a failure and returns false on error.
bool splitStages(fcclComm_t world, int rank, int nranks, Stage* s) {
  const int tp = nranks / 2;
  s->stage = rank / tp;
  s->tpRank = rank % tp;
  s->tpSize = tp;
  RCHECK_FCCL_RET(false, fcclCommSplit(world, s->stage, s->tpRank, &s->tp, nullptr), world);
  RCHECK_FCCL_RET(false, fcclCommSplit(world, s->tpRank, s->stage, &s->pp, nullptr), world);
  return true;
}

void destroy(Stage& s) {
  RVERIFY(fcclCommDestroy(s.tp) == fcclSuccess);
  RVERIFY(fcclCommDestroy(s.pp) == fcclSuccess);
}

// Stage-0 tp rank i's element j: small integers of both signs.
int input(int i, size_t j) { return int((j * 7 + size_t(i) * 13 + size_t(i) * j % 5) % 101) - 50; }

template <class T>
T expected(size_t j, int n, fcclRedOp_t op) {
  T acc = T(input(0, j));
  for (int i = 1; i < n; ++i) acc = op == fcclMax ? std::max(acc, T(input(i, j))) : T(acc + T(input(i, j)));
  if (op == fcclAvg) acc = T(acc / T(n));
  return acc;
}

template <class T>
void exchange(const Stage& s, size_t count, fcclDataType_t type, fcclRedOp_t op) {
  noteProgress(strf("count %zu type %d op %d", count, int(type), int(op)));
  const int peer = 1 - s.stage;
  if (s.stage == 0) {
    std::vector<T> in(count);
    for (size_t j = 0; j < count; ++j) in[j] = T(input(s.tpRank, j));
    RCHECK_FCCL(fcclAllReduceSendSliced(in.data(), count, type, op, peer, s.tp, s.pp, nullptr), s.tp);
    return;
  }
  std::vector<T> out(count + 1, T(-999));
  RCHECK_FCCL(fcclRecvAllGather(out.data(), count, type, peer, s.tp, s.pp, nullptr), s.tp);
  size_t bad = 0;
  for (size_t j = 0; j < count; ++j)
    if (out[j] != expected<T>(j, s.tpSize, op) && bad++ < 3)
      RVERIFY(false, "count %zu op %d: element %zu is %g, want %g", count, int(op), j, double(out[j]),
              double(expected<T>(j, s.tpSize, op)));
  RVERIFY(bad == 0, "count %zu op %d: %zu wrong elements", count, int(op), bad);
  RVERIFY(out[count] == T(-999), "count %zu: wrote past the end", count);
}

class Pipeline : public ::testing::TestWithParam<int> {};

TEST_P(Pipeline, MatchesAllReduce) {
  RunResult r = runRanks(GetParam(), Mode::Threads, [](fcclComm_t world, int rank, int nranks) {
    Stage s;
    if (!splitStages(world, rank, nranks, &s)) return;
    for (size_t count : {size_t(0), size_t(1), size_t(7), size_t(1000), size_t(65537)}) {
      for (fcclRedOp_t op : {fcclSum, fcclMax, fcclAvg}) {
        exchange<float>(s, count, fcclFloat32, op);
        if (op != fcclAvg) exchange<int32_t>(s, count, fcclInt32, op);
      }
    }
    destroy(s);
  });
  EXPECT_RANKS_OK(r);
}

// A receiver whose count differs from the sender's fails with a sentence on every receiving
// rank, at once (the header; slice sizes alone can agree: 1000 vs 1001 elements on 2 tp ranks
// gives tp rank 1 500 elements either way); afterwards both stages go on with a correct
// exchange on the same communicators.
TEST_P(Pipeline, MismatchedCountIsAnError) {
  RunResult r = runRanks(
      GetParam(), Mode::Threads,
      [](fcclComm_t world, int rank, int nranks) {
        Stage s;
        if (!splitStages(world, rank, nranks, &s)) return;
        const size_t count = 1000;
        if (s.stage == 0) {
          std::vector<float> in(count, 1.0f);
          RCHECK_FCCL(fcclAllReduceSendSliced(in.data(), count, fcclFloat32, fcclSum, 1, s.tp, s.pp, nullptr),
                      s.tp);
        } else {
          std::vector<float> out(count + 1);
          fcclResult_t res = fcclRecvAllGather(out.data(), count + 1, fcclFloat32, 0, s.tp, s.pp, nullptr);
          RCHECK(res == fcclInvalidUsage, "got %s", describeResult(res, s.tp).c_str());
          std::string text = fcclGetLastError(nullptr);
          RVERIFY(
              text.find("count 1000") != std::string::npos && text.find("count 1001") != std::string::npos,
              "error text: %s", text.c_str());
        }
        exchange<float>(s, 777, fcclFloat32, fcclSum);
        destroy(s);
      },
      kDefaultTimeoutSec, 10000);
  EXPECT_RANKS_OK(r);
}

TEST_P(Pipeline, ArgumentChecks) {
  RunResult r = runRanks(GetParam(), Mode::Threads, [](fcclComm_t world, int rank, int nranks) {
    Stage s;
    if (!splitStages(world, rank, nranks, &s)) return;
    float buf[4] = {};
    const int peer = 1 - s.stage;
    auto expectError = [&](fcclResult_t res, fcclResult_t want, const char* needle) {
      std::string text = fcclGetLastError(nullptr);
      RVERIFY(res == want && text.find(needle) != std::string::npos, "got %d (%s), want %d mentioning '%s'",
              int(res), text.c_str(), int(want), needle);
    };
    expectError(fcclAllReduceSendSliced(nullptr, 4, fcclFloat32, fcclSum, peer, s.tp, s.pp, nullptr),
                fcclInvalidArgument, "sendbuff is NULL");
    expectError(fcclRecvAllGather(nullptr, 4, fcclFloat32, peer, s.tp, s.pp, nullptr), fcclInvalidArgument,
                "recvbuff is NULL");
    expectError(fcclAllReduceSendSliced(buf, 4, fcclDataType_t(99), fcclSum, peer, s.tp, s.pp, nullptr),
                fcclInvalidArgument, "datatype 99");
    expectError(fcclAllReduceSendSliced(buf, 4, fcclFloat32, fcclRedOp_t(77), peer, s.tp, s.pp, nullptr),
                fcclInvalidArgument, "op 77");
    expectError(fcclAllReduceSendSliced(buf, 4, fcclFloat32, fcclSum, 2, s.tp, s.pp, nullptr),
                fcclInvalidArgument, "peer 2 is out of range");
    expectError(fcclRecvAllGather(buf, 4, fcclFloat32, -1, s.tp, s.pp, nullptr), fcclInvalidArgument,
                "peer -1 is out of range");
    expectError(fcclAllReduceSendSliced(buf, 4, fcclFloat32, fcclSum, peer, nullptr, s.pp, nullptr),
                fcclInvalidArgument, "tpComm is NULL");
    expectError(fcclRecvAllGather(buf, 4, fcclFloat32, peer, s.tp, nullptr, nullptr), fcclInvalidArgument,
                "ppComm is NULL");
    expectError(fcclRecvAllGather(buf, 4, fcclFloat32, peer, s.tp, s.tp, nullptr), fcclInvalidArgument,
                "different communicators");
    expectError(fcclAllReduceSendSliced(buf, 4, fcclFloat32, fcclSum, peer, s.tp, s.pp, fcclStream_t(buf)),
                fcclInvalidArgument, "stream must be NULL");
    RCHECK(fcclGroupStart() == fcclSuccess);
    expectError(fcclRecvAllGather(buf, 4, fcclFloat32, peer, s.tp, s.pp, nullptr), fcclInvalidUsage,
                "fcclGroupStart");
    RCHECK(fcclGroupEnd() == fcclSuccess);
    exchange<int32_t>(s, 5, fcclInt32, fcclSum);  // nothing above broke the communicators
    destroy(s);
  });
  EXPECT_RANKS_OK(r);
}

// 2 ranks: a tp of one (the reduce-scatter is a copy); 4: 2 stages x 2 tp ranks;
// 6: 2 stages x 3 (uneven slices).
INSTANTIATE_TEST_SUITE_P(Stages, Pipeline, ::testing::Values(2, 4, 6),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "tp" + std::to_string(info.param / 2);
                         });

}  // namespace
