// tuner.cc - algorithm and chunk-size choices. Numbers come from perf/all_reduce_perf runs on
// the 2-core reference machine (see README "Measured"): the direct algorithm wins while a
// rank's publication stays within a few tens of KiB; the ring wins beyond, where bandwidth
// matters and pipelining pays.
#include "src/tuner.h"
#include <strings.h>
#include "src/base/debug.h"
#include "src/base/env.h"
#include "src/comm.h"

namespace fccl {

const char* algoName(Algo a) { return a == Algo::Direct ? "direct" : "ring"; }

TuningParams defaultTuning(int nranks) {
  (void)nranks;
  TuningParams t;
  t.chunkBytes = 128 * 1024;
  t.nslots = 8;
  t.directMaxBytes = 32 * 1024;
  const Env& e = env();
  if (e.chunkSize > 0) t.chunkBytes = (size_t(e.chunkSize) + 63) / 64 * 64;
  if (e.directMaxBytes > 0) t.directMaxBytes = size_t(e.directMaxBytes);
  return t;
}

Algo chooseAlgo(const fcclComm* comm, const CollTask& t) {
  // The sliced partition of fused programs exists only as a ring schedule.
  if (t.kind == CollKind::ReduceScatterSliced || t.kind == CollKind::AllGatherSliced) return Algo::Ring;
  // The direct algorithm reads every peer's area in place: only when every transport offers it.
  const bool fits = comm->allDirect && directPublishBytes(t, comm->nranks) <= comm->tuning.directMaxBytes;
  const std::string& forced = env().algo;
  if (strcasecmp(forced.c_str(), "ring") == 0 && t.kind != CollKind::AlltoAll) return Algo::Ring;
  if (strcasecmp(forced.c_str(), "direct") == 0 && fits) return Algo::Direct;
  if (comm->nranks == 1) return Algo::Ring;  // a local copy
  return fits ? Algo::Direct : Algo::Ring;
}

}  // namespace fccl
