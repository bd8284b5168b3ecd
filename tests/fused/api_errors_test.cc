// api_errors_test.cc - misuse of the fcclProgram* API gets a clear error and changes nothing:
// a bad program's log has name:line:col: lines and fcclProgramCreate returns
// fcclInvalidArgument; compile with an unknown pass names it; launch before compile; launch with
// a missing binding, an unknown name, a wrong count, a tensor bound twice, a NULL pointer with
// count > 0, a non-integer value for an i32 scalar, a non-NULL stream, and on a communicator the
// program was not compiled for. Each returns fcclInvalidArgument or fcclInvalidUsage with a
// fcclGetLastError sentence that names the problem, and writes nothing to any buffer (every
// buffer and the scalar results are pre-filled and compared byte for byte). After the errors a
// correct launch still works.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <regex>
#include <sstream>

#include "fused_util.h"

using namespace fusedtest;
using fccltest::Mode;
using fccltest::runRanks;
using fccltest::strf;

namespace {

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }
std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Every non-empty line of `log` is "name:LINE:COL: message".
bool wellFormedLog(const std::string& log, const std::string& name, std::string* bad) {
  std::regex line("^" + std::regex_replace(name, std::regex(R"([.])"), R"(\.)") + ":[0-9]+:[0-9]+: .+$");
  std::stringstream ss(log);
  std::string l;
  int n = 0;
  while (std::getline(ss, l)) {
    if (l.empty()) continue;
    ++n;
    if (!std::regex_match(l, line)) {
      *bad = l;
      return false;
    }
  }
  if (n == 0) *bad = "(empty log)";
  return n > 0;
}

// Stock programs by name: the text compiled into the library, each one a valid program; an
// unknown name is an error that lists the known ones; NULL arguments are errors.
TEST(ProgramGetStock, FindsEveryStockProgramByName) {
  for (const char* name : {"sgd", "adam", "adamw", "lamb", "loss_scaling", "clip_global_norm",
                           "bias_dropout_residual", "mixed_precision"}) {
    SCOPED_TRACE(name);
    const char* text = nullptr;
    ASSERT_EQ(fcclProgramGetStock(name, &text), fcclSuccess) << fcclGetLastError(nullptr);
    ASSERT_NE(text, nullptr);
    EXPECT_TRUE(contains(text, std::string("program ") + name)) << text;
    fcclProgram_t p = nullptr;
    EXPECT_EQ(fcclProgramCreate(&p, text, (std::string(name) + ".fccl").c_str()), fcclSuccess)
        << fcclGetLastError(nullptr);
    fcclProgramDestroy(p);
  }
  const char* text = nullptr;
  EXPECT_EQ(fcclProgramGetStock("adamm", &text), fcclInvalidArgument);
  EXPECT_TRUE(contains(fcclGetLastError(nullptr), "adamm") && contains(fcclGetLastError(nullptr), "adamw"))
      << fcclGetLastError(nullptr);
  EXPECT_EQ(fcclProgramGetStock(nullptr, &text), fcclInvalidArgument);
  EXPECT_EQ(fcclProgramGetStock("adam", nullptr), fcclInvalidArgument);
}

TEST(ProgramCreate, ParseErrorLogHasNameLineCol) {
  const char* src =
      "program bad\n"
      "  in    grad    : f32[N] local\n"
      "  inout weights : f32[N] replicated\n"
      "  weights = weights - gradd * 2\n";  // line 4, col 23: unknown name
  fcclProgram_t p = nullptr;
  fcclResult_t r = fcclProgramCreate(&p, src, "bad.fccl");
  EXPECT_EQ(r, fcclInvalidArgument);
  ASSERT_NE(p, nullptr) << "a bad program still creates *program so its log can be read";
  const char* log = nullptr;
  ASSERT_EQ(fcclProgramGetLog(p, &log), fcclSuccess);
  ASSERT_NE(log, nullptr);
  std::string bad;
  EXPECT_TRUE(wellFormedLog(log, "bad.fccl", &bad)) << "line: " << bad << "\nlog:\n" << log;
  EXPECT_TRUE(contains(log, "bad.fccl:4:")) << log;
  EXPECT_TRUE(contains(log, "gradd")) << log;
  std::string last = fcclGetLastError(nullptr);
  EXPECT_TRUE(contains(last, "bad.fccl:4:") && contains(last, "gradd")) << last;
  // Compiling it is misuse, not a crash.
  fcclComm_t comm = nullptr;
  ASSERT_EQ(fcclCommInitAll(&comm, 1, nullptr), fcclSuccess);
  r = fcclProgramCompile(p, comm, nullptr);
  EXPECT_TRUE(r == fcclInvalidUsage || r == fcclInvalidArgument) << r;
  EXPECT_TRUE(contains(fcclGetLastError(comm), "bad.fccl")) << fcclGetLastError(comm);
  EXPECT_EQ(fcclProgramDestroy(p), fcclSuccess);
  fcclCommDestroy(comm);
}

