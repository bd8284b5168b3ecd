// cpu_share.h - whether the ranks of one host must share CPUs, decided from every local rank's
// affinity mask (exchanged through the bootstrap at init), not from this process's mask alone:
// processes bound one per core (mpirun --bind-to core) each see one CPU, yet none shares it.
// Ranks share when no assignment gives each local rank a CPU of its own mask that no other rank
// gets (a bipartite matching, so {0},{0},{1,2} shares although the union has 3 CPUs).
#pragma once
#include <cstdint>
#include <vector>
#include "fccl.h"
#include "src/base/peer_info.h"

namespace fccl {

class Bootstrap;

// A fixed-size CPU set, as it travels through the bootstrap's allGather. CPUs past kCpuMaskBits
// are not represented (counted in `beyond`).
constexpr int kCpuMaskBits = 4096;
struct CpuMask {
  uint64_t bits[kCpuMaskBits / 64] = {};
  uint32_t beyond = 0;  // CPUs of the set numbered kCpuMaskBits or more
};
CpuMask cpuMaskOf(const std::vector<int>& cpus);

struct CpuShare {
  int localRanks = 0;   // ranks on this host (this one included)
  int cpus = 0;         // CPUs in the union of their masks
  bool shared = false;  // some CPU must run two of them
};

// The decision for the masks of the local ranks (one per rank, this one included).
CpuShare cpuShareDecide(const std::vector<CpuMask>& masks);

// Every rank of the communicator calls it at the same point of init: allGathers the calling
// thread's mask and decides among the ranks whose hostHash equals rank's.
fcclResult_t cpuShareExchange(Bootstrap* bootstrap, const std::vector<PeerInfo>& peers, int rank,
                              CpuShare* out);

}  // namespace fccl
