// cpu_share.cc - see cpu_share.h. The matching is Kuhn's augmenting paths: local ranks are few
// (tens) and each mask is scanned word by word, so it costs microseconds once per init.
#include "src/cpu_share.h"
#include <functional>
#include "src/base/checks.h"
#include "src/bootstrap.h"
#include "src/topo.h"

namespace fccl {

CpuMask cpuMaskOf(const std::vector<int>& cpus) {
  CpuMask m;
  for (int c : cpus) {
    if (c < 0) continue;
    if (c >= kCpuMaskBits)
      ++m.beyond;
    else
      m.bits[c / 64] |= uint64_t(1) << (c % 64);
  }
  return m;
}

CpuShare cpuShareDecide(const std::vector<CpuMask>& masks) {
  CpuShare s;
  s.localRanks = int(masks.size());
  CpuMask all;
  uint32_t beyond = 0;
  for (const CpuMask& m : masks) {
    for (int w = 0; w < kCpuMaskBits / 64; ++w) all.bits[w] |= m.bits[w];
    beyond = beyond > m.beyond ? beyond : m.beyond;
  }
  for (uint64_t w : all.bits) s.cpus += __builtin_popcountll(w);
  // CPUs past the mask: assume they are distinct and unshared (as many as the largest count).
  s.cpus += int(beyond);
  if (beyond > 0) {
    s.shared = s.localRanks > s.cpus;
    return s;
  }
  if (s.localRanks > s.cpus) {
    s.shared = true;
    return s;
  }
  // owner[cpu]: the rank matched to it, or -1.
  std::vector<int> owner(kCpuMaskBits, -1);
  std::function<bool(int, std::vector<char>&)> place = [&](int r, std::vector<char>& seen) {
    for (int w = 0; w < kCpuMaskBits / 64; ++w)
      for (uint64_t bits = masks[r].bits[w]; bits; bits &= bits - 1) {
        const int cpu = w * 64 + __builtin_ctzll(bits);
        if (seen[cpu]) continue;
        seen[cpu] = 1;
        if (owner[cpu] < 0 || place(owner[cpu], seen)) {
          owner[cpu] = r;
          return true;
        }
      }
    return false;
  };
  for (int r = 0; r < s.localRanks; ++r) {
    std::vector<char> seen(kCpuMaskBits, 0);
    if (!place(r, seen)) {
      s.shared = true;
      break;
    }
  }
  return s;
}

fcclResult_t cpuShareExchange(Bootstrap* bootstrap, const std::vector<PeerInfo>& peers, int rank,
                              CpuShare* out) {
  std::vector<int> cpus;
  FCCL_CHECK(topoGetThreadCpus(&cpus));
  const int n = int(peers.size());
  std::vector<CpuMask> all(n);
  all[rank] = cpuMaskOf(cpus);
  FCCL_CHECK(bootstrap->allGather(all.data(), sizeof(CpuMask)));
  std::vector<CpuMask> local;
  for (int r = 0; r < n; ++r)
    if (peers[r].hostHash == peers[rank].hostHash) local.push_back(all[r]);
  *out = cpuShareDecide(local);
  return fcclSuccess;
}

}  // namespace fccl
