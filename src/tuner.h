// tuner.h - picks the algorithm for a task. The decision depends only on what every rank
// knows identically (collective, count, type, nranks, env), so all ranks agree without talking.
#pragma once
#include <cstddef>
#include "collectives/coll.h"

struct fcclComm;

namespace fccl {

enum class Algo {
  Ring,
  Direct,
  Hier,     // two-level AllReduce: inside hosts, across hosts, inside hosts (allreduce_hier.cc)
  Exchange  // tiny AllReduce across hosts: inputs to every rank, reduced locally
};
const char* algoName(Algo a);

struct TuningParams {
  size_t chunkBytes;      // FIFO slot size = ring pipeline chunk
  int nslots;             // FIFO depth
  size_t directMaxBytes;  // largest per-rank publication of the direct algorithm
};

Algo chooseAlgo(const fcclComm* comm, const CollTask& t);
// Whether the two-level AllReduce can run t: an AllReduce without a producer (overlap), on ranks
// spread evenly over at least two hosts, at least two per host.
bool hierPossible(const fcclComm* comm, const CollTask& t);
// Chunk size, FIFO depth and direct threshold for a new communicator (env overrides).
TuningParams defaultTuning(int nranks);

}  // namespace fccl
