// bad_input_test.cc - wrong arguments get the named result code, and the message of the
// failing call (fcclGetLastError right after it) starts with that call's name and names the
// argument with its bad value ("datatype 42", "op 17", "root 2", "sendbuff is NULL"; whole words,
// so "op 1" does not match "op 17"); and they change nothing: pre-filled buffers stay as they were
// and the communicator still works afterwards. Every rank makes the same bad call (where validity
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

// Whether `phrase` occurs in text as whole words: not glued to a letter, digit or '_' on
// either side ("op 1" is not in "op 17", "count" is not in "account").
bool hasWords(const std::string& text, const std::string& phrase) {
  auto word = [](char c) { return isalnum((unsigned char)c) || c == '_'; };
  for (size_t at = text.find(phrase); at != std::string::npos; at = text.find(phrase, at + 1)) {
    bool left = at == 0 || !word(text[at - 1]) || !word(phrase.front());
    size_t end = at + phrase.size();
    bool right = end == text.size() || !word(text[end]) || !word(phrase.back());
    if (left && right) return true;
  }
  return false;
}

// The message of the call that just failed: it must start with "<api>:" and hold every one of
// `phrases` as whole words.
void checkSentence(fcclComm_t comm, const std::string& api, const std::vector<std::string>& phrases,
                   const std::string& what) {
  std::string text = fcclGetLastError(comm);
  RVERIFY(text.rfind(api + ":", 0) == 0, "%s: the last error does not start with \"%s:\": \"%s\"",
          what.c_str(), api.c_str(), text.c_str());
  for (const std::string& p : phrases)
    RVERIFY(hasWords(text, p), "%s: the last error \"%s\" does not name \"%s\"", what.c_str(), text.c_str(),
            p.c_str());
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
  // What the message must name, given nranks (the bad values of root and peer depend on it).
  std::function<std::vector<std::string>(int n)> phrases;
};

std::vector<BadCase> badCases(fcclRedOp_t foreignOp) {
  std::vector<BadCase> cases;
  using Phrases = std::vector<std::string>;
  auto fixed = [](Phrases p) { return [p](int) { return p; }; };
  const std::string huge = std::to_string(SIZE_MAX / 2);
  for (int k = 0; k < 8; ++k) {
    Api a = (Api)k;
    auto add = [&](const char* name, auto mutate, std::function<Phrases(int)> phrases) {
      cases.push_back({std::string(apiName(a)) + ": " + name, a, mutate, phrases});
    };
    auto selfRoot = [a](Args& x, int rank) {
      if (apiRooted(a)) x.root = rank;
    };
    if (a != Api::Recv)
      add(
          "sendbuff NULL",
          [=](Args& x, char*, char*, int r, int) {
            x.send = nullptr;
            selfRoot(x, r);
          },
          fixed({"sendbuff is NULL"}));
    if (a != Api::Send)
      add(
          "recvbuff NULL",
          [=](Args& x, char*, char*, int r, int) {
            x.recv = nullptr;
            selfRoot(x, r);
          },
          fixed({"recvbuff is NULL"}));
    add(
        "count * size overflows", [](Args& x, char*, char*, int, int) { x.count = SIZE_MAX / 2; },
        fixed({"count " + huge, "overflows"}));
    if (a == Api::ReduceScatter || a == Api::AllGather || a == Api::AlltoAll)
      add(
          "count * nranks overflows",
          [](Args& x, char*, char*, int, int n) { x.count = SIZE_MAX / 4 / n + 1; },
          [](int n) {
            return Phrases{"count " + std::to_string(SIZE_MAX / 4 / n + 1), "overflows", "nranks"};
          });
    add(
        "datatype 42", [](Args& x, char*, char*, int, int) { x.dt = (fcclDataType_t)42; },
        fixed({"datatype 42"}));
    add(
        "datatype -1", [](Args& x, char*, char*, int, int) { x.dt = (fcclDataType_t)-1; },
        fixed({"datatype -1"}));
    add(
        "comm NULL", [](Args& x, char*, char*, int, int) { x.comm = nullptr; }, fixed({"comm is NULL"}));
    add(
        "stream not NULL", [](Args& x, char*, char*, int, int) { x.stream = (fcclStream_t)0x1000; },
        fixed({"stream must be NULL"}));
    if (apiReduces(a)) {
      add(
          "op 17 (never created)", [](Args& x, char*, char*, int, int) { x.op = (fcclRedOp_t)17; },
          fixed({"op 17"}));
      add(
          "op fcclNumOps (never created)", [](Args& x, char*, char*, int, int) { x.op = fcclNumOps; },
          fixed({"op " + std::to_string((int)fcclNumOps)}));
      add(
          "op -1", [](Args& x, char*, char*, int, int) { x.op = (fcclRedOp_t)-1; }, fixed({"op -1"}));
      add(
          "premulsum op of another datatype", [=](Args& x, char*, char*, int, int) { x.op = foreignOp; },
          fixed({"op " + std::to_string((int)foreignOp), "datatype"}));
    }
    if (apiRooted(a)) {
      add(
          "root = nranks", [](Args& x, char*, char*, int, int n) { x.root = n; },
          [](int n) { return Phrases{"root " + std::to_string(n)}; });
      add(
          "root = -1", [](Args& x, char*, char*, int, int) { x.root = -1; }, fixed({"root -1"}));
    }
    if (apiP2p(a)) {
      add(
          "peer = nranks", [](Args& x, char*, char*, int, int n) { x.root = n; },
          [](int n) { return Phrases{"peer " + std::to_string(n)}; });
      add(
          "peer = -1", [](Args& x, char*, char*, int, int) { x.root = -1; }, fixed({"peer -1"}));
    }
    if (a == Api::AlltoAll) {
      add(
          "in place (sendbuff == recvbuff)", [](Args& x, char*, char* recv, int, int) { x.send = recv; },
          fixed({"sendbuff and recvbuff overlap"}));
      add(
          "overlapping by one element",
          [](Args& x, char*, char* recv, int, int) { x.send = recv + sizeof(float); },
          fixed({"sendbuff and recvbuff overlap"}));
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
          if (res != fcclSuccess)
            checkSentence(x.comm, std::string("fccl") + apiName(bc.api), bc.phrases(n), bc.name);
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
        } cases[] = {
            {2, 2, "rank 2"}, {2, -1, "rank -1"}, {0, 0, "nranks 0"}, {-1, 0, "nranks -1"}, {1, 1, "rank 1"}};
        for (const auto& c : cases) {
          fcclComm_t comm = nullptr;
          std::string what = strf("fcclCommInitRank(nranks=%d, rank=%d)", c.nranks, c.rank);
          fcclResult_t res = fcclCommInitRank(&comm, c.nranks, id, c.rank);
          checkResult(res, fcclInvalidArgument, nullptr, what);
          if (res == fcclSuccess)
            fcclCommDestroy(comm);
          else
            checkSentence(nullptr, "fcclCommInitRank", {c.key}, what);
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
          checkSentence(nullptr, "fcclCommInitRankConfig", {"config was not initialized"},
                        "fcclCommInitRankConfig(config.magic=0)");
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
          checkSentence(nullptr, "fcclCommInitRank", {"unique id is corrupted", "bad magic"},
                        "corrupted unique id");
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