TEST(ProgramCreate, CheckErrorLogHasNameLineCol) {
  const char* src =
      "program layout\n"
      "  in    grad    : f32[N] local\n"
      "  inout weights : f32[N] replicated\n"
      "  scalar lr : f32\n"
      "  weights = grad * lr\n"        // line 5: a local value stored into a replicated tensor
      "  weights = weights + true\n";  // line 6: bool + f32
  fcclProgram_t p = nullptr;
  EXPECT_EQ(fcclProgramCreate(&p, src, "layout.fccl"), fcclInvalidArgument);
  ASSERT_NE(p, nullptr);
  const char* log = nullptr;
  ASSERT_EQ(fcclProgramGetLog(p, &log), fcclSuccess);
  std::string bad;
  EXPECT_TRUE(wellFormedLog(log, "layout.fccl", &bad)) << "line: " << bad << "\nlog:\n" << log;
  EXPECT_TRUE(contains(log, "layout.fccl:5:")) << log;
  EXPECT_TRUE(contains(std::string(fcclGetLastError(nullptr)), "layout.fccl:5:"))
      << fcclGetLastError(nullptr);
  fcclProgramDestroy(p);

  // No name: "<string>".
  p = nullptr;
  EXPECT_EQ(fcclProgramCreate(&p, "program x\n  in a : f32[N] local\n  a = b\n", nullptr),
            fcclInvalidArgument);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(fcclProgramGetLog(p, &log), fcclSuccess);
  EXPECT_TRUE(wellFormedLog(log, "<string>", &bad)) << "line: " << bad << "\nlog:\n" << log;
  fcclProgramDestroy(p);

  // NULL arguments.
  EXPECT_EQ(fcclProgramCreate(nullptr, "program x\n", "x"), fcclInvalidArgument);
  p = reinterpret_cast<fcclProgram_t>(0x1);
  EXPECT_EQ(fcclProgramCreate(&p, nullptr, "x"), fcclInvalidArgument);
  EXPECT_EQ(p, nullptr);
}

// The program every launch error uses: in, inout (replicated and sliced), out tensor and an out
// scalar, f32 and i32 scalars.
const char* kProgram =
    "program errs\n"
    "  in    grad    : f32[N] local\n"
    "  inout weights : f32[N] replicated\n"
    "  inout moment  : f32[N] sliced\n"
    "  out   result  : f32[N] replicated\n"
    "  out   total   : f32 replicated\n"
    "  scalar lr : f32, steps : i32\n"
    "\n"
    "  gs      = allreduce(sum, grad)\n"
    "  moment  = moment * 0.5 + gs * steps\n"
    "  weights = weights - lr * moment\n"
    "  result  = weights * 2\n"
    "  total   = norm(moment)\n";

