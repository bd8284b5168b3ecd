// allreduce_exchange.cc - AllReduce of a tiny tensor where the direct algorithm cannot run
// (peers on other hosts offer no shared area): every rank sends its input to every other rank
// and reduces the n inputs itself, in rank order, so every rank computes the same bits. One
// network hop instead of the ring's 2(n-1) in a row; n-1 copies of the input leave each rank,
// so the tuner keeps it to a few KiB (exchangeFits). PreMulSum scales each input, Avg divides
// the sum, as the ring's hooks do.
#include <cstring>
#include <vector>
#include "collectives/coll.h"
#include "collectives/reduce_kernels.h"
#include "src/base/dtype.h"

namespace fccl {

bool exchangeFits(const CollTask& t, int nranks, size_t scratchBytes) {
  const size_t bytes = t.count * dtypeSize(t.type);
  // Two ranks: the exchange sends the ring's bytes (the whole input once) in one hop instead of
  // two, so it wins at every size the scratch holds. More ranks: n-1 copies leave each rank.
  const size_t limit = nranks == 2 ? scratchBytes : kExchangeMaxBytes;
  return t.kind == CollKind::AllReduce && t.sendReady == nullptr && bytes <= limit &&
         bytes * size_t(nranks) <= scratchBytes;
}

fcclResult_t runExchangeAllReduce(CollContext& ctx, const CollTask& t) {
  const size_t bytes = t.count * dtypeSize(t.type);
  const int n = ctx.nranks, me = ctx.rank;
  char* in = ctx.scratch;  // block r: rank r's input
  std::vector<CollTask> p2p;
  p2p.reserve(2 * size_t(n));
  for (int p = 0; p < n; ++p) {
    if (p == me) continue;
    CollTask s = t, r = t;
    s.kind = CollKind::Send;
    s.root = p;
    r.kind = CollKind::Recv;
    r.recv = in + size_t(p) * bytes;
    r.root = p;
    p2p.push_back(s);
    p2p.push_back(r);
  }
  const fcclResult_t res = runP2p(ctx, p2p.data(), p2p.size());
  if (res != fcclSuccess) return res;
  if (bytes == 0) return fcclSuccess;
  memcpy(in + size_t(me) * bytes, t.send, bytes);
  std::vector<const void*> srcs(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    char* block = in + size_t(r) * bytes;
    if (t.premulScalar != nullptr) scale(t.type, block, block, t.premulScalar, t.count);
    srcs[size_t(r)] = block;
  }
  reduceN(t.type, t.op, t.recv, srcs.data(), n, t.count);
  if (t.avgDivisor > 1) divide(t.type, t.recv, t.recv, t.avgDivisor, t.count);
  return fcclSuccess;
}

}  // namespace fccl
