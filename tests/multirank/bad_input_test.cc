// bad_input_test.cc - wrong arguments get the named result code, a last-error sentence that
// names the problem (a keyword such as "recvbuff", "count", "datatype", "op", "root", "peer",
// "rank", "nranks"), and change nothing: pre-filled buffers stay as they were and the
// communicator still works afterwards. Every rank makes the same bad call (where validity
// depends on being root, each rank names itself root), so a wrongly accepted call shows up as
// a failure, not as one rank waiting for another. Init errors, ranks that disagree on nranks
// and a rank with the wrong secret must fail within a short timeout, never hang.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "buffers.h"
#include "coll_check.h"
#include "harness.h"

using namespace fccltest;

namespace {

enum class Api {
  AllReduce,
  Reduce,
  Broadcast,
  ReduceScatter,
  AllGather,
  AlltoAll,
  Send,
  Recv
};
const char* apiName(Api a) {
  static const char* names[] = {"AllReduce", "Reduce",   "Broadcast", "ReduceScatter",
                                "AllGather", "AlltoAll", "Send",      "Recv"};
  return names[(int)a];
}
bool apiReduces(Api a) { return a == Api::AllReduce || a == Api::Reduce || a == Api::ReduceScatter; }
bool apiRooted(Api a) { return a == Api::Reduce || a == Api::Broadcast; }
bool apiP2p(Api a) { return a == Api::Send || a == Api::Recv; }

struct Args {
  const void* send;
  void* recv;
  size_t count;
  fcclDataType_t dt;
  fcclRedOp_t op;
  int root;  // root, or peer for Send/Recv
  fcclComm_t comm;
  fcclStream_t stream;
};

fcclResult_t callApi(Api a, const Args& x) {
  switch (a) {
    case Api::AllReduce:
      return fcclAllReduce(x.send, x.recv, x.count, x.dt, x.op, x.comm, x.stream);
    case Api::Reduce:
      return fcclReduce(x.send, x.recv, x.count, x.dt, x.op, x.root, x.comm, x.stream);
    case Api::Broadcast:
      return fcclBroadcast(x.send, x.recv, x.count, x.dt, x.root, x.comm, x.stream);
    case Api::ReduceScatter:
      return fcclReduceScatter(x.send, x.recv, x.count, x.dt, x.op, x.comm, x.stream);
    case Api::AllGather:
      return fcclAllGather(x.send, x.recv, x.count, x.dt, x.comm, x.stream);
    case Api::AlltoAll:
      return fcclAlltoAll(x.send, x.recv, x.count, x.dt, x.comm, x.stream);
    case Api::Send:
      return fcclSend(x.send, x.count, x.dt, x.root, x.comm, x.stream);
    case Api::Recv:
      return fcclRecv(x.recv, x.count, x.dt, x.root, x.comm, x.stream);
  }
  return fcclInternalError;
}

std::string lower(std::string s) {
  for (char& c : s) c = (char)tolower((unsigned char)c);
  return s;
}

// The last error (of comm, else of the thread) must be a sentence holding one of keywords.
void checkSentence(fcclComm_t comm, const std::vector<const char*>& keywords, const std::string& what) {
  std::string text = std::string(fcclGetLastError(comm)) + " | " + fcclGetLastError(nullptr);
  RCHECK(text.size() > 3 + 8, "%s: empty fcclGetLastError", what.c_str());
  std::string l = lower(text);
  for (const char* k : keywords)
    if (l.find(k) != std::string::npos) return;
  std::string ks;
  for (const char* k : keywords) ks += std::string(" \"") + k + "\"";
  RVERIFY(false, "%s: last error \"%s\" names none of%s", what.c_str(), text.c_str(), ks.c_str());
}

void checkResult(fcclResult_t got, fcclResult_t want, fcclComm_t comm, const std::string& what) {
  RVERIFY(got == want, "%s: returned %s, want %s", what.c_str(), describeResult(got, comm).c_str(),
          fcclGetErrorString(want));
}

constexpr size_t kCount = 16;
constexpr uint8_t kSendByte = 0x3C;

struct BadCase {
  std::string name;
  Api api;
  std::function<void(Args&, char* send, char* recv, int rank, int n)> mutate;
  std::vector<const char*> keywords;
};

std::vector<BadCase> badCases(fcclRedOp_t foreignOp) {
  std::vector<BadCase> cases;
  for (int k = 0; k < 8; ++k) {
    Api a = (Api)k;
    auto add = [&](const char* name, auto mutate, std::vector<const char*> keys) {
      cases.push_back({std::string(apiName(a)) + ": " + name, a, mutate, keys});
    };
    auto selfRoot = [a](Args& x, int rank) {
      if (apiRooted(a)) x.root = rank;
    };
    if (a != Api::Recv)
      add("sendbuff NULL",
          [=](Args& x, char*, char*, int r, int) {
            x.send = nullptr;
            selfRoot(x, r);
          },
          {"sendbuff"});
    if (a != Api::Send)
      add("recvbuff NULL",
          [=](Args& x, char*, char*, int r, int) {
            x.recv = nullptr;
            selfRoot(x, r);
          },
          {"recvbuff"});
    add("count * size overflows", [](Args& x, char*, char*, int, int) { x.count = SIZE_MAX / 2; }, {"count"});
    if (a == Api::ReduceScatter || a == Api::AllGather || a == Api::AlltoAll)
      add("count * nranks overflows",
          [](Args& x, char*, char*, int, int n) { x.count = SIZE_MAX / 4 / n + 1; }, {"count"});
    add("datatype 42", [](Args& x, char*, char*, int, int) { x.dt = (fcclDataType_t)42; },
        {"datatype", "data type"});
    add("datatype -1", [](Args& x, char*, char*, int, int) { x.dt = (fcclDataType_t)-1; },
        {"datatype", "data type"});
    add("comm NULL", [](Args& x, char*, char*, int, int) { x.comm = nullptr; }, {"comm"});
    add("stream not NULL", [](Args& x, char*, char*, int, int) { x.stream = (fcclStream_t)0x1000; },
        {"stream"});
    if (apiReduces(a)) {
      add("op 17 (never created)", [](Args& x, char*, char*, int, int) { x.op = (fcclRedOp_t)17; }, {"op"});
      add("op fcclNumOps (never created)", [](Args& x, char*, char*, int, int) { x.op = fcclNumOps; },
          {"op"});
      add("op -1", [](Args& x, char*, char*, int, int) { x.op = (fcclRedOp_t)-1; }, {"op"});
      add("premulsum op of another datatype", [=](Args& x, char*, char*, int, int) { x.op = foreignOp; },
          {"op", "datatype"});
    }
    if (apiRooted(a)) {
      add("root = nranks", [](Args& x, char*, char*, int, int n) { x.root = n; }, {"root"});
      add("root = -1", [](Args& x, char*, char*, int, int) { x.root = -1; }, {"root"});
    }
    if (apiP2p(a)) {
      add("peer = nranks", [](Args& x, char*, char*, int, int n) { x.root = n; }, {"peer"});
      add("peer = -1", [](Args& x, char*, char*, int, int) { x.root = -1; }, {"peer"});
    }
    if (a == Api::AlltoAll) {
      add("in place (sendbuff == recvbuff)", [](Args& x, char*, char* recv, int, int) { x.send = recv; },
          {"overlap", "in place", "in-place"});
      add("overlapping by one element",
          [](Args& x, char*, char* recv, int, int) { x.send = recv + sizeof(float); },
          {"overlap", "in place", "in-place"});
    }
  }
  return cases;
}

class BadArgs : public ::testing::TestWithParam<Mode> {};

TEST_P(BadArgs, RejectedWithSentenceAndNothingWritten) {
  RunResult r = runRanks(
      2, GetParam(),
      [](fcclComm_t comm, int rank, int n) {
        double scalar = 2.0;    // a float64 op reads 8 bytes of it (a float overflowed: ASan)
        fcclRedOp_t foreignOp;  // created for float64; the calls below use float32
        RCHECK_FCCL(fcclRedOpCreatePreMulSum(&foreignOp, &scalar, fcclFloat64, fcclScalarHostImmediate, comm),
                    comm);
        // Big enough for every collective's blocks (and the overlap cases, which point into recv).
        const size_t bytes = kCount * sizeof(float) * n;
        for (const BadCase& bc : badCases(foreignOp)) {
          noteProgress(bc.name);
          GuardedBuf send(bytes, 0), recv(bytes, 0);
          send.fill(kSendByte);
          recv.fill(kUnwrittenByte);
          Args x{send.data(), recv.data(), kCount, fcclFloat32, fcclSum, 0, comm, nullptr};
          if (apiP2p(bc.api)) x.root = (rank + 1) % n;
          bc.mutate(x, send.data(), recv.data(), rank, n);
          fcclResult_t res = callApi(bc.api, x);
          checkResult(res, fcclInvalidArgument, x.comm, bc.name);
          if (res != fcclSuccess) checkSentence(x.comm, bc.keywords, bc.name);
          long bad = 0;
          bool sendOk = true, recvOk = true;
          for (size_t i = 0; i < bytes; ++i) sendOk &= (uint8_t)send.data()[i] == kSendByte;
          for (size_t i = 0; i < bytes; ++i) recvOk &= (uint8_t)recv.data()[i] == kUnwrittenByte;
          RVERIFY(sendOk && recvOk && send.guardsIntact(&bad) && recv.guardsIntact(&bad),
                  "%s: a rejected call wrote to a buffer (sendbuff %s, recvbuff %s)", bc.name.c_str(),
                  sendOk ? "intact" : "changed", recvOk ? "intact" : "changed");
        }
        // A bad call inside a group is refused at the call or at fcclGroupEnd, and runs nothing.
        {
          GuardedBuf send(kCount * 4, 0), recv(kCount * 4, 0);
          recv.fill(kUnwrittenByte);
          RCHECK_FCCL(fcclGroupStart(), comm);
          fcclResult_t inGroup =
              fcclAllReduce(send.data(), recv.data(), kCount, (fcclDataType_t)42, fcclSum, comm, nullptr);
          fcclResult_t end = fcclGroupEnd();
          RVERIFY(inGroup == fcclInvalidArgument || end == fcclInvalidArgument,
                  "bad datatype inside a group: call -> %d, fcclGroupEnd -> %d", (int)inGroup, (int)end);
          for (size_t i = 0; i < kCount * 4; ++i)
            RCHECK((uint8_t)recv.data()[i] == kUnwrittenByte, "bad call inside a group wrote recvbuff");
        }
        RCHECK_FCCL(fcclRedOpDestroy(foreignOp, comm), comm);
        // Nothing was broken: a good collective still runs.
        CollCase good;
        good.count = 1000;
        runCollCase(good, comm, rank, n);
      },
      60, 5000);
  EXPECT_RANKS_OK(r);
}

INSTANTIATE_TEST_SUITE_P(Modes, BadArgs, ::testing::Values(Mode::Threads, Mode::Processes),
                         [](const auto& info) { return std::string(modeName(info.param)); });

// ---- Init ----------------------------------------------------------------------------

TEST(BadInit, RankAndNranksOutOfRange) {
  RunResult r = runRanksRaw(
      1, Mode::Threads,
      [](const fcclUniqueId& id, int, int) {
        struct {
          int nranks, rank;
          const char* key;
        } cases[] = {{2, 2, "rank"}, {2, -1, "rank"}, {0, 0, "nranks"}, {-1, 0, "nranks"}, {1, 1, "rank"}};
        for (const auto& c : cases) {
          fcclComm_t comm = nullptr;
          std::string what = strf("fcclCommInitRank(nranks=%d, rank=%d)", c.nranks, c.rank);
          fcclResult_t res = fcclCommInitRank(&comm, c.nranks, id, c.rank);
          checkResult(res, fcclInvalidArgument, nullptr, what);
          if (res == fcclSuccess)
            fcclCommDestroy(comm);
          else
            checkSentence(nullptr, {c.key}, what);
        }
        fcclResult_t res = fcclCommInitRank(nullptr, 1, id, 0);
        checkResult(res, fcclInvalidArgument, nullptr, "fcclCommInitRank(comm=NULL)");
        fcclComm_t comms[2];
        checkResult(fcclCommInitAll(comms, 0, nullptr), fcclInvalidArgument, nullptr,
                    "fcclCommInitAll(ndev=0)");
        checkResult(fcclCommInitAll(nullptr, 2, nullptr), fcclInvalidArgument, nullptr,
                    "fcclCommInitAll(comms=NULL)");
        fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
        config.magic = 0;
        fcclComm_t comm = nullptr;
        res = fcclCommInitRankConfig(&comm, 1, id, 0, &config);
        checkResult(res, fcclInvalidArgument, nullptr, "fcclCommInitRankConfig(config.magic=0)");
        if (res == fcclSuccess)
          fcclCommDestroy(comm);
        else
          checkSentence(nullptr, {"config"}, "fcclCommInitRankConfig(config.magic=0)");
      },
      20);
  EXPECT_RANKS_OK(r);
}

TEST(BadInit, CorruptedUniqueId) {
  RunResult r = runRanksRaw(
      1, Mode::Threads,
      [](const fcclUniqueId& good, int, int) {
        fcclUniqueId id = good;
        for (int i = 0; i < 8; ++i) id.internal[i] ^= (char)0xff;  // the magic
        fcclComm_t comm = nullptr;
        fcclResult_t res = fcclCommInitRank(&comm, 1, id, 0);
        checkResult(res, fcclInvalidArgument, nullptr, "fcclCommInitRank with a corrupted unique id");
        if (res == fcclSuccess)
          fcclCommDestroy(comm);
        else
          checkSentence(nullptr, {"unique id", "uniqueid", "magic", "corrupt"}, "corrupted unique id");
      },
      20);
  EXPECT_RANKS_OK(r);
}

double secondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

class BadJoin : public ::testing::TestWithParam<Mode> {};

// Rank 0 says nranks=2, rank 1 says 3: the root refuses whichever comes second
// (fcclInvalidUsage) and the other gives up at its 2 s timeout. Neither may hang.
TEST_P(BadJoin, RanksDisagreeOnNranks) {
  RunResult r = runRanksRaw(
      2, GetParam(),
      [](const fcclUniqueId& id, int rank, int) {
        fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
        config.timeoutMs = 2000;
        fcclComm_t comm = nullptr;
        auto start = std::chrono::steady_clock::now();
        fcclResult_t res = fcclCommInitRankConfig(&comm, rank == 0 ? 2 : 3, id, rank, &config);
        double secs = secondsSince(start);
        RVERIFY(secs < 10, "returned after %.1f s with a 2 s timeout", secs);
        if (res == fcclSuccess) {
          fcclCommDestroy(comm);
          RCHECK(false, "init succeeded although the ranks disagree on nranks");
        }
        // Report what each rank got; the test below requires one fcclInvalidUsage naming nranks.
        std::string text = fcclGetLastError(nullptr);
        if (res == fcclInvalidUsage && lower(text).find("nranks") != std::string::npos)
          recordFailure(__FILE__, __LINE__, "EXPECTED: " + describeResult(res, nullptr));
        else
          recordFailure(__FILE__, __LINE__, "OTHER: " + describeResult(res, nullptr));
      },
      30);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.report.find("EXPECTED: invalid usage"), std::string::npos)
      << "no rank got fcclInvalidUsage naming nranks:\n"
      << r.report;
  EXPECT_EQ(r.report.find("check failed"), std::string::npos) << r.report;
  EXPECT_EQ(r.report.find("did not finish"), std::string::npos) << r.report;
}