TEST(ProgramCompile, UnknownPassIsNamed) {
  fcclComm_t comm = nullptr;
  ASSERT_EQ(fcclCommInitAll(&comm, 1, nullptr), fcclSuccess);
  fcclProgram_t p = nullptr;
  ASSERT_EQ(fcclProgramCreate(&p, kProgram, "errs.fccl"), fcclSuccess);
  fcclProgramOptions_t o = FCCL_PROGRAM_OPTIONS_INITIALIZER;
  o.schedule = "split,frobnicate,fuse";
  fcclResult_t r = fcclProgramCompile(p, comm, &o);
  EXPECT_EQ(r, fcclInvalidArgument);
  std::string last = fcclGetLastError(comm);
  EXPECT_TRUE(contains(last, "frobnicate")) << last;
  const char* log = nullptr;
  ASSERT_EQ(fcclProgramGetLog(p, &log), fcclSuccess);
  EXPECT_TRUE(contains(log, "frobnicate")) << log;
  // Not compiled: launching is misuse.
  r = fcclProgramLaunch(p, nullptr, 0, nullptr, 0, nullptr, comm, nullptr);
  EXPECT_EQ(r, fcclInvalidUsage) << fcclGetLastError(comm);
  // A dump of a stage that does not exist names it.
  const char* text = nullptr;
  EXPECT_EQ(fcclProgramDump(p, "nosuchstage", &text), fcclInvalidArgument);
  EXPECT_TRUE(contains(fcclGetLastError(comm), "nosuchstage")) << fcclGetLastError(comm);
  // Options not from the initializer.
  fcclProgramOptions_t junk;
  std::memset(&junk, 0, sizeof(junk));
  EXPECT_EQ(fcclProgramCompile(p, comm, &junk), fcclInvalidArgument);
  // A good compile afterwards works and clears the log.
  EXPECT_EQ(fcclProgramCompile(p, comm, nullptr), fcclSuccess) << fcclGetLastError(comm);
  ASSERT_EQ(fcclProgramGetLog(p, &log), fcclSuccess);
  EXPECT_STREQ(log, "");
  fcclProgramDestroy(p);
  fcclCommDestroy(comm);
}

// One rank's buffers for kProgram, pre-filled; snapshot() / unchanged() compare every byte.
struct ErrBuffers {
  size_t N = 0;
  size_t sb = 0, se = 0;  // this rank's slice of moment
  std::vector<float> grad, weights, moment, result;
  double results[2] = {-777, -777};
  std::vector<std::vector<float>> saved;
  double savedResults[2] = {0, 0};

  void init(fcclComm_t comm, int rank, size_t n) {
    N = n;
    fcclSliceRange(comm, rank, N, &sb, &se);
    grad.assign(N, 0.25f + float(rank));
    weights.assign(N, 1.5f);
    moment.assign(se - sb + 1, 0.125f);  // +1: never a zero-sized vector
    result.assign(N, -999.0f);
  }
  std::vector<fcclTensorBinding_t> bindings() {
    return {{"grad", grad.data(), N},
            {"weights", weights.data(), N},
            {"moment", moment.data(), N},
            {"result", result.data(), N}};
  }
  void snapshot() {
    saved = {grad, weights, moment, result};
    std::memcpy(savedResults, results, sizeof(results));
  }
  bool unchanged() const {
    return saved == std::vector<std::vector<float>>{grad, weights, moment, result} &&
           std::memcmp(savedResults, results, sizeof(results)) == 0;
  }
};

struct LaunchCase {
  std::string name;
  std::vector<std::string> mustName;  // substrings of fcclGetLastError (case-insensitive)
  std::function<fcclResult_t(fcclProgram_t, fcclComm_t, ErrBuffers&)> launch;
};

