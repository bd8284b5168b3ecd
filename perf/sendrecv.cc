// sendrecv.cc - sendrecv_perf's collective: each rank sends to rank+1 and receives from rank-1
// inside fcclGroupStart/End (as nccl-tests), busbw = algbw. In place (sendbuff == recvbuff) is
// timed but not checked (#wrong N/A), as nccl-tests does.
#include "common.h"

namespace fccl::perf {
namespace {

void counts(size_t count, size_t, int, Counts* c) {
  c->send = c->recv = c->param = count;
  c->sendInplaceOffset = c->recvInplaceOffset = 0;
}

void init(const DataCtx& d) {
  int peer = (d.rank - 1 + d.nranks) % d.nranks;
  fillPattern(d.type, mix(d.seed, d.rank, 4), d.input, d.c.send, 0);
  fillPattern(d.type, mix(d.seed, peer, 4), d.expected, d.c.recv, 0);
}

double algFactor(int) { return 1.0; }
double busFactor(int) { return 1.0; }

fcclResult_t run(const void* s, void* r, size_t count, fcclDataType_t t, fcclRedOp_t, int, fcclComm_t comm) {
  int rank = 0, n = 1;
  fcclResult_t res = fcclCommUserRank(comm, &rank);
  if (res == fcclSuccess) res = fcclCommCount(comm, &n);
  if (res != fcclSuccess) return res;
  if ((res = fcclGroupStart()) != fcclSuccess) return res;
  fcclResult_t a = fcclSend(s, count, t, (rank + 1) % n, comm, nullptr);
  fcclResult_t b = fcclRecv(r, count, t, (rank - 1 + n) % n, comm, nullptr);
  res = fcclGroupEnd();  // always close the group, even after a failed call inside it
  return a != fcclSuccess ? a : b != fcclSuccess ? b : res;
}

}  // namespace

const Coll kSendRecv = {"sendrecv_perf", false,     false, InPlace::kTimedOnly, counts, init,
                        algFactor,       busFactor, run};

}  // namespace fccl::perf
