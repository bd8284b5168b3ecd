// group_launch_test.cc - fcclProgramLaunch inside fcclGroupStart/End: the launch runs at the
// outermost fcclGroupEnd, in call order with the group's collectives (nothing is touched
// before), from copies of the binding arrays (the caller's arrays are overwritten before the
// end), and a binding error surfaces at fcclGroupEnd. Exact values: integer-valued floats.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "fused_util.h"

using fccltest::Mode;
using fccltest::runRanks;

namespace {

constexpr const char* kProgram = R"(program add_sum
  in    g : f32[N] local
  inout w : f32[N] replicated
  w = w + allreduce(sum, g)
)";

class GroupLaunch : public ::testing::TestWithParam<Mode> {};

TEST_P(GroupLaunch, RunsAtGroupEndInCallOrderFromCopiedBindings) {
  auto res = runRanks(3, GetParam(), [](fcclComm_t comm, int rank, int nranks) {
    const size_t n = 1001;
    fcclProgram_t prog = nullptr;
    RCHECK_FCCL(fcclProgramCreate(&prog, kProgram, "add_sum"), comm);
    RCHECK_FCCL(fcclProgramCompile(prog, comm, nullptr), comm);
    std::vector<float> x(n, float(rank + 1)), g(n, float(2 * rank + 1)), w(n, 1.0f);
    const float sumX = float(nranks * (nranks + 1) / 2), sumG = float(nranks * nranks);

    RCHECK_FCCL(fcclGroupStart(), comm);
    RCHECK_FCCL(fcclAllReduce(x.data(), x.data(), n, fcclFloat32, fcclSum, comm, nullptr), comm);
    {
      fcclTensorBinding_t t[2] = {{"g", g.data(), n}, {"w", w.data(), n}};
      RCHECK_FCCL(fcclProgramLaunch(prog, t, 2, nullptr, 0, nullptr, comm, nullptr), comm);
      memset(t, 0xab, sizeof(t));  // the launch must have kept its own copy
    }
    RVERIFY(x[0] == float(rank + 1) && w[0] == 1.0f, "nothing runs before fcclGroupEnd (x %g, w %g)", x[0],
            w[0]);
    RCHECK_FCCL(fcclGroupEnd(), comm);
    for (size_t i = 0; i < n; ++i) {
      RVERIFY(x[i] == sumX, "x[%zu] = %g, want %g", i, x[i], sumX);
      RVERIFY(w[i] == 1.0f + sumG, "w[%zu] = %g, want %g", i, w[i], 1.0f + sumG);
      if (fccltest::rankFailed()) break;
    }
    fcclProgramDestroy(prog);
  });
  EXPECT_TRUE(res.ok) << res.report;
}

TEST_P(GroupLaunch, ABindingErrorSurfacesAtGroupEnd) {
  auto res = runRanks(2, GetParam(), [](fcclComm_t comm, int, int) {
    fcclProgram_t prog = nullptr;
    RCHECK_FCCL(fcclProgramCreate(&prog, kProgram, "add_sum"), comm);
    RCHECK_FCCL(fcclProgramCompile(prog, comm, nullptr), comm);
    std::vector<float> g(8, 1.0f), w(8, 1.0f);
    fcclTensorBinding_t t[1] = {{"g", g.data(), g.size()}};  // w is missing
    RCHECK_FCCL(fcclGroupStart(), comm);
    RCHECK_FCCL(fcclProgramLaunch(prog, t, 1, nullptr, 0, nullptr, comm, nullptr), comm);
    const fcclResult_t r = fcclGroupEnd();
    RVERIFY(r == fcclInvalidArgument, "fcclGroupEnd returned %d", int(r));
    RVERIFY(std::string(fcclGetLastError(nullptr)).find("tensor 'w' of program 'add_sum' is not bound") !=
                std::string::npos,
            "%s", fcclGetLastError(nullptr));
    fcclProgramDestroy(prog);
  });
  EXPECT_TRUE(res.ok) << res.report;
}

INSTANTIATE_TEST_SUITE_P(Modes, GroupLaunch, ::testing::Values(Mode::Threads, Mode::Processes),
                         [](const auto& info) { return std::string(fccltest::modeName(info.param)); });

}  // namespace
