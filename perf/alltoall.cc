// alltoall.cc - alltoall_perf's collective: fcclAlltoAll, busbw = algbw * (n-1)/n.
// Row count = per-peer count (rounded down to 16 bytes, as nccl-tests). fccl forbids
// overlapping buffers, so the in-place columns are not run (printed as N/A).
#include "common.h"

namespace fccl::perf {
namespace {

void counts(size_t count, size_t elt, int n, Counts* c) {
  c->param = (count / n) & ~(16 / elt - 1);
  c->send = c->recv = c->param * n;
  c->sendInplaceOffset = c->recvInplaceOffset = 0;
}

// Rank r sends block j of its pattern to rank j, so block j of r's result is block r of j's.
void init(const DataCtx& d) {
  size_t elt = typeSize(d.type), p = d.c.param;
  fillPattern(d.type, mix(d.seed, d.rank, 3), d.input, d.c.send, 0);
  for (int j = 0; j < d.nranks; j++)
    fillPattern(d.type, mix(d.seed, j, 3), (char*)d.expected + j * p * elt, p, d.rank * p);
}

double algFactor(int n) { return n; }
double busFactor(int n) { return double(n - 1) / n; }

fcclResult_t run(const void* s, void* r, size_t count, fcclDataType_t t, fcclRedOp_t, int, fcclComm_t comm) {
  return fcclAlltoAll(s, r, count, t, comm, nullptr);
}

}  // namespace

const Coll kAlltoAll = {"alltoall_perf", false,     false, InPlace::kNotRun, counts, init,
                        algFactor,       busFactor, run};

}  // namespace fccl::perf
