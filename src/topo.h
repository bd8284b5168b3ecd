// topo.h - the host's CPU topology (packages, NUMA nodes, cores, PUs) and thread binding.
// Detected once per process with hwloc when FCCL_HAVE_HWLOC is defined, else from sysconf and
// /sys with one NUMA node; the result is immutable after detection (a process-wide constant,
// like the env snapshot). CPU numbers are OS indices, the numbers taskset and /proc show.
#pragma once
#include <string>
#include <vector>
#include "fccl.h"

namespace fccl {

struct Topology {
  int npackages = 0;                       // sockets; at least 1
  int nnuma = 0;                           // NUMA nodes; at least 1
  int ncores = 0;                          // physical cores (== npus when SMT is unknown)
  int npus = 0;                            // processing units (hardware threads); >= ncores
  std::vector<std::vector<int>> numaCpus;  // numaCpus[i]: the PUs of NUMA node i, ascending
  std::vector<int> processCpus;            // PUs the process may run on at detection time
  bool fromHwloc = false;                  // false: the sysconf fallback
  // "topology: 1 package, 1 NUMA node, 2 cores, 2 PUs; this process bound to PUs 0-1"
  std::string summary;
};

// Copies the process's topology into *out. The first call detects it (and logs the summary
// at INFO, subsystem INIT); later calls return the same result. Thread-safe.
fcclResult_t topoDetect(Topology* out);

// The PUs the calling thread may run on, ascending.
fcclResult_t topoGetThreadCpus(std::vector<int>* cpus);
// Restricts the calling thread to `cpus` (OS indices). fcclInvalidArgument for an empty set or
// a PU out of range; fcclSystemError when the kernel refuses (e.g. a PU outside the cgroup).
fcclResult_t topoBindThread(const std::vector<int>& cpus);

// "0-3,6,8-9" for {0,1,2,3,6,8,9} (the input need not be sorted; duplicates are ignored).
std::string topoFormatCpuList(std::vector<int> cpus);
// The inverse, for /sys lists and tests: false on malformed text ("", "1-", "3-1", "a").
bool topoParseCpuList(const char* text, std::vector<int>* cpus);

}  // namespace fccl
