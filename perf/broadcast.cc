// broadcast.cc - broadcast_perf's collective: fcclBroadcast from -r root, busbw = algbw.
// Only the root's input is filled; every rank expects the root's pattern. In place:
// sendbuff == recvbuff.
#include "common.h"

namespace fccl::perf {
namespace {

void counts(size_t count, size_t, int, Counts* c) {
  c->send = c->recv = c->param = count;
  c->sendInplaceOffset = c->recvInplaceOffset = 0;
}

void init(const DataCtx& d) {
  if (d.rank == d.root) fillPattern(d.type, mix(d.seed, d.root, 2), d.input, d.c.send, 0);
  fillPattern(d.type, mix(d.seed, d.root, 2), d.expected, d.c.recv, 0);
}

double algFactor(int) { return 1.0; }
double busFactor(int) { return 1.0; }

fcclResult_t run(const void* s, void* r, size_t count, fcclDataType_t t, fcclRedOp_t, int root,
                 fcclComm_t comm) {
  return fcclBroadcast(s, r, count, t, root, comm, nullptr);
}

}  // namespace

const Coll kBroadcast = {"broadcast_perf", false,     true, InPlace::kChecked, counts, init,
                         algFactor,        busFactor, run};

}  // namespace fccl::perf
