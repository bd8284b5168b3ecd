// all_reduce.cc - all_reduce_perf's collective: fcclAllReduce, busbw = algbw * 2(n-1)/n.
// In place: sendbuff == recvbuff.
#include "common.h"

namespace fccl::perf {
namespace {

void counts(size_t count, size_t, int, Counts* c) {
  c->send = c->recv = c->param = count;
  c->sendInplaceOffset = c->recvInplaceOffset = 0;
}

void init(const DataCtx& d) {
  fillReduceInput(d.type, d.op, d.seed, d.rank, d.nranks, d.input, d.c.send, 0);
  fillReduceExpected(d.type, d.op, d.seed, d.nranks, d.expected, d.c.recv, 0);
}

double algFactor(int) { return 1.0; }
double busFactor(int n) { return 2.0 * (n - 1) / n; }

fcclResult_t run(const void* s, void* r, size_t count, fcclDataType_t t, fcclRedOp_t op, int,
                 fcclComm_t comm) {
  return fcclAllReduce(s, r, count, t, op, comm, nullptr);
}

}  // namespace

const Coll kAllReduce = {"all_reduce_perf", true,      false, InPlace::kChecked, counts, init,
                         algFactor,         busFactor, run};

}  // namespace fccl::perf
