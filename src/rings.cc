// rings.cc - see rings.h.
#include "src/rings.h"
#include <algorithm>

namespace fccl {

Rings buildRings(const std::vector<uint64_t>& hostOf, int rank) {
  const int n = int(hostOf.size());
  Rings r;
  // Hosts in order of their first rank; each host's ranks in rank order.
  std::vector<uint64_t> hosts;
  std::vector<std::vector<int>> members;
  for (int i = 0; i < n; ++i) {
    auto it = std::find(hosts.begin(), hosts.end(), hostOf[i]);
    if (it == hosts.end()) {
      hosts.push_back(hostOf[i]);
      members.emplace_back();
      it = hosts.end() - 1;
    }
    members[size_t(it - hosts.begin())].push_back(i);
  }
  r.nhosts = int(hosts.size());
  for (int i = 0; i < n; ++i) r.crossings += hostOf[i] != hostOf[(i + 1) % n];
  size_t myHost = 0;
  for (size_t h = 0; h < members.size(); ++h) {
    r.uniform &= members[h].size() == members[0].size();
    for (int m : members[h]) {
      if (m == rank) {
        myHost = h;
        r.flatPos = int(r.flat.size());
      }
      r.flat.push_back(m);
    }
  }
  for (int i = 0; i < n; ++i) r.flatIsRankOrder &= r.flat[size_t(i)] == i;
  r.local = members[myHost];
  r.localPos = int(std::find(r.local.begin(), r.local.end(), rank) - r.local.begin());
  if (r.uniform) {
    for (size_t h = 0; h < members.size(); ++h) r.cross.push_back(members[h][size_t(r.localPos)]);
    r.crossPos = int(myHost);
  }
  return r;
}

}  // namespace fccl
