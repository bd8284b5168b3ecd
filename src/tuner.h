// tuner.h - picks the algorithm for a task. The decision depends only on what every rank
// knows identically (collective, count, type, nranks, env), so all ranks agree without talking.
#pragma once
#include "collectives/coll.h"
#include "src/comm.h"

namespace fccl {

enum class Algo {
  Ring,
  Direct
};
const char* algoName(Algo a);
Algo chooseAlgo(const fcclComm* comm, const CollTask& t);
// Chunk size, FIFO depth and direct threshold for a new communicator (env overrides).
TuningParams defaultTuning(int nranks);

}  // namespace fccl
