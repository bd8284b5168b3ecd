// transport_setup.cc - see transport_setup.h. Every rank runs the same steps in the same
// order (the bootstrap's collectives pair them up): the blob exchange carries one fixed-size
// blob per registered transport per rank (zeros for a transport a rank does not use), so all
// ranks agree on its size whatever transports they pick.
#include "src/transport_setup.h"
#include <cstring>
#include <string>
#include <vector>
#include "collectives/direct.h"
#include "src/base/checks.h"
#include "src/base/debug.h"
#include "src/base/error.h"
#include "src/callboard.h"
#include "src/comm.h"

namespace fccl {

namespace {

// The transport for each peer (-1 for ourselves), as an index into kTransports.
fcclResult_t pickTransports(const fcclComm* comm, std::vector<int>* pick) {
  const PeerInfo& me = comm->peers[comm->rank];
  pick->assign(comm->nranks, -1);
  for (int p = 0; p < comm->nranks; ++p) {
    if (p == comm->rank) continue;
    for (int t = 0; t < kNumTransports && (*pick)[p] < 0; ++t)
      if (kTransports[t]->canConnect(me, comm->peers[p])) (*pick)[p] = t;
    if ((*pick)[p] < 0)
      return setError(fcclInvalidUsage,
                      "rank %d: no transport connects rank %d (host %s) and rank %d (host %s)", comm->rank,
                      comm->rank, me.hostname, p, comm->peers[p].hostname);
  }
  return fcclSuccess;
}

// "1-3,5": the peers, for the INFO line.
std::string rankList(const std::vector<int>& ranks) {
  std::string s;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    s += (s.empty() ? "" : ",") + std::to_string(ranks[i]) + (j > i ? "-" + std::to_string(ranks[j]) : "");
    i = j + 1;
  }
  return s;
}

}  // namespace

fcclResult_t connectTransports(fcclComm* comm) {
  const int n = comm->nranks, me = comm->rank;
  std::vector<int> pick;
  FCCL_CHECK(pickTransports(comm, &pick));

  Connections& conns = comm->conns;
  conns.send.assign(n, SendConn());
  conns.recv.assign(n, RecvConn());
  conns.direct.assign(n, SharedArea());
  conns.status.assign(n, SharedArea());
  conns.via.assign(n, "self");

  TransportContext base;
  base.rank = me;
  base.nranks = n;
  base.commHash = comm->commHash;
  base.peers = comm->peers.data();
  base.shape = FifoShape{comm->tuning.nslots, comm->tuning.chunkBytes,
                         directAreaBytes(comm->tuning.directMaxBytes), sizeof(CallBoard)};
  base.wait.abortFlag = &comm->abortFlag;
  base.wait.timeoutMs = comm->timeoutMs;
  base.wait.rank = me;
  base.wait.opName = "transport setup";
  base.wait.spinLimit = comm->spinLimit;
  base.localAddr = comm->bootstrap->listenAddress();
  base.localIfname = comm->bootstrap->interfaceName();
  memcpy(base.secret, comm->bootstrap->secret(), sizeof(base.secret));

  // Setup: each transport this rank uses writes its blob into this rank's row.
  std::vector<ConnectBlob> blobs(size_t(n) * kNumTransports, ConnectBlob{});
  std::vector<TransportComm*> byIndex(kNumTransports, nullptr);
  fcclResult_t res = fcclSuccess;
  for (int t = 0; t < kNumTransports && res == fcclSuccess; ++t) {
    TransportContext ctx = base;
    for (int p = 0; p < n; ++p)
      if (pick[p] == t) ctx.links.push_back(p);
    if (ctx.links.empty()) continue;
    comm->transports.push_back(kTransports[t]->create(ctx));
    byIndex[t] = comm->transports.back().get();
    res = byIndex[t]->setup(&blobs[size_t(me) * kNumTransports + t]);
  }
  // Exchange, connect, and make sure every rank connected before anyone drops setup state.
  bool exchanged = false;
  if (res == fcclSuccess) {
    res = comm->bootstrap->allGather(blobs.data(), sizeof(ConnectBlob) * kNumTransports);
    exchanged = res == fcclSuccess;
  }
  std::vector<std::vector<const ConnectBlob*>> rows(kNumTransports, std::vector<const ConnectBlob*>(n));
  for (int t = 0; t < kNumTransports; ++t)
    for (int r = 0; r < n; ++r) rows[t][r] = &blobs[size_t(r) * kNumTransports + t];
  for (int t = 0; t < kNumTransports && res == fcclSuccess; ++t)
    if (byIndex[t] != nullptr) res = byIndex[t]->connect(rows[t].data(), &conns);
  if (res == fcclSuccess) res = comm->bootstrap->barrier();
  if (res != fcclSuccess) {
    for (int t = 0; t < kNumTransports; ++t)
      if (byIndex[t] != nullptr) byIndex[t]->abandon(exchanged ? rows[t].data() : nullptr);
    return res;
  }
  for (auto& t : comm->transports) t->connected();

  // What the core builds on the capabilities: call boards and direct views, per peer.
  comm->linkOf.assign(n, nullptr);
  for (int p = 0; p < n; ++p)
    if (pick[p] >= 0) comm->linkOf[p] = byIndex[pick[p]];
  comm->boards.assign(n, nullptr);
  comm->directViews.assign(n, DirectView());
  comm->allDirect = n > 1;
  for (int p = 0; p < n; ++p) {
    if (conns.status[p].bytes >= sizeof(CallBoard))
      comm->boards[p] = reinterpret_cast<CallBoard*>(conns.status[p].base);
    comm->directViews[p] = directView(conns.direct[p], comm->tuning.directMaxBytes);
    comm->allDirect &= comm->directViews[p].ctrl != nullptr;
  }
  for (int t = 0; t < kNumTransports; ++t) {
    std::vector<int> peers;
    for (int p = 0; p < n; ++p)
      if (pick[p] == t) {
        peers.push_back(p);
        conns.via[p] = kTransports[t]->name;
      }
    if (!peers.empty())
      FCCL_INFO(kLogInit, "rank %d: transport %s to rank%s %s", me, kTransports[t]->name,
                peers.size() > 1 ? "s" : "", rankList(peers).c_str());
  }

  std::vector<TransportComm*> busy;
  for (auto& t : comm->transports)
    if (t->needsProgress()) busy.push_back(t.get());
  comm->driver.transports = busy;
  comm->progress.start(busy, [comm](fcclResult_t r) {
    // A transport's helper failed: the communicator cannot move data any more. The error
    // sticks (fcclCommGetAsyncError); the waits end at their next slow pause (abort flag).
    int expected = fcclSuccess;
    comm->asyncError.compare_exchange_strong(expected, r);
    comm->abortFlag.store(1);
  });
  return fcclSuccess;
}

void closeTransports(fcclComm* comm, bool aborted) {
  comm->progress.stop();  // close() runs with no progress() call in flight
  for (auto& t : comm->transports) t->close(aborted);
}

}  // namespace fccl
