// direct_algo.h - the latency algorithm: every rank publishes its contribution in its own
// area (direct.h), then reads what it needs straight from its peers' areas. One hop instead
// of n-1, no pipelining: the right choice while messages are small (the tuner's threshold).
//
// Slots alternate by direct-operation number (seq & 1). A rank may overwrite its slot of
// seq-2 only once every peer is done reading it. That is implied when, in op seq-1, this
// rank read every peer's seq-1 publication (a peer that published seq-1 had finished seq-2);
// otherwise (after a broadcast or reduce) we check the peers' doneSeq counters.
//
// Written over the direct primitives (prims_host_direct.h):
//   waitDone(peer, seq)            the peer finished reading our publication of seq
//   publish(k, seq, t, bytes)      our contribution into our slot k (scaled for PreMulSum)
//   waitPublished(peer, k, seq, bytes)  the peer's slot k holds this very call's data
//   data(peer, k)                  a slot's payload (ours: our own slot)
//   reduce(dst, srcs, n, count) / divide(dst, count) / copy(dst, src, bytes)
//   done(seq)                      we finished reading publication seq
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>
#include "collectives/coll.h"
#include "collectives/ring.h"
#include "src/base/dtype.h"

namespace fccl {

inline bool directPublishes(const CollTask& t, int rank) {
  return t.kind != CollKind::Broadcast || rank == t.root;
}
inline bool directReadsAll(const CollTask& t, int rank) {
  switch (t.kind) {
    case CollKind::Broadcast:
      return false;
    case CollKind::Reduce:
      return rank == t.root;
    default:
      return true;
  }
}
inline bool directReadsPeer(const CollTask& t, int rank, int peer) {
  if (peer == rank) return false;
  switch (t.kind) {
    case CollKind::Broadcast:
      return peer == t.root;
    case CollKind::Reduce:
      return rank == t.root;
    default:
      return true;
  }
}

template <class Prims>
fcclResult_t directCollective(Prims& p, const CollTask& t, int me, int n, DirectState* st) {
  const size_t elem = dtypeSize(t.type);
  const uint64_t seq = ++st->seq;
  const int k = int(seq & 1);
  const size_t pubBytes = directPublishBytes(t, n);
  const char* send = static_cast<const char*>(t.send);
  char* recv = static_cast<char*>(t.recv);

  if (directPublishes(t, me)) {
    if (!st->lastReadAll && seq > 2)
      for (int peer = 0; peer < n; ++peer)
        if (peer != me) FCCL_ALGO_CHECK(p.waitDone(peer, seq - 2));
    FCCL_ALGO_CHECK(p.publish(k, seq, t, pubBytes));
  }
  // Wait for every publication this rank reads, and check it is the same operation.
  for (int peer = 0; peer < n; ++peer)
    if (directReadsPeer(t, me, peer)) FCCL_ALGO_CHECK(p.waitPublished(peer, k, seq, pubBytes));

  const void* few[64];
  std::vector<const void*> many;
  const void** srcs = few;
  if (n > 64) {
    many.resize(n);
    srcs = many.data();
  }
  switch (t.kind) {
    case CollKind::AllReduce:
    case CollKind::Reduce:
      if (t.kind == CollKind::Reduce && me != t.root) break;
      for (int peer = 0; peer < n; ++peer) srcs[peer] = p.data(peer, k);
      p.reduce(recv, srcs, n, t.count);
      if (t.avgDivisor > 1) p.divide(recv, t.count);
      break;
    case CollKind::ReduceScatter:
      for (int peer = 0; peer < n; ++peer) srcs[peer] = p.data(peer, k) + size_t(me) * t.count * elem;
      p.reduce(recv, srcs, n, t.count);
      if (t.avgDivisor > 1) p.divide(recv, t.count);
      break;
    case CollKind::AllGather:
      for (int peer = 0; peer < n; ++peer)
        p.copy(recv + size_t(peer) * t.count * elem, peer == me ? send : p.data(peer, k), t.count * elem);
      break;
    case CollKind::AlltoAll:
      for (int peer = 0; peer < n; ++peer)
        p.copy(recv + size_t(peer) * t.count * elem,
               (peer == me ? send : p.data(peer, k)) + size_t(me) * t.count * elem, t.count * elem);
      break;
    case CollKind::Broadcast:
      p.copy(recv, me == t.root ? send : p.data(t.root, k), t.count * elem);
      break;
    default:
      return p.noDirectAlgorithm(t.kind);
  }
  p.done(seq);
  st->lastReadAll = directReadsAll(t, me);
  return fcclSuccess;
}

}  // namespace fccl
