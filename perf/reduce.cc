// reduce.cc - reduce_perf's collective: fcclReduce to -r root, busbw = algbw.
// The root expects the reduction; other ranks expect their receive buffer untouched (zeros
// out of place, their own input in place). In place: sendbuff == recvbuff.
#include <cstring>

#include "common.h"

namespace fccl::perf {
namespace {

void counts(size_t count, size_t, int, Counts* c) {
  c->send = c->recv = c->param = count;
  c->sendInplaceOffset = c->recvInplaceOffset = 0;
}

void init(const DataCtx& d) {
  fillReduceInput(d.type, d.op, d.seed, d.rank, d.nranks, d.input, d.c.send, 0);
  if (d.rank == d.root)
    fillReduceExpected(d.type, d.op, d.seed, d.nranks, d.expected, d.c.recv, 0);
  else
    std::memcpy(d.expected, d.recvbuf, d.c.recv * typeSize(d.type));
}

double algFactor(int) { return 1.0; }
double busFactor(int) { return 1.0; }

fcclResult_t run(const void* s, void* r, size_t count, fcclDataType_t t, fcclRedOp_t op, int root,
                 fcclComm_t comm) {
  return fcclReduce(s, r, count, t, op, root, comm, nullptr);
}

}  // namespace

const Coll kReduce = {"reduce_perf", true, true, InPlace::kChecked, counts, init, algFactor, busFactor, run};

}  // namespace fccl::perf
