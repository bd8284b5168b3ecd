// launch.h - who this process is in a job a launcher started (torchrun or fcclrun, Open MPI's
// mpirun, Slurm's srun), from the launcher's own variables, and where the job's bootstrap root
// listens (rank 0 hosts it). Pure functions of LauncherEnv, so tests give their own;
// fcclCommInitFromEnv and fcclLaunchInfoFromEnv (launch.cc) are the API over them.
#pragma once
#include <string>
#include "fccl.h"
#include "src/base/env.h"

namespace fccl {

struct LaunchInfo {
  int rank = -1, nranks = 0;
  int localRank = -1, localRanks = -1;  // among this host's processes; -1: the launcher does not say
  std::string launcher;                 // "env" (torchrun-style: torchrun, fcclrun), "mpirun", "slurm"
  std::string root;                     // host:port or [v6]:port of the bootstrap root
};

// The first launcher whose variables are set, in this order: torchrun-style RANK/WORLD_SIZE
// (a torchrun or fcclrun inside an allocation wins over the allocation), OMPI_COMM_WORLD_*,
// SLURM_PROCID/SLURM_NTASKS. The root: commId (FCCL_COMM_ID) when set; else MASTER_ADDR and
// MASTER_PORT (MASTER_PORT + 1 under torchrun's agent store, which holds MASTER_PORT itself);
// else, for mpirun on one host, loopback, and for srun, the step's first node; the port then
// derives from the job id. fcclInvalidUsage with a sentence when no launcher is found, a value
// is not a number or out of range, or no root can be named (mpirun across hosts without
// MASTER_ADDR).
fcclResult_t launchDetect(const LauncherEnv& le, const std::string& commId, LaunchInfo* out);

// Slurm's compressed host lists: "node[01-04,07],gpu5" -> "node01" ("" when malformed).
std::string slurmFirstHost(const std::string& nodelist);
// Slurm's tasks per node, "2(x3),1": the count on node `node` (-1 when malformed or absent).
int slurmTasksOnNode(const std::string& tasksPerNode, int node);

}  // namespace fccl
