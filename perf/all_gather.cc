// all_gather.cc - all_gather_perf's collective: fcclAllGather, busbw = algbw * (n-1)/n.
// Row count = sendcount (rounded down to 16 bytes, as nccl-tests); algbw counts the whole
// receive buffer. In place: sendbuff == recvbuff + rank*sendcount.
#include "common.h"

namespace fccl::perf {
namespace {

void counts(size_t count, size_t elt, int n, Counts* c) {
  size_t base = (count / n) & ~(16 / elt - 1);
  c->send = c->param = base;
  c->recv = base * n;
  c->sendInplaceOffset = base;
  c->recvInplaceOffset = 0;
}

// Block j of the result is rank j's pattern.
void init(const DataCtx& d) {
  size_t elt = typeSize(d.type);
  fillPattern(d.type, mix(d.seed, d.rank, 1), d.input, d.c.send, 0);
  for (int j = 0; j < d.nranks; j++)
    fillPattern(d.type, mix(d.seed, j, 1), (char*)d.expected + j * d.c.send * elt, d.c.send, 0);
}

double algFactor(int n) { return n; }
double busFactor(int n) { return double(n - 1) / n; }

fcclResult_t run(const void* s, void* r, size_t count, fcclDataType_t t, fcclRedOp_t, int, fcclComm_t comm) {
  return fcclAllGather(s, r, count, t, comm, nullptr);
}

}  // namespace

const Coll kAllGather = {"all_gather_perf", false,     false, InPlace::kChecked, counts, init,
                         algFactor,         busFactor, run};

}  // namespace fccl::perf
