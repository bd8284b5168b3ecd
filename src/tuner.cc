// tuner.cc - algorithm and chunk-size choices. Numbers come from perf/all_reduce_perf runs on
// the 2-core reference machine (see README "Measured"): the direct algorithm wins while a
// rank's publication stays within a few tens of KiB; the ring wins beyond, where bandwidth
// matters and pipelining pays. Across hosts, a cost model (below) weighs the flat ring against
// the two-level AllReduce.
#include "src/tuner.h"
#include <strings.h>
#include "src/base/debug.h"
#include "src/base/dtype.h"
#include "src/base/env.h"
#include "src/comm.h"

namespace fccl {

const char* algoName(Algo a) {
  switch (a) {
    case Algo::Direct:
      return "direct";
    case Algo::Hier:
      return "hier";
    case Algo::Exchange:
      return "exchange";
    default:
      return "ring";
  }
}

namespace {

// The cost model of the flat ring against the two-level AllReduce: per step a latency, per byte
// the slowest link's time. Links: TCP between namespaces over veth (README: about 1.2 GB/s each
// way with both directions busy, ~30 us a round of small messages through the helpers) and
// shared memory inside a host (~5 GB/s busbw, ~2 us a step). A pipelined ring runs at its
// slowest link's pace, so a ring that crosses hosts is priced at network rates throughout.
constexpr double kNetAlpha = 30e-6, kNetBeta = 1.2e9, kShmAlpha = 2e-6, kShmBeta = 5e9;
// The model leaves out that the two-level algorithm's three phases run one after the other while
// the flat ring pipelines everything: measured (perf/net_bench.sh, 2 hosts x 2 ranks, a core per
// host) it loses below this size (256 KiB: 0.46x the ring's busbw; 8 MiB: 0.5-1.0x) and wins
// above (256 MiB: 1.1-2.1x). FCCL_ALGO=hier forces it at any size.
constexpr double kHierMinBytes = 64.0 * 1024 * 1024;

double ringCost(double bytes, int n, bool crossesHosts) {
  const double alpha = crossesHosts ? kNetAlpha : kShmAlpha, beta = crossesHosts ? kNetBeta : kShmBeta;
  return 2.0 * (n - 1) * alpha + 2.0 * (n - 1) / n * bytes / beta;
}

// Reduce-scatter and all-gather on shared memory (l ranks), and l allreduces of bytes / l across
// h hosts side by side, sharing each host's link: 2(h-1)/h of the tensor leaves each host.
double hierCost(double bytes, int l, int h) {
  return 2.0 * (l - 1) * kShmAlpha + 2.0 * (l - 1) / l * bytes / kShmBeta + 2.0 * (h - 1) * kNetAlpha +
         2.0 * (h - 1) / h * bytes / kNetBeta;
}

}  // namespace

bool hierPossible(const fcclComm* comm, const CollTask& t) {
  const Rings& r = comm->rings;
  return t.kind == CollKind::AllReduce && t.sendReady == nullptr && r.nhosts > 1 && r.uniform &&
         r.local.size() > 1;
}

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
  const bool hier = hierPossible(comm, t);
  if (strcasecmp(forced.c_str(), "hier") == 0 && hier) return Algo::Hier;
  if (comm->nranks == 1) return Algo::Ring;  // a local copy
  if (fits) return Algo::Direct;
  // Tiny, across hosts: one hop of the whole input to every peer beats the ring's 2(n-1) hops
  // (2 hosts x 1 rank on a core each, 8 B: 14-19 us by the ring, 10 us so; 4 KiB 16-18 -> 9-12 us).
  // At 2 ranks up to 64 KiB (exchangeFits): 8 KiB 21.7 -> 11-12.6 us, 16 KiB 18-22 -> 11.5-12.8,
  // 32 KiB 22 -> 23.6, 64 KiB 40-43 -> 34-36 (same two hosts, 200 iterations).
  if (comm->rings.nhosts > 1 && exchangeFits(t, comm->nranks, comm->tuning.chunkBytes)) return Algo::Exchange;
  if (hier) {
    const double bytes = double(t.count) * double(dtypeSize(t.type));
    const int l = int(comm->rings.local.size()), h = comm->rings.nhosts;
    if (bytes >= kHierMinBytes && hierCost(bytes, l, h) < ringCost(bytes, comm->nranks, true))
      return Algo::Hier;
  }
  return Algo::Ring;
}

}  // namespace fccl
