// env.h - every FCCL_* environment variable, declared once in env.cc's table (name, default,
// one-line doc, accepted values), parsed strictly whatever its type (a bad value: a WARN that
// names the variable, the value and what is accepted, then the default), read once into an
// immutable snapshot; the set ones are logged at INFO. No getenv anywhere else.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace fccl {

struct Env {
  // Text values are stored as the table spells them (FCCL_DEBUG=info -> "INFO", FCCL_ALGO=Ring
  // -> "ring"); an unset one holds its default ("" where the default is "unset").
  std::string debug;         // FCCL_DEBUG: NONE|VERSION|WARN|INFO|TRACE
  std::string debugSubsys;   // FCCL_DEBUG_SUBSYS: comma list, ^ to negate
  std::string debugFile;     // FCCL_DEBUG_FILE: log to this file (%h host, %p pid)
  int64_t timeoutMs;         // FCCL_TIMEOUT (seconds in env, stored in ms)
  std::string algo;          // FCCL_ALGO: ring|direct|hier (empty: tuner decides)
  bool cumemEnable = true;   // FCCL_CUMEM_ENABLE: device FIFOs shared as cuMem descriptors
  std::string proto;         // FCCL_PROTO: Simple|LL, device collectives (empty: by size)
  int64_t chunkSize;         // FCCL_CHUNKSIZE: bytes per pipeline chunk (0: tuner)
  int64_t directMaxBytes;    // FCCL_DIRECT_MAX_BYTES: largest message for the direct algorithm
  int64_t maxNchannels;      // FCCL_MAX_NCHANNELS: CTAs per device kernel (0: from the GPU)
  std::string commId;        // FCCL_COMM_ID: host:port of the bootstrap root
  std::string socketIfname;  // FCCL_SOCKET_IFNAME: interface filter (eth0, ^docker, =lo)
  std::string socketFamily;  // FCCL_SOCKET_FAMILY: AF_INET|AF_INET6
  int64_t socketNthreads;    // FCCL_SOCKET_NTHREADS: socket transport helper threads (1..16)
  int64_t nsocksPerThread;   // FCCL_NSOCKS_PERTHREAD: sockets per peer and direction per helper (1..64)
  std::string hostId;        // FCCL_HOSTID: this host's identity (default: hostname + boot id)
  bool shmDisable;           // FCCL_SHM_DISABLE: never pick the shm transport (ranks of one host use sockets)
  std::string net;           // FCCL_NET: socket|ucx|auto, the transport between hosts
  std::string commSecret;    // FCCL_COMM_SECRET: shared secret when FCCL_COMM_ID fixes the root
  int64_t spinCount;         // FCCL_SPIN_COUNT: busy polls before a wait starts yielding
  bool setAffinity;          // FCCL_SET_AFFINITY: pin helper threads near the rank's cores
  std::string shmDir;        // FCCL_SHM_PREFIX: name prefix of POSIX shm segments
  bool jit;                  // FCCL_JIT: compile fused pointwise work to native code (else the VM)
  std::string overlap;       // FCCL_OVERLAP: auto|1|0 - run a producer step beside its collective
  std::string jitCxx;        // FCCL_JIT_CXX: the C++ compiler the JIT runs (argv[0], no shell)
  std::string jitCache;      // FCCL_JIT_CACHE: private cache dir (default resolved, see env.cc)
  std::string cacheDir;      // FCCL_CACHE_DIR: the CUDA kernels' cache dir (default resolved, see env.cc)
  std::string faultInject;   // FCCL_FAULT_INJECT: kind:rank:op[:ms],... (src/fault.h; tests only)
};

const Env& env();

// The snapshot env() takes, read through `get` instead of getenv (for tests). Each set value that
// is not valid adds one sentence to *warnings (variable, value, what is accepted, the default
// used) and leaves the default; each valid one adds "NAME=value" to *setLines.
Env readEnvFrom(const std::function<const char*(const char*)>& get, std::vector<std::string>* setLines,
                std::vector<std::string>* warnings);

// Strict parsers shared with the table; exposed for tests.
bool parseInt64(const char* text, int64_t* out);
bool parseBool(const char* text, bool* out);

}  // namespace fccl

namespace fccl {

// The launchers' own variables (mpirun, torchrun or fcclrun, srun set them; they are not fccl's
// to declare or log), read once beside Env as raw text, "" when unset. src/launch.cc reads them;
// nothing else does.
struct LauncherEnv {
  // torchrun-style (torchrun, fcclrun): RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
  // MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE.
  std::string rank, worldSize, localRank, localWorldSize, masterAddr, masterPort, agentStore;
  // Open MPI's mpirun: OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK,LOCAL_SIZE}, OMPI_MCA_ess_base_jobid.
  std::string ompiRank, ompiSize, ompiLocalRank, ompiLocalSize, ompiJobId;
  // Slurm's srun: SLURM_{PROCID,NTASKS,LOCALID,NODEID,STEP_TASKS_PER_NODE,STEP_NODELIST,JOB_ID,
  // STEP_ID} (the job's variants when the step's are missing).
  std::string slurmProcId, slurmNtasks, slurmLocalId, slurmNodeId, slurmTasksPerNode, slurmNodeList,
      slurmJobId, slurmStepId;
};
const LauncherEnv& launcherEnv();
LauncherEnv readLauncherEnvFrom(const std::function<const char*(const char*)>& get);

// Logs the variables the user set, once per process, at INFO (called from comm init).
void logSetVariablesOnce();
}  // namespace fccl
