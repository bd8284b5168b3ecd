// peer_info.h - what each rank tells every other at init (through the bootstrap): enough for
// the core to pick a transport for each pair of ranks (transports/transport.h canConnect) and
// to watch peer processes. Fixed size: it travels on the bootstrap wire as is.
#pragma once
#include <cstdint>

namespace fccl {

struct PeerInfo {
  int rank;
  int pid;
  uint64_t hostHash;  // ranks with equal hostHash share memory (shm transport)
  uint64_t commHash;  // the unique id's hash, the same on every rank of a communicator
  int32_t rdmaPorts;  // active RDMA ports of the host (FCCL_NET=auto: UCX where both have one)
  char hostname[64];
};

}  // namespace fccl