void runLaunchErrors(fcclComm_t comm, int rank, int /*nranks*/) {
  const size_t N = 1000;
  fcclProgram_t prog = nullptr;
  RCHECK_FCCL(fcclProgramCreate(&prog, kProgram, "errs.fccl"), comm);
  ErrBuffers b;
  b.init(comm, rank, N);
  fcclScalarBinding_t scal[2] = {{"lr", 0.5}, {"steps", 2}};

  // Launch before compile.
  {
    auto t = b.bindings();
    b.snapshot();
    fcclResult_t r = fcclProgramLaunch(prog, t.data(), int(t.size()), scal, 2, b.results, comm, nullptr);
    std::string last = fcclGetLastError(comm);
    RVERIFY(r == fcclInvalidUsage, "launch before compile -> %d: %s", int(r), last.c_str());
    RVERIFY(contains(lower(last), "compile"), "launch before compile: '%s' does not say so", last.c_str());
    RVERIFY(b.unchanged(), "launch before compile wrote to a buffer");
  }
  RCHECK_FCCL(fcclProgramCompile(prog, comm, nullptr), comm);

  const std::vector<LaunchCase> cases = {
      {"missing tensor binding",
       {"moment"},
       [&](fcclProgram_t p, fcclComm_t c, ErrBuffers& e) {
         auto t = e.bindings();
         t.erase(t.begin() + 2);
         return fcclProgramLaunch(p, t.data(), int(t.size()), scal, 2, e.results, c, nullptr);
       }},
      {"missing scalar binding",
       {"steps"},
       [&](fcclProgram_t p, fcclComm_t c, ErrBuffers& e) {
         auto t = e.bindings();
         return fcclProgramLaunch(p, t.data(), int(t.size()), scal, 1, e.results, c, nullptr);
       }},
      {"unknown tensor name",
       {"weigths"},
       [&](fcclProgram_t p, fcclComm_t c, ErrBuffers& e) {
         auto t = e.bindings();
         t[1].name = "weigths";
         return fcclProgramLaunch(p, t.data(), int(t.size()), scal, 2, e.results, c, nullptr);
       }},
      {"unknown scalar name",
       {"learning_rate"},
       [&](fcclProgram_t p, fcclComm_t c, ErrBuffers& e) {
         auto t = e.bindings();
         fcclScalarBinding_t s[2] = {{"learning_rate", 0.5}, {"steps", 2}};
         return fcclProgramLaunch(p, t.data(), int(t.size()), s, 2, e.results, c, nullptr);
       }},
      {"wrong count",
       {"result", "1000", "1001"},
       [&](fcclProgram_t p, fcclComm_t c, ErrBuffers& e) {
         auto t = e.bindings();
         t[3].count = N + 1;
         return fcclProgramLaunch(p, t.data(), int(t.size()), scal, 2, e.results, c, nullptr);
       }},
      {"tensor bound twice",
       {"weights"},
       [&](fcclProgram_t p, fcclComm_t c, ErrBuffers& e) {
         auto t = e.bindings();
         t.push_back(t[1]);
         return fcclProgramLaunch(p, t.data(), int(t.size()), scal, 2, e.results, c, nullptr);
       }},
      {"scalar bound twice",
       {"lr"},
       [&](fcclProgram_t p, fcclComm_t c, ErrBuffers& e) {
         auto t = e.bindings();
         fcclScalarBinding_t s[3] = {{"lr", 0.5}, {"steps", 2}, {"lr", 0.25}};
         return fcclProgramLaunch(p, t.data(), int(t.size()), s, 3, e.results, c, nullptr);
       }},
      {"NULL data with count > 0",
       {"weights", "null"},
       [&](fcclProgram_t p, fcclComm_t c, ErrBuffers& e) {
         auto t = e.bindings();
         t[1].data = nullptr;
         return fcclProgramLaunch(p, t.data(), int(t.size()), scal, 2, e.results, c, nullptr);
       }},
      {"non-integer value for an i32 scalar",
       {"steps", "2.5"},
       [&](fcclProgram_t p, fcclComm_t c, ErrBuffers& e) {
         auto t = e.bindings();
         fcclScalarBinding_t s[2] = {{"lr", 0.5}, {"steps", 2.5}};
         return fcclProgramLaunch(p, t.data(), int(t.size()), s, 2, e.results, c, nullptr);
       }},
      {"non-NULL stream",
       {"stream"},
       [&](fcclProgram_t p, fcclComm_t c, ErrBuffers& e) {
         auto t = e.bindings();
         return fcclProgramLaunch(p, t.data(), int(t.size()), scal, 2, e.results, c,
                                  reinterpret_cast<fcclStream_t>(0x10));
       }},
      {"tensors NULL with ntensors > 0",
       {},
       [&](fcclProgram_t p, fcclComm_t c, ErrBuffers& e) {
         return fcclProgramLaunch(p, nullptr, 4, scal, 2, e.results, c, nullptr);
       }},
      {"NULL tensor name",
       {},
       [&](fcclProgram_t p, fcclComm_t c, ErrBuffers& e) {
         auto t = e.bindings();
         t[0].name = nullptr;
         return fcclProgramLaunch(p, t.data(), int(t.size()), scal, 2, e.results, c, nullptr);
       }},
  };
  for (const LaunchCase& lc : cases) {
    fccltest::noteProgress(lc.name);
    b.snapshot();
    fcclResult_t r = lc.launch(prog, comm, b);
    std::string last = fcclGetLastError(comm);
    RVERIFY(r == fcclInvalidArgument || r == fcclInvalidUsage, "%s -> %d (%s): %s", lc.name.c_str(), int(r),
            fcclGetErrorString(r), last.c_str());
    for (const std::string& s : lc.mustName)
      RVERIFY(contains(lower(last), lower(s)), "%s: the error '%s' does not name '%s'", lc.name.c_str(),
              last.c_str(), s.c_str());
    RVERIFY(!last.empty(), "%s: fcclGetLastError is empty", lc.name.c_str());
    RVERIFY(b.unchanged(), "%s: a buffer or scalar result was written", lc.name.c_str());
  }

  // Compiled for another communicator (a split of this one: same ranks, different comm).
  {
    fcclComm_t other = nullptr;
    RCHECK_FCCL(fcclCommSplit(comm, 0, rank, &other, nullptr), comm);
    auto t = b.bindings();
    b.snapshot();
    fcclResult_t r = fcclProgramLaunch(prog, t.data(), int(t.size()), scal, 2, b.results, other, nullptr);
    std::string last = fcclGetLastError(other);
    RVERIFY(r == fcclInvalidUsage || r == fcclInvalidArgument, "other communicator -> %d: %s", int(r),
            last.c_str());
    RVERIFY(contains(lower(last), "communicator") && contains(last, "errs"),
            "other communicator: the error '%s' does not say so", last.c_str());
    RVERIFY(b.unchanged(), "other communicator: a buffer was written");
    fcclCommDestroy(other);
  }

  // Still usable: a correct launch gives the right numbers.
  {
    auto t = b.bindings();
    RCHECK_FCCL(fcclProgramLaunch(prog, t.data(), int(t.size()), scal, 2, b.results, comm, nullptr), comm);
    int n = 0;
    fcclCommCount(comm, &n);
    // gs = sum_r (0.25 + r) = 0.25 n + n(n-1)/2; moment = 0.0625 + 2 gs; weights = 1.5 - 0.5 moment
    const double gs = 0.25 * n + n * (n - 1) / 2.0, mo = 0.0625 + 2 * gs, w = 1.5 - 0.5 * mo;
    RVERIFY(b.weights[0] == float(w) && b.weights[N - 1] == float(w), "weights %g, want %g", b.weights[0], w);
    RVERIFY(b.result[N / 2] == float(2 * w), "result %g, want %g", b.result[N / 2], 2 * w);
    if (b.se > b.sb) RVERIFY(b.moment[0] == float(mo), "moment %g, want %g", b.moment[0], mo);
    const double total = std::sqrt(double(N)) * double(float(mo));
    RVERIFY(std::fabs(b.results[0] - total) <= 1e-5 * total, "total %.9g, want %.9g", b.results[0], total);
    RVERIFY(b.results[1] == -777, "scalarResults[1] written: %g", b.results[1]);
  }
  fcclProgramDestroy(prog);
}

class LaunchErrors : public ::testing::TestWithParam<Mode> {};

TEST_P(LaunchErrors, ClearErrorAndNothingWritten) {
  EXPECT_RANKS_OK(runRanks(2, GetParam(), runLaunchErrors, 30));
}

INSTANTIATE_TEST_SUITE_P(Modes, LaunchErrors, ::testing::Values(Mode::Threads, Mode::Processes),
                         [](const ::testing::TestParamInfo<Mode>& i) { return fccltest::modeName(i.param); });

}  // namespace
