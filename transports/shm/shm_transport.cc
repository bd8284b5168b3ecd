// shm_transport.cc - the shared-memory transport. Each rank creates one segment holding the
// FIFOs it receives on (one per peer) and its direct-publication area; peers map it by the
// name exchanged through the bootstrap, and the owner unlinks it once every rank has mapped
// every segment (a barrier), so a crash later leaves nothing behind in /dev/shm. Ranks that
// are threads of one process share one mapping of each segment (shm_segment.h says why).
//
// Segment layout: [DirectCtrl][CallBoard][2 x (DirectSlotHeader + directBytes)]
// [nranks x (FifoCtrl + nslots x slotBytes)]
#include <unistd.h>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include "src/base/checks.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "src/bootstrap.h"
#include "transports/shm/shm_segment.h"
#include "transports/transport.h"

namespace fccl {
namespace {

constexpr size_t kNameBytes = 96;

size_t roundUp(size_t x, size_t a) { return (x + a - 1) / a * a; }

struct Layout {
  size_t directSlot;  // one direct slot: header + payload
  size_t fifo;        // one FIFO: control + slots
  size_t fifosOffset;
  size_t total;

  Layout(const FifoShape& s, int nranks) {
    directSlot = roundUp(sizeof(DirectSlotHeader) + s.directBytes, 64);
    fifo = roundUp(sizeof(FifoCtrl), 64) + size_t(s.nslots) * roundUp(s.slotBytes, 64);
    fifosOffset = kDirectSlotsOffset + 2 * directSlot;
    total = fifosOffset + size_t(nranks) * fifo;
  }
  FifoCtrl* fifoCtrl(char* base, int peer) const {
    return reinterpret_cast<FifoCtrl*>(base + fifosOffset + size_t(peer) * fifo);
  }
  char* fifoSlots(char* base, int peer) const {
    return base + fifosOffset + size_t(peer) * fifo + roundUp(sizeof(FifoCtrl), 64);
  }
  static constexpr size_t kDirectSlotsOffset = sizeof(DirectCtrl) + sizeof(CallBoard);
  CallBoard* board(char* base) const { return reinterpret_cast<CallBoard*>(base + sizeof(DirectCtrl)); }
  DirectView direct(char* base) const {
    DirectView v;
    v.ctrl = reinterpret_cast<DirectCtrl*>(base);
    for (int k = 0; k < 2; ++k) {
      char* slot = base + kDirectSlotsOffset + k * directSlot;
      v.header[k] = reinterpret_cast<DirectSlotHeader*>(slot);
      v.data[k] = slot + sizeof(DirectSlotHeader);
    }
    return v;
  }
};

std::atomic<uint64_t> segmentCounter{0};  // makes names unique within a process

}  // namespace

fcclResult_t transportsSetup(const TransportSetup& s, Connections* out) {
  const std::vector<PeerInfo>& peers = *s.peers;
  for (int p = 0; p < s.nranks; ++p) {
    if (peers[p].hostHash != peers[s.rank].hostHash)
      return setError(fcclInvalidUsage,
                      "rank %d: rank %d runs on host %s and rank %d on host %s; ranks on different hosts "
                      "need the socket transport, which this build of fccl does not have yet",
                      s.rank, p, peers[p].hostname, s.rank, peers[s.rank].hostname);
  }
  Layout layout(s.shape, s.nranks);
  // Names first, then segments: a rank that dies after creating its segment but before every
  // peer mapped it (when the owner unlinks it) has a name its peers know, so they unlink it
  // when the setup fails, and a crash during init leaves nothing in /dev/shm.
  std::vector<char> names(kNameBytes * s.nranks, 0);
  auto namePrefix = [&](int rank) {
    char prefix[kNameBytes];
    snprintf(prefix, sizeof(prefix), "/%s-%016" PRIx64 "-r%d-p", env().shmDir.c_str(), s.commHash, rank);
    return std::string(prefix);
  };
  snprintf(names.data() + kNameBytes * s.rank, kNameBytes, "%s%d-%" PRIu64, namePrefix(s.rank).c_str(),
           (int)getpid(), segmentCounter.fetch_add(1));
  FCCL_CHECK(s.bootstrap->allGather(names.data(), kNameBytes));
  for (int p = 0; p < s.nranks; ++p)
    names[kNameBytes * p + kNameBytes - 1] = '\0';  // never trust a peer's string
  auto peerName = [&](int p) { return std::string(names.data() + kNameBytes * p); };
  // On failure: every peer's segment too (only names of this communicator's pattern: a hostile
  // peer must not make us unlink anything else).
  auto unlinkPeers = [&] {
    for (int p = 0; p < s.nranks; ++p)
      if (p != s.rank && peerName(p).compare(0, namePrefix(p).size(), namePrefix(p)) == 0)
        ShmSegment::unlinkName(peerName(p));
  };

  std::shared_ptr<ShmSegment> own;
  FCCL_CHECK(ShmSegment::create(peerName(s.rank), layout.total, &own));
  // Touch every page now, from the receiving rank: the pages land on its NUMA node (first
  // touch) and the first collective pays no page faults.
  memset(own->base(), 0, layout.total);
  fcclResult_t res = s.bootstrap->barrier();  // every segment exists
  std::vector<std::shared_ptr<ShmSegment>> segs(s.nranks);
  segs[s.rank] = own;
  for (int p = 0; p < s.nranks && res == fcclSuccess; ++p) {
    if (p == s.rank) continue;
    res = ShmSegment::attach(peerName(p), layout.total, &segs[p]);
  }
  if (res == fcclSuccess) res = s.bootstrap->barrier();  // every rank mapped every segment
  if (res != fcclSuccess) {
    unlinkPeers();
    return res;  // `own` unlinks on destruction
  }
  // Every rank unlinks every segment (the second unlink of a name is a no-op), so a rank that
  // dies right after the barrier still leaves nothing behind.
  own->unlink();
  unlinkPeers();

  out->send.assign(s.nranks, SendConn());
  out->recv.assign(s.nranks, RecvConn());
  out->direct.assign(s.nranks, DirectView());
  out->boards.assign(s.nranks, nullptr);
  for (int p = 0; p < s.nranks; ++p) {
    char* peerBase = segs[p]->base();
    out->direct[p] = layout.direct(peerBase);
    out->boards[p] = layout.board(peerBase);
    if (p == s.rank) continue;
    // I send into my FIFO inside p's segment and receive from p's FIFO inside mine.
    out->send[p] = SendConn(layout.fifoCtrl(peerBase, s.rank), layout.fifoSlots(peerBase, s.rank),
                            s.shape.nslots, roundUp(s.shape.slotBytes, 64), p);
    out->recv[p] = RecvConn(layout.fifoCtrl(own->base(), p), layout.fifoSlots(own->base(), p), s.shape.nslots,
                            roundUp(s.shape.slotBytes, 64), p);
  }
  for (auto& seg : segs) out->resources.push_back(seg);
  out->transportName = "shm";
  return fcclSuccess;
}

}  // namespace fccl
