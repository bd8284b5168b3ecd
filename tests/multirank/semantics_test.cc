// semantics_test.cc - what the sweep does not cover: unaligned user pointers, the
// fcclRedOpCreatePreMulSum scalar (immediate: read once at creation; "device": read at each
// collective, a host pointer here), the communicator queries, version and error strings, and
// that with ranks as threads a transfer orders the sender's earlier writes to ordinary memory
// before the receiver's later reads (the check that counts runs under ThreadSanitizer).
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "coll_check.h"
#include "dtypes.h"
#include "harness.h"

using namespace fccltest;

namespace {

class Semantics : public ::testing::TestWithParam<Mode> {};

const Coll kColls[] = {Coll::AllReduce, Coll::Reduce,   Coll::Broadcast, Coll::ReduceScatter,
                       Coll::AllGather, Coll::AlltoAll, Coll::SendRecv};

// Pointers 1 byte past alignment for int8, one element past it otherwise, and float32 also at
// odd byte offsets (1 and 3): host collectives must not assume vector alignment.
TEST_P(Semantics, UnalignedBuffers) {
  struct Shift {
    fcclDataType_t dt;
    size_t bytes;
  };
  const Shift shifts[] = {{fcclInt8, 1},    {fcclUint8, 1},  {fcclFloat16, 2}, {fcclBfloat16, 2},
                          {fcclInt32, 4},   {fcclUint64, 8}, {fcclFloat64, 8}, {fcclFloat32, 4},
                          {fcclFloat32, 1}, {fcclFloat32, 3}};
  RunResult r = runRanks(3, GetParam(), [&](fcclComm_t comm, int rank, int n) {
    uint64_t seed = 1;
    for (Coll coll : kColls) {
      for (const Shift& s : shifts) {
        for (size_t count : {7, 65537}) {
          for (int inPlace = 0; inPlace < 2; ++inPlace) {
            if (inPlace && !collSupportsInPlace(coll)) continue;
            for (fcclRedOp_t op : {fcclSum, fcclMax}) {
              if (op == fcclMax && (!collReduces(coll) || s.bytes % 4 == 0)) continue;
              CollCase c;
              c.coll = coll;
              c.dt = s.dt;
              c.op = op;
              c.count = count;
              c.inPlace = inPlace;
              c.byteOffset = s.bytes;
              c.root = (int)(seed % n);
              c.seed = seed++;
              runCollCase(c, comm, rank, n);
            }
          }
        }
      }
    }
  });
  EXPECT_RANKS_OK(r);
}

// Stores v as the type's scalar (the bytes fcclRedOpCreatePreMulSum reads).
void setScalar(fcclDataType_t dt, void* scalar, double v) { storeDouble(dt, scalar, 0, v); }

TEST_P(Semantics, PreMulSumMatchesReference) {
  RunResult r =
      runRanks(GetParam() == Mode::Threads ? 3 : 2, GetParam(), [](fcclComm_t comm, int rank, int n) {
        uint64_t seed = 100;
        for (fcclDataType_t dt : {fcclFloat32, fcclFloat64, fcclFloat16}) {
          for (fcclScalarResidence_t res : {fcclScalarHostImmediate, fcclScalarDevice}) {
            alignas(8) unsigned char scalar[8] = {};
            setScalar(dt, scalar, 0.5);
            fcclRedOp_t op;
            RCHECK_FCCL(fcclRedOpCreatePreMulSum(&op, scalar, dt, res, comm), comm);
            RVERIFY((int)op >= (int)fcclNumOps, "created op %d collides with a built-in op", (int)op);
            // Immediate: the value was read at creation, so 3.0 written now must not be used.
            // Device: the pointer is read at each collective, so the second round uses 3.0.
            for (int round = 0; round < 2; ++round) {
              double expected = (round == 1 && res == fcclScalarDevice) ? 3.0 : 0.5;
              for (Coll coll : {Coll::AllReduce, Coll::Reduce, Coll::ReduceScatter}) {
                for (size_t count : {1, 1023, 65537}) {
                  CollCase c;
                  c.coll = coll;
                  c.dt = dt;
                  c.op = op;
                  c.count = count;
                  c.inPlace = count == 1023;
                  c.root = (int)(seed % n);
                  c.seed = seed++;
                  c.preMul = true;
                  c.preMulScalar = expected;
                  runCollCase(c, comm, rank, n);
                }
              }
              setScalar(dt, scalar, 3.0);
            }
            RCHECK_FCCL(fcclRedOpDestroy(op, comm), comm);
          }
        }
      });
  EXPECT_RANKS_OK(r);
}

TEST_P(Semantics, CommQueries) {
  RunResult r =
      runRanks(GetParam() == Mode::Threads ? 3 : 2, GetParam(), [](fcclComm_t comm, int rank, int n) {
        int v = -7;
        RCHECK_FCCL(fcclCommCount(comm, &v), comm);
        RVERIFY(v == n, "fcclCommCount gave %d, want %d", v, n);
        RCHECK_FCCL(fcclCommUserRank(comm, &v), comm);
        RVERIFY(v == rank, "fcclCommUserRank gave %d, want %d", v, rank);
        RCHECK_FCCL(fcclCommCuDevice(comm, &v), comm);
        RVERIFY(v == -1, "fcclCommCuDevice gave %d, want -1 for host ranks", v);
        fcclResult_t async = fcclInternalError;
        RCHECK_FCCL(fcclCommGetAsyncError(comm, &async), comm);
        RVERIFY(async == fcclSuccess, "fresh communicator has async error %d", (int)async);
        CollCase c;
        c.count = 3;
        runCollCase(c, comm, rank, n);
        RCHECK_FCCL(fcclCommGetAsyncError(comm, &async), comm);
        RVERIFY(async == fcclSuccess, "async error %d after a good AllReduce", (int)async);
        // count 0: nothing is read or written, so NULL buffers are fine (as in NCCL).
        RVERIFY(fcclAllReduce(nullptr, nullptr, 0, fcclFloat32, fcclSum, comm, nullptr) == fcclSuccess,
                "AllReduce count 0 with NULL buffers: %s", fcclGetLastError(comm));
        RVERIFY(fcclAllGather(nullptr, nullptr, 0, fcclInt8, comm, nullptr) == fcclSuccess,
                "AllGather count 0 with NULL buffers: %s", fcclGetLastError(comm));
        RCHECK_FCCL(fcclCommFinalize(comm), comm);
      });
  EXPECT_RANKS_OK(r);
}

INSTANTIATE_TEST_SUITE_P(Modes, Semantics, ::testing::Values(Mode::Threads, Mode::Processes),
                         [](const auto& info) { return std::string(modeName(info.param)); });

// A rank's writes before a Send (or before its contribution to an AllReduce) happen before the
// receiver's reads after the matching call returns, as between threads joined by a mutex.
// Each transfer path once: small and large Send/Recv (one FIFO slot, many), small and large
// AllReduce (direct, ring). Under ThreadSanitizer (scripts/tsan.sh) this fails if the
// transport's release/acquire pairs are invisible to it, as they were while each thread-rank
// mapped its peers' shm segments at its own addresses.
TEST(ThreadRanks, TransfersOrderEarlierWritesToOrdinaryMemory) {
  constexpr int kRanks = 3;
  constexpr size_t kLarge = size_t(4) << 20;
  std::vector<int> plain(64 * kRanks, 0);  // written by each rank in turn, never atomically
  RunResult r = runRanks(kRanks, Mode::Threads, [&](fcclComm_t comm, int rank, int n) {
    std::vector<char> buf(kLarge, 1), in(kLarge);
    int round = 0;
    auto writeMine = [&] {
      ++round;
      for (int i = 0; i < 64; ++i) plain[size_t(64 * rank + i)] = round * 1000 + rank;
    };
    auto expectFrom = [&](int peer) {
      for (int i = 0; i < 64; ++i)
        RVERIFY(plain[size_t(64 * peer + i)] == round * 1000 + peer, "round %d: rank %d's write not seen",
                round, peer);
    };
    for (size_t bytes : {size_t(64), kLarge}) {
      writeMine();
      const int next = (rank + 1) % n, prev = (rank + n - 1) % n;
      RCHECK_FCCL(fcclGroupStart(), comm);
      RCHECK_FCCL(fcclSend(buf.data(), bytes, fcclInt8, next, comm, nullptr), comm);
      RCHECK_FCCL(fcclRecv(in.data(), bytes, fcclInt8, prev, comm, nullptr), comm);
      RCHECK_FCCL(fcclGroupEnd(), comm);
      expectFrom(prev);
      // Nobody writes again until every rank has read: one more collective orders the rounds.
      RCHECK_FCCL(fcclAllReduce(buf.data(), buf.data(), 1, fcclInt8, fcclMax, comm, nullptr), comm);
    }
    for (size_t count : {size_t(16), kLarge / 4}) {
      writeMine();
      RCHECK_FCCL(fcclAllReduce(buf.data(), buf.data(), count, fcclFloat, fcclMax, comm, nullptr), comm);
      for (int p = 0; p < n; ++p) expectFrom(p);
      RCHECK_FCCL(fcclAllReduce(buf.data(), buf.data(), 1, fcclInt8, fcclMax, comm, nullptr), comm);
    }
  });
  EXPECT_RANKS_OK(r);
}

TEST(Version, MatchesHeader) {
  int v = -1;
  ASSERT_EQ(fcclGetVersion(&v), fcclSuccess);
  EXPECT_EQ(v, FCCL_VERSION_CODE);
  EXPECT_EQ(FCCL_VERSION_CODE, FCCL_MAJOR * 10000 + FCCL_MINOR * 100 + FCCL_PATCH);
  EXPECT_EQ(fcclGetVersion(nullptr), fcclInvalidArgument);
}

TEST(ErrorStrings, EveryCodeHasItsOwnSentence) {
  std::set<std::string> seen;
  for (int c = 0; c < fcclNumResults; ++c) {
    const char* s = fcclGetErrorString((fcclResult_t)c);
    ASSERT_NE(s, nullptr) << c;
    EXPECT_GT(strlen(s), 0u) << c;
    EXPECT_TRUE(seen.insert(s).second) << "duplicate string for " << c << ": " << s;
  }
  const char* unknown = fcclGetErrorString((fcclResult_t)99);
  ASSERT_NE(unknown, nullptr);
  EXPECT_GT(strlen(unknown), 0u);
  ASSERT_NE(fcclGetLastError(nullptr), nullptr);
}

}  // namespace
