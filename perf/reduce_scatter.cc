// reduce_scatter.cc - reduce_scatter_perf's collective: fcclReduceScatter, busbw = algbw*(n-1)/n.
// Row count = recvcount, rounded down to 16 bytes as nccl-tests does; algbw counts the whole
// send buffer. In place: recvbuff == sendbuff + rank*recvcount.
#include "common.h"

namespace fccl::perf {
namespace {

void counts(size_t count, size_t elt, int n, Counts* c) {
  size_t base = (count / n) & ~(16 / elt - 1);
  c->send = base * n;
  c->recv = c->param = base;
  c->sendInplaceOffset = 0;
  c->recvInplaceOffset = base;
}

void init(const DataCtx& d) {
  fillReduceInput(d.type, d.op, d.seed, d.rank, d.nranks, d.input, d.c.send, 0);
  fillReduceExpected(d.type, d.op, d.seed, d.nranks, d.expected, d.c.recv, d.rank * d.c.recv);
}

double algFactor(int n) { return n; }
double busFactor(int n) { return double(n - 1) / n; }

fcclResult_t run(const void* s, void* r, size_t count, fcclDataType_t t, fcclRedOp_t op, int,
                 fcclComm_t comm) {
  return fcclReduceScatter(s, r, count, t, op, comm, nullptr);
}

}  // namespace

const Coll kReduceScatter = {
    "reduce_scatter_perf", true, false, InPlace::kChecked, counts, init, algFactor, busFactor, run};

}  // namespace fccl::perf
