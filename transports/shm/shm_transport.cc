// shm_transport.cc - the shared-memory transport. Each rank creates one segment holding its
// status area, its direct-publication area and the FIFOs it receives on (one per peer rank);
// its blob is the segment's name, and peers map the segment by that name. Once every rank
// has mapped every segment (the core's barrier, then connected()) each rank unlinks every
// name, so a crash later leaves nothing behind in /dev/shm; a setup that fails unlinks what
// it can name, and abandon() also sweeps this communicator's names from /dev/shm, which
// covers a peer that died between creating its segment and the exchange.
// Ranks that are threads of one process share one mapping of each segment (shm_segment.h).
//
// Segment layout: [status][direct area][nranks x (FifoCtrl + nslots x slotBytes)]
#include "transports/shm/shm_transport.h"
#include <dirent.h>
#include <unistd.h>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include "src/base/checks.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "transports/shm/shm_segment.h"

namespace fccl {
namespace {

constexpr size_t kNameBytes = 96;
static_assert(kNameBytes <= kConnectBlobBytes, "the segment name is the blob");

size_t roundUp(size_t x, size_t a) { return (x + a - 1) / a * a; }

struct Layout {
  size_t status;  // the status area, then the direct area, then the FIFOs
  size_t direct;
  size_t fifo;  // one FIFO: control + slots
  size_t fifosOffset;
  size_t slotBytes;
  size_t total;

  Layout(const FifoShape& s, int nranks) {
    status = roundUp(s.statusBytes, 64);
    direct = roundUp(s.directAreaBytes, 64);
    slotBytes = roundUp(s.slotBytes, 64);
    fifo = roundUp(sizeof(FifoCtrl), 64) + size_t(s.nslots) * slotBytes;
    fifosOffset = status + direct;
    total = fifosOffset + size_t(nranks) * fifo;
  }
  SharedArea statusArea(char* base) const { return {base, status}; }
  SharedArea directArea(char* base) const { return {base + status, direct}; }
  FifoCtrl* fifoCtrl(char* base, int peer) const {
    return reinterpret_cast<FifoCtrl*>(base + fifosOffset + size_t(peer) * fifo);
  }
  char* fifoSlots(char* base, int peer) const {
    return base + fifosOffset + size_t(peer) * fifo + roundUp(sizeof(FifoCtrl), 64);
  }
};

std::atomic<uint64_t> segmentCounter{0};  // makes names unique within a process

class ShmComm final : public TransportComm {
 public:
  explicit ShmComm(const TransportContext& ctx) : ctx_(ctx), layout_(ctx.shape, ctx.nranks) {}

  fcclResult_t setup(ConnectBlob* blob) override {
    char name[kNameBytes];
    snprintf(name, sizeof(name), "%s%d-%" PRIu64, prefix(ctx_.rank).c_str(), (int)getpid(),
             segmentCounter.fetch_add(1));
    FCCL_CHECK(ShmSegment::create(name, layout_.total, &own_));
    // Touch every page now, from the receiving rank: the pages land on its NUMA node (first
    // touch) and the first collective pays no page faults.
    memset(own_->base(), 0, layout_.total);
    memset(blob->bytes, 0, sizeof(blob->bytes));
    memcpy(blob->bytes, name, strlen(name));
    return fcclSuccess;
  }

  fcclResult_t connect(const ConnectBlob* const* blobs, Connections* conns) override {
    char* mine = own_->base();
    conns->status[ctx_.rank] = layout_.statusArea(mine);
    conns->direct[ctx_.rank] = layout_.directArea(mine);
    for (int p : ctx_.links) {
      std::string name;
      FCCL_CHECK(peerName(blobs, p, &name));
      std::shared_ptr<ShmSegment> seg;
      FCCL_CHECK(ShmSegment::attach(name, layout_.total, &seg));
      char* base = seg->base();
      peers_.push_back(std::move(seg));
      peerNames_.push_back(name);
      conns->status[p] = layout_.statusArea(base);
      conns->direct[p] = layout_.directArea(base);
      // I send into my FIFO inside p's segment and receive from p's FIFO inside mine.
      conns->send[p] = SendConn(layout_.fifoCtrl(base, ctx_.rank), layout_.fifoSlots(base, ctx_.rank),
                                ctx_.shape.nslots, layout_.slotBytes, p);
      conns->recv[p] = RecvConn(layout_.fifoCtrl(mine, p), layout_.fifoSlots(mine, p), ctx_.shape.nslots,
                                layout_.slotBytes, p);
    }
    return fcclSuccess;
  }

  // Every rank unlinks every name (the second unlink of a name is a no-op), so a rank that
  // dies right after the barrier still leaves nothing behind.
  void connected() override {
    own_->unlink();
    for (const std::string& n : peerNames_) ShmSegment::unlinkName(n);
  }

  void abandon(const ConnectBlob* const* blobs) override {
    if (own_) own_->unlink();
    for (int p : ctx_.links) {
      std::string name;
      if (blobs != nullptr && peerName(blobs, p, &name) == fcclSuccess) ShmSegment::unlinkName(name);
      sweep(p);
    }
  }

 private:
  // "/fccl-<comm>-r<rank>-p": every segment name of that rank of this communicator starts so.
  std::string prefix(int rank) const {
    char p[kNameBytes];
    snprintf(p, sizeof(p), "/%s-%016" PRIx64 "-r%d-p", env().shmDir.c_str(), ctx_.commHash, rank);
    return p;
  }

  // Rank p's segment name from its blob; never trusted: it must carry p's prefix (a hostile
  // or corrupted peer must not make us map or unlink anything else).
  fcclResult_t peerName(const ConnectBlob* const* blobs, int p, std::string* out) const {
    const char* b = reinterpret_cast<const char*>(blobs[p]->bytes);
    const std::string name(b, strnlen(b, kNameBytes - 1));
    const std::string want = prefix(p);
    if (name.compare(0, want.size(), want) != 0)
      return setError(fcclInternalError,
                      "rank %d: shm: rank %d's segment name \"%s\" is not of this communicator", ctx_.rank, p,
                      name.c_str());
    *out = name;
    return fcclSuccess;
  }

  // Unlinks rank p's segments of this communicator that /dev/shm still lists (Linux keeps
  // POSIX shared memory there).
  void sweep(int p) const {
    const std::string want = prefix(p).substr(1);  // /dev/shm lists names without the '/'
    DIR* d = opendir("/dev/shm");
    if (d == nullptr) return;
    while (dirent* e = readdir(d))
      if (strncmp(e->d_name, want.c_str(), want.size()) == 0)
        ShmSegment::unlinkName(std::string("/") + e->d_name);
    closedir(d);
  }

  const TransportContext ctx_;
  const Layout layout_;
  std::shared_ptr<ShmSegment> own_;
  std::vector<std::shared_ptr<ShmSegment>> peers_;  // keeps the mappings for the comm's life
  std::vector<std::string> peerNames_;
};

bool sameHost(const PeerInfo& a, const PeerInfo& b) { return a.hostHash == b.hostHash && !env().shmDisable; }

std::unique_ptr<TransportComm> createShm(const TransportContext& ctx) {
  return std::make_unique<ShmComm>(ctx);
}

}  // namespace

const Transport kShmTransport{"shm", sameHost, createShm};

}  // namespace fccl
