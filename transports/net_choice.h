// net_choice.h - which transport connects two ranks on different hosts (FCCL_NET): `socket`
// always, `ucx` always (when built), `auto` UCX where both hosts have an active RDMA port (UCX
// then drives InfiniBand or RoCE, as NCCL's auto takes its IB transport) and sockets elsewhere:
// over plain TCP the socket transport is the faster (2 hosts x 1 rank, 256 MiB: 2.36 GB/s
// against UCX's tcp transport's 0.46).
#pragma once
#include <string>
#include "src/base/peer_info.h"

namespace fccl {

inline bool ucxBetween(const std::string& net, const PeerInfo& a, const PeerInfo& b) {
  if (a.hostHash == b.hostHash) return false;  // shared memory
  if (net == "ucx") return true;
  return net == "auto" && a.rdmaPorts > 0 && b.rdmaPorts > 0;
}

}  // namespace fccl
