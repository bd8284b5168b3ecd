// fused_programs_test.cc - every stock program of fusion/stock/ (fcclProgramGetStock) and the
// test program tests/fusion/programs/features.fccl through the public C API (fcclProgramCreate /
// Compile / Dump / Launch / fcclSliceRange / Destroy), on every rank
// with its own buffers, compared with the float64 reference interpreter run in this process.
//
//   programs:  sgd adam adamw lamb loss_scaling clip_global_norm bias_dropout_residual
//              mixed_precision features
//   schedules: default (NULL), "none", "split", "split,reorder", "split,reorder,fuse"
//   ranks:     1, 2, 3, 4, 8 as threads; 2 and 4 as forked processes
//   sizes:     N (every shape symbol) in 1, 7, 1000, 65537 (N=1 on 8 ranks: empty slices)
//   extra:     loss_scaling also with +inf in the last rank's gradient (the skip path);
//              N=1000 launches twice on evolving state against two reference steps.
// Each case checks every out/inout tensor and scalar result on every rank (tolerance: the
// table at the top of fused_util.h), that `in` tensors are unchanged and that no byte around
// a buffer is written, and that fcclProgramDump has "parse", "check", each pass of the
// pipeline and "schedule".
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "fused_util.h"

using namespace fusedtest;
using fccltest::Mode;
using fccltest::runRanks;

namespace {

const char* const kPrograms[] = {"sgd",
                                 "adam",
                                 "adamw",
                                 "lamb",
                                 "loss_scaling",
                                 "clip_global_norm",
                                 "bias_dropout_residual",
                                 "mixed_precision",
                                 "features"};
const char* const kSchedules[] = {nullptr, "none", "split", "split,reorder", "split,reorder,fuse"};
const int64_t kSizes[] = {1, 7, 1000, 65537};

ProgramSpec specFor(const std::string& prog, int64_t N, bool withInf, int nranks) {
  return stockProgramSpec(prog, N, withInf, nranks, 0x5eed0000u + uint64_t(N) * 31 + uint64_t(nranks));
}

std::string strfCase(const Case& c, const char* sched, int n, Mode mode) {
  return c.label + ", schedule " + scheduleName(sched) + ", " + std::to_string(n) + " ranks as " +
         fccltest::modeName(mode);
}

struct Param {
  std::string program;
  int nranks;
  Mode mode;
};

void PrintTo(const Param& p, std::ostream* os) {
  *os << p.program << " on " << p.nranks << " ranks as " << fccltest::modeName(p.mode);
}

std::string paramName(const ::testing::TestParamInfo<Param>& info) {
  return info.param.program + "_n" + std::to_string(info.param.nranks) + "_" +
         fccltest::modeName(info.param.mode);
}

std::vector<Param> allParams() {
  std::vector<Param> out;
  for (const char* p : kPrograms) {
    for (int n : {1, 2, 3, 4, 8}) out.push_back({p, n, Mode::Threads});
    for (int n : {2, 4}) out.push_back({p, n, Mode::Processes});
  }
  return out;
}

class FusedPrograms : public ::testing::TestWithParam<Param> {};

TEST_P(FusedPrograms, AllSchedulesAndSizesMatchReference) {
  const Param& prm = GetParam();
  const std::string text = programText(prm.program);
  ASSERT_FALSE(text.empty()) << "cannot read " << prm.program;
  std::string errors;
  std::optional<ir::Program> checked = parseCheck(text, &errors, prm.program + ".fccl");
  ASSERT_TRUE(checked.has_value()) << errors;
  const ir::Program& p = *checked;

  // Every case's reference, computed here before any rank starts.
  std::vector<Case> cases;
  for (int64_t N : kSizes) {
    for (int inf = 0; inf < (prm.program == "loss_scaling" ? 2 : 1); ++inf) {
      ProgramSpec spec = specFor(prm.program, N, inf != 0, prm.nranks);
      Case c;
      c.label = prm.program + " N=" + std::to_string(N) + (inf ? " (+inf gradient on the last rank)" : "");
      c.nranks = prm.nranks;
      for (const std::string& sym : p.symbols) c.symbols[sym] = N;
      c.scalars = spec.scalars;
      c.floors = spec.floors;
      std::string err;
      ASSERT_TRUE(buildCase(p, &c, spec.values, N == 1000 ? 2 : 1, &err)) << c.label << ": " << err;
      if (prm.program == "loss_scaling") {  // the inputs do exercise both paths
        EXPECT_EQ(c.steps[0].scalars[0].at("skipped"), inf ? 1.0 : 0.0) << c.label;
      }
      cases.push_back(std::move(c));
    }
  }

  fccltest::RunResult rr = runRanks(
      prm.nranks, prm.mode,
      [&](fcclComm_t comm, int rank, int n) {
        std::vector<std::string> failing, details;
        for (const Case& c : cases) {
          for (const char* sched : kSchedules) {
            std::string what = strfCase(c, sched, n, prm.mode), d;
            fccltest::noteProgress(what);
            if (!runCaseOnRank(comm, rank, text, p, sched, c, what,
                               rank == 0 || c.symbols.begin()->second == 7, &d)) {
              failing.push_back(what);
              details.push_back(d);
            }
          }
        }
        recordCaseFailures(failing, details);
      },
      100);
  EXPECT_TRUE(rr.ok) << rr.report;
}

INSTANTIATE_TEST_SUITE_P(Stock, FusedPrograms, ::testing::ValuesIn(allParams()), paramName);

}  // namespace
