// rings.h - the rings a communicator's collectives run on, from the host of every rank
// (PeerInfo::hostHash), computed once at init; every rank computes the same ones. Hosts are
// numbered by their first rank. The flat ring visits each host's ranks together, so it crosses
// between hosts once per host (the fewest a ring can; rank order may cross at every step when
// a launcher deals ranks round-robin). The two-level AllReduce uses the ring of this host's
// ranks and the ring of the ranks with this rank's local position on every host.
#pragma once
#include <cstdint>
#include <vector>

namespace fccl {

struct Rings {
  std::vector<int> flat;  // ranks in ring order
  int flatPos = 0;        // this rank's position on it
  bool flatIsRankOrder = true;
  int crossings = 0;       // steps of the rank-order ring that go from one host to another
  std::vector<int> local;  // this host's ranks, in rank order
  int localPos = 0;
  std::vector<int> cross;  // the ranks at local position localPos of every host, by host
  int crossPos = 0;
  int nhosts = 1;
  bool uniform = true;  // every host has the same number of ranks (the two-level AllReduce needs it)
};

// hostOf[r]: an identity of rank r's host (equal for ranks of one host).
Rings buildRings(const std::vector<uint64_t>& hostOf, int rank);

}  // namespace fccl