// The byte that differs last between two fresh ids lies in the secret (the id is magic, root
// address, then a random 32-byte secret; two roots differ in port and secret only), so
// flipping it changes the secret and nothing else, whatever the address's size.
size_t lastSecretByte() {
  fcclUniqueId a, b;
  if (fcclGetUniqueId(&a) != fcclSuccess || fcclGetUniqueId(&b) != fcclSuccess) return 0;
  size_t last = 0;
  for (size_t i = 0; i < FCCL_UNIQUE_ID_BYTES; ++i)
    if (a.internal[i] != b.internal[i]) last = i;
  return last;
}

// Rank 2 holds the id with a wrong secret: the root closes its connection, so its init fails
// (fcclRemoteError "connection closed", see src/bootstrap_root.cc; fcclSystemError on a reset;
// fcclInvalidUsage if the root answers). Ranks 0 and 1 never see rank 2 and give up at
// their 2 s timeout with an error. Nobody hangs and nobody succeeds.
TEST_P(BadJoin, WrongSecret) {
  size_t pos = lastSecretByte();
  ASSERT_GE(pos, 8u + 32u) << "could not locate the secret in the unique id";
  RunResult r = runRanksRaw(
      3, GetParam(),
      [pos](const fcclUniqueId& good, int rank, int n) {
        fcclUniqueId id = good;
        if (rank == 2) id.internal[pos] ^= 0x5a;
        fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
        config.timeoutMs = 2000;
        fcclComm_t comm = nullptr;
        auto start = std::chrono::steady_clock::now();
        fcclResult_t res = fcclCommInitRankConfig(&comm, n, id, rank, &config);
        double secs = secondsSince(start);
        RVERIFY(secs < 10, "returned after %.1f s with a 2 s timeout", secs);
        if (res == fcclSuccess) {
          fcclCommDestroy(comm);
          RCHECK(false, "init succeeded although rank 2 has the wrong secret");
        }
        if (rank == 2)
          RVERIFY(res == fcclRemoteError || res == fcclSystemError || res == fcclInvalidUsage,
                  "wrong secret gave %s", describeResult(res, nullptr).c_str());
        RVERIFY(strlen(fcclGetLastError(nullptr)) > 0, "no sentence for %d", (int)res);
      },
      30);
  EXPECT_RANKS_OK(r);
}

INSTANTIATE_TEST_SUITE_P(Modes, BadJoin, ::testing::Values(Mode::Threads, Mode::Processes),
                         [](const auto& info) { return std::string(modeName(info.param)); });

}  // namespace
