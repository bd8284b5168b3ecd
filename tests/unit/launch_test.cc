// launch_test.cc - launchDetect over made-up launcher variables: torchrun-style, mpirun and
// srun give rank, size, local rank and the root; the order between them; a bad value or a
// missing root address is an error sentence naming the variable; Slurm's host lists.
#include "src/launch.h"
#include <gtest/gtest.h>
#include <map>
#include <string>
#include "src/base/error.h"

namespace fccl {
namespace {

LauncherEnv envOf(const std::map<std::string, std::string>& vars) {
  return readLauncherEnvFrom([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(Launch, TorchrunStyle) {
  LaunchInfo l;
  ASSERT_EQ(launchDetect(envOf({{"RANK", "3"},
                                {"WORLD_SIZE", "4"},
                                {"LOCAL_RANK", "1"},
                                {"LOCAL_WORLD_SIZE", "2"},
                                {"MASTER_ADDR", "10.0.0.1"},
                                {"MASTER_PORT", "29500"}}),
                         "", &l),
            fcclSuccess)
      << lastError();
  EXPECT_EQ(l.launcher, "env");
  EXPECT_EQ(l.rank, 3);
  EXPECT_EQ(l.nranks, 4);
  EXPECT_EQ(l.localRank, 1);
  EXPECT_EQ(l.localRanks, 2);
  EXPECT_EQ(l.root, "10.0.0.1:29500");
}

TEST(Launch, TorchrunAgentStoreHoldsMasterPort) {
  LaunchInfo l;
  ASSERT_EQ(launchDetect(envOf({{"RANK", "0"},
                                {"WORLD_SIZE", "2"},
                                {"MASTER_ADDR", "fd00::1"},
                                {"MASTER_PORT", "29500"},
                                {"TORCHELASTIC_USE_AGENT_STORE", "True"}}),
                         "", &l),
            fcclSuccess);
  EXPECT_EQ(l.root, "[fd00::1]:29501");
  EXPECT_EQ(l.localRank, -1);
}

TEST(Launch, CommIdWinsOverMasterAddr) {
  LaunchInfo l;
  ASSERT_EQ(
      launchDetect(envOf({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}}),
                   "b:7", &l),
      fcclSuccess);
  EXPECT_EQ(l.root, "b:7");
}

TEST(Launch, MpirunOnOneHostUsesLoopbackAndAJobPort) {
  const std::map<std::string, std::string> vars = {{"OMPI_COMM_WORLD_RANK", "1"},
                                                   {"OMPI_COMM_WORLD_SIZE", "2"},
                                                   {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                                   {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                                   {"OMPI_MCA_ess_base_jobid", "1211170817"}};
  LaunchInfo a, b;
  ASSERT_EQ(launchDetect(envOf(vars), "", &a), fcclSuccess) << lastError();
  EXPECT_EQ(a.launcher, "mpirun");
  EXPECT_EQ(a.rank, 1);
  EXPECT_EQ(a.localRanks, 2);
  ASSERT_EQ(a.root.rfind("127.0.0.1:", 0), 0u) << a.root;
  const int port = std::stoi(a.root.substr(10));
  EXPECT_GE(port, 20000);
  EXPECT_LT(port, 60000);
  // Every rank of the job derives the same port; another job another one.
  auto other = vars;
  other["OMPI_COMM_WORLD_RANK"] = "0";
  ASSERT_EQ(launchDetect(envOf(other), "", &b), fcclSuccess);
  EXPECT_EQ(a.root, b.root);
  other["OMPI_MCA_ess_base_jobid"] = "1211170818";
  ASSERT_EQ(launchDetect(envOf(other), "", &b), fcclSuccess);
  EXPECT_NE(a.root, b.root);
}

TEST(Launch, MpirunAcrossHostsNeedsAnAddress) {
  std::map<std::string, std::string> vars = {{"OMPI_COMM_WORLD_RANK", "0"},
                                             {"OMPI_COMM_WORLD_SIZE", "4"},
                                             {"OMPI_COMM_WORLD_LOCAL_RANK", "0"},
                                             {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}};
  LaunchInfo l;
  EXPECT_EQ(launchDetect(envOf(vars), "", &l), fcclInvalidUsage);
  EXPECT_NE(std::string(lastError()).find("MASTER_ADDR"), std::string::npos) << lastError();
  vars["MASTER_ADDR"] = "host0";
  vars["MASTER_PORT"] = "29500";
  ASSERT_EQ(launchDetect(envOf(vars), "", &l), fcclSuccess);
  EXPECT_EQ(l.root, "host0:29500");
}

TEST(Launch, SlurmTakesTheFirstNodeOfTheStep) {
  LaunchInfo l;
  ASSERT_EQ(launchDetect(envOf({{"SLURM_PROCID", "5"},
                                {"SLURM_NTASKS", "8"},
                                {"SLURM_LOCALID", "1"},
                                {"SLURM_NODEID", "2"},
                                {"SLURM_STEP_TASKS_PER_NODE", "2(x3),1,1"},
                                {"SLURM_STEP_NODELIST", "gpu[007-010],cpu1"},
                                {"SLURM_JOB_ID", "4242"},
                                {"SLURM_STEP_ID", "0"}}),
                         "", &l),
            fcclSuccess)
      << lastError();
  EXPECT_EQ(l.launcher, "slurm");
  EXPECT_EQ(l.rank, 5);
  EXPECT_EQ(l.nranks, 8);
  EXPECT_EQ(l.localRank, 1);
  EXPECT_EQ(l.localRanks, 2);
  EXPECT_EQ(l.root.rfind("gpu007:", 0), 0u) << l.root;
}

TEST(Launch, TorchrunInsideAnAllocationWins) {
  LaunchInfo l;
  ASSERT_EQ(launchDetect(envOf({{"SLURM_PROCID", "0"},
                                {"SLURM_NTASKS", "1"},
                                {"OMPI_COMM_WORLD_RANK", "0"},
                                {"OMPI_COMM_WORLD_SIZE", "1"},
                                {"RANK", "1"},
                                {"WORLD_SIZE", "2"},
                                {"MASTER_ADDR", "h"},
                                {"MASTER_PORT", "2"}}),
                         "", &l),
            fcclSuccess);
  EXPECT_EQ(l.launcher, "env");
  EXPECT_EQ(l.rank, 1);
}

TEST(Launch, BadValuesAreNamed) {
  struct Case {
    std::map<std::string, std::string> vars;
    const char* named;
  } cases[] = {
      {{{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}, "RANK=\"2\""},
      {{{"RANK", "0"}, {"WORLD_SIZE", "two"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}},
       "WORLD_SIZE=\"two\""},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "0x10"}},
       "MASTER_PORT=\"0x10\""},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}}, "MASTER_ADDR"},
      {{{"RANK", "0"}}, "WORLD_SIZE"},
      {{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_STEP_NODELIST", "n[1"}}, "SLURM_STEP_NODELIST"},
      {{}, "no launcher"},
  };
  for (const Case& c : cases) {
    LaunchInfo l;
    EXPECT_EQ(launchDetect(envOf(c.vars), "", &l), fcclInvalidUsage) << c.named;
    EXPECT_NE(std::string(lastError()).find(c.named), std::string::npos) << lastError();
  }
}

TEST(Launch, SlurmHostLists) {
  EXPECT_EQ(slurmFirstHost("node[01-04,07],gpu5"), "node01");
  EXPECT_EQ(slurmFirstHost("a1,b2"), "a1");
  EXPECT_EQ(slurmFirstHost("rack[3-4]-n[1-2]"), "rack3-n1");
  EXPECT_EQ(slurmFirstHost("solo"), "solo");
  EXPECT_EQ(slurmFirstHost("bad[x]"), "");
  EXPECT_EQ(slurmFirstHost("bad[1"), "");
  EXPECT_EQ(slurmTasksOnNode("2(x3),1", 0), 2);
  EXPECT_EQ(slurmTasksOnNode("2(x3),1", 2), 2);
  EXPECT_EQ(slurmTasksOnNode("2(x3),1", 3), 1);
  EXPECT_EQ(slurmTasksOnNode("2(x3),1", 4), -1);
  EXPECT_EQ(slurmTasksOnNode("2(x,1", 0), -1);
}

}  // namespace
}  // namespace fccl
