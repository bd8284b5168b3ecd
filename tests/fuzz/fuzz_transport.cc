// fuzz_transport.cc - libFuzzer target over the receive side of the transport as a hostile or
// corrupt peer drives it: the fuzz input writes the FIFO slot metadata (SlotMeta: bytes, tag,
// msgBytes) and payloads a peer posts, the peer's direct-slot headers (seq, bytes, tag) and
// data, and the pipeline-parallel header, and the real code consumes them: the ring primitives
// (collectives/prims_host.h through runRing), runDirect, runP2p and pipeCheckHeader. Everything
// lives in plain memory sized exactly, so a read past a slot is an ASan report; waits end at
// once (abort flag set, spin limit 1) instead of timing out. Invariants beyond the sanitizers:
// no slot with a wrong tag or more bytes than it holds is ever consumed; an accepted p2p
// receive holds exactly the consumed payloads; a direct allreduce's result is the sum; the
// pipeline drain size equals the sender's slice computed in 128 bits, or is refused.
// `--write-seeds=DIR` writes valid traffic for each mode, each checked to be accepted, and exits.
// Run with FCCL_DEBUG=NONE: every rejection is also a WARN line.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_main.h"

#include "collectives/coll.h"
#include "collectives/prims_host.h"
#include "collectives/prims_host_p2p.h"
#include "collectives/reduce_kernels.h"
#include "src/pipeline_wire.h"
#include "transports/fifo.h"
#include "transports/transport.h"

using namespace fccl;

namespace {

enum Mode : uint8_t {
  kRing,
  kDirect,
  kP2p,
  kPipeHeader,
  kModes
};
constexpr uint32_t kTag = 0x0c011ec7;             // the operation tag this rank expects
constexpr uint32_t kP2pTag = HostP2pPrims::kTag;  // every p2p slot's tag (collectives/prims_host_p2p.h)

#define FUZZ_ASSERT(cond)                                                                          \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "fuzz_transport: %s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

// The fuzz input, read front to back; past its end every read gives zeros.
class Input {
 public:
  Input(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  size_t left() const { return n_ - pos_; }
  void bytes(void* out, size_t n) {
    const size_t k = n < left() ? n : left();
    if (k) memcpy(out, p_ + pos_, k);
    if (n > k) memset(static_cast<char*>(out) + k, 0, n - k);
    pos_ += k;
  }
  template <class T>
  T take() {
    T v;
    bytes(&v, sizeof(v));
    return v;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

// One FIFO in plain memory: the control block and exactly nslots * slotBytes of slots.
struct Fifo {
  std::unique_ptr<FifoCtrl> ctrl{new FifoCtrl()};
  std::unique_ptr<char[]> slots;
  int nslots;
  size_t slotBytes;
  Fifo(int n, size_t bytes) : slots(new char[size_t(n) * bytes]), nslots(n), slotBytes(bytes) {
    memset(slots.get(), 0, size_t(n) * bytes);
  }
  // The peer posts up to nslots slots from the input: metadata, then a slot of payload.
  int postFrom(Input& in) {
    int posted = 0;
    while (posted < nslots && in.left() >= sizeof(SlotMeta)) {
      SlotMeta m = in.take<SlotMeta>();
      ctrl->meta[posted] = m;
      in.bytes(slots.get() + size_t(posted) * slotBytes, slotBytes);
      posted++;
    }
    ctrl->tail.store(uint64_t(posted));
    return posted;
  }
  uint64_t consumed() const { return ctrl->head.load(); }
};

// What every mode shares: two ranks, this one rank 0, waits that give up at once.
struct Rank {
  std::atomic<int> abortFlag{1};
  DirectState direct;
  Connections conns;
  DirectView views[2];
  std::vector<char> scratch;
  CollContext ctx{};

  explicit Rank(size_t chunkBytes) : scratch(chunkBytes) {
    conns.send.resize(2);
    conns.recv.resize(2);
    ctx.rank = 0;
    ctx.nranks = 2;
    ctx.conns = &conns;
    ctx.chunkBytes = chunkBytes;
    ctx.scratch = scratch.data();
    ctx.tag = kTag;
    ctx.wait.abortFlag = &abortFlag;
    ctx.wait.spinLimit = 1;
    ctx.wait.rank = 0;
    ctx.wait.opName = "fuzz";
    ctx.direct = &direct;
    ctx.directViews = views;
  }
};

// The ring primitives: every chunk received from rank 1 passes waitPrev's checks.
bool ring(Input& in) {
  const uint8_t kindSel = in.take<uint8_t>(), countSel = in.take<uint8_t>(), slotSel = in.take<uint8_t>();
  const size_t slotBytes = 16 * (1 + slotSel % 4);
  const size_t count = 1 + countSel % 32;
  const CollKind kinds[] = {CollKind::AllReduce, CollKind::ReduceScatter, CollKind::AllGather,
                            CollKind::Broadcast, CollKind::Reduce};
  CollTask t{};
  t.kind = kinds[kindSel % 5];
  t.type = fcclInt32;
  t.op = fcclSum;
  t.count = count;
  t.root = (kindSel >> 4) & 1;
  std::vector<int32_t> send(count * 2, 7), recv(count * 2, 0);
  t.send = send.data();
  t.recv = recv.data();

  Rank r(slotBytes);
  Fifo toPeer(kMaxFifoSlots, slotBytes), fromPeer(kMaxFifoSlots, slotBytes);
  r.conns.send[1] = SendConn(toPeer.ctrl.get(), toPeer.slots.get(), toPeer.nslots, slotBytes, 1);
  r.conns.recv[1] = RecvConn(fromPeer.ctrl.get(), fromPeer.slots.get(), fromPeer.nslots, slotBytes, 1);
  fromPeer.postFrom(in);
  const fcclResult_t rc = runRing(r.ctx, t);
  for (uint64_t i = 0; i < fromPeer.consumed(); i++) {
    const SlotMeta& m = fromPeer.ctrl->meta[i];
    FUZZ_ASSERT(m.tag == kTag && m.bytes <= slotBytes && m.bytes % sizeof(int32_t) == 0);
  }
  return rc == fcclSuccess;
}

// The direct algorithm: rank 1's header and data are the input's.
bool direct(Input& in) {
  const uint8_t kindSel = in.take<uint8_t>(), countSel = in.take<uint8_t>(), seqSel = in.take<uint8_t>();
  constexpr size_t kDirectBytes = 128;
  const CollKind kinds[] = {CollKind::AllReduce, CollKind::Reduce,   CollKind::ReduceScatter,
                            CollKind::AllGather, CollKind::AlltoAll, CollKind::Broadcast};
  CollTask t{};
  t.kind = kinds[kindSel % 6];
  t.type = fcclInt32;
  t.op = fcclSum;
  t.count = countSel % 17;  // at most 2 x 16 int32 published: fits kDirectBytes
  t.root = (kindSel >> 4) & 1;
  std::vector<int32_t> send(32), recv(32, 0);
  for (size_t i = 0; i < send.size(); i++) send[i] = int32_t(i * 3 + 1);
  t.send = send.data();
  t.recv = recv.data();

  Rank r(64);
  r.ctx.directBytes = kDirectBytes;
  r.direct.seq = seqSel % 4;
  r.direct.lastReadAll = (seqSel >> 4) & 1;
  std::unique_ptr<DirectCtrl> ctrl[2] = {std::make_unique<DirectCtrl>(), std::make_unique<DirectCtrl>()};
  std::unique_ptr<DirectSlotHeader> hdr[2][2];
  std::unique_ptr<char[]> data[2][2];
  for (int p = 0; p < 2; p++) {
    ctrl[p]->doneSeq.store(p == 1 ? in.take<uint64_t>() : 0);
    r.views[p].ctrl = ctrl[p].get();
    for (int k = 0; k < 2; k++) {
      hdr[p][k] = std::make_unique<DirectSlotHeader>();
      data[p][k].reset(new char[kDirectBytes]);
      memset(data[p][k].get(), 0, kDirectBytes);
      if (p == 1) {
        hdr[p][k]->seq.store(in.take<uint64_t>());
        hdr[p][k]->bytes = in.take<uint32_t>();
        hdr[p][k]->tag = in.take<uint32_t>();
        in.bytes(data[p][k].get(), kDirectBytes);
      } else {
        hdr[p][k]->seq.store(0);
      }
      r.views[p].header[k] = hdr[p][k].get();
      r.views[p].data[k] = data[p][k].get();
    }
  }
  const uint64_t seq = r.direct.seq + 1;
  const int k = int(seq & 1);
  const uint64_t peerSeq = hdr[1][k]->seq.load();
  const uint32_t peerBytes = hdr[1][k]->bytes, peerTag = hdr[1][k]->tag;
  if (runDirect(r.ctx, t) != fcclSuccess) return false;
  const bool readsPeer =
      t.kind == CollKind::Broadcast ? t.root == 1 : t.kind != CollKind::Reduce || t.root == 0;
  if (!readsPeer) return true;
  FUZZ_ASSERT(peerSeq == seq && peerTag == kTag && peerBytes == directPublishBytes(t, 2));
  if (t.kind == CollKind::AllReduce) {
    int32_t peer[32];
    memcpy(peer, data[1][k].get(), t.count * sizeof(int32_t));
    for (size_t i = 0; i < t.count; i++)
      FUZZ_ASSERT(recv[i] == int32_t(uint32_t(send[i]) + uint32_t(peer[i])));
  }
  return true;
}

// Point-to-point: a receive (and a send) with rank 1; the peer's slots are the input's.
bool p2p(Input& in) {
  const uint8_t recvSel = in.take<uint8_t>(), sendSel = in.take<uint8_t>(), shapeSel = in.take<uint8_t>();
  const int nslots = 1 + shapeSel % 16;
  const size_t slotBytes = 8 * (1 + (shapeSel >> 4) % 8);
  const size_t recvBytes = 1 + recvSel;
  const size_t sendBytes = sendSel % 64;
  std::vector<uint8_t> sendBuf(64, 0x11);
  std::unique_ptr<uint8_t[]> recvBuf(new uint8_t[recvBytes]);  // exactly: an overflow is reported
  memset(recvBuf.get(), 0, recvBytes);

  Rank r(slotBytes);
  Fifo toPeer(kMaxFifoSlots, slotBytes), fromPeer(nslots, slotBytes);
  r.conns.send[1] = SendConn(toPeer.ctrl.get(), toPeer.slots.get(), toPeer.nslots, slotBytes, 1);
  r.conns.recv[1] = RecvConn(fromPeer.ctrl.get(), fromPeer.slots.get(), fromPeer.nslots, slotBytes, 1);
  fromPeer.postFrom(in);
  // Keep what the peer posted: the receive must deliver exactly these payloads.
  std::vector<SlotMeta> metas(fromPeer.ctrl->meta, fromPeer.ctrl->meta + nslots);
  std::vector<char> posted(fromPeer.slots.get(), fromPeer.slots.get() + size_t(nslots) * slotBytes);

  CollTask tasks[2] = {};
  int ntasks = 0;
  tasks[ntasks].kind = CollKind::Recv;
  tasks[ntasks].recv = recvBuf.get();
  tasks[ntasks].count = recvBytes;
  tasks[ntasks].type = fcclUint8;
  tasks[ntasks++].root = 1;
  if (sendBytes > 0) {
    tasks[ntasks].kind = CollKind::Send;
    tasks[ntasks].send = sendBuf.data();
    tasks[ntasks].count = sendBytes;
    tasks[ntasks].type = fcclUint8;
    tasks[ntasks++].root = 1;
  }
  const fcclResult_t rc = runP2p(r.ctx, tasks, size_t(ntasks));
  size_t got = 0;
  for (uint64_t i = 0; i < fromPeer.consumed(); i++) {
    const SlotMeta& m = metas[i];
    FUZZ_ASSERT(m.tag == kP2pTag && m.bytes >= 1 && m.bytes <= slotBytes && m.msgBytes == recvBytes);
    FUZZ_ASSERT(got + m.bytes <= recvBytes);
    FUZZ_ASSERT(memcmp(recvBuf.get() + got, posted.data() + i * slotBytes, m.bytes) == 0);
    got += m.bytes;
  }
  if (rc == fcclSuccess) FUZZ_ASSERT(got == recvBytes);
  return rc == fcclSuccess;
}

// The pipeline header a ppComm peer sends: the verdict against an independent 128-bit oracle.
bool pipeHeader(Input& in) {
  const uint8_t typeSel = in.take<uint8_t>(), tpSel = in.take<uint8_t>();
  const size_t count = in.take<uint64_t>() % (uint64_t(1) << 40);
  const fcclDataType_t type = static_cast<fcclDataType_t>(typeSel % fcclNumTypes);
  const int tpSize = 1 + tpSel % 8, tpRank = (tpSel >> 3) % tpSize;
  const PipeHeader h = in.take<PipeHeader>();
  using u128 = unsigned __int128;
  // fcclSliceRange in 128 bits: [min(c, r*S), min(c, (r+1)*S)), S = ceil(c/n).
  auto slice = [](u128 c, u128 r, u128 n, u128* begin, u128* end) {
    const u128 s = (c + n - 1) / n;
    *begin = r * s < c ? r * s : c;
    *end = (r + 1) * s < c ? (r + 1) * s : c;
  };
  u128 b, e;
  slice(count, u128(tpRank), u128(tpSize), &b, &e);
  const PipeRange own = pipeSliceOf(count, tpRank, tpSize);
  FUZZ_ASSERT(u128(own.begin) == b && u128(own.end) == e);

  const PipeCheck v = pipeCheckHeader(h, count, type, tpRank, tpSize);
  if (h.magic != kPipeMagic) {
    FUZZ_ASSERT(v.kind == PipeCheck::kNotPipe);
    return false;
  }
  if (h.count == count && h.type == uint64_t(type) && h.tpSize == uint64_t(tpSize) &&
      h.tpRank == uint64_t(tpRank)) {
    FUZZ_ASSERT(v.kind == PipeCheck::kMatch);
    return true;
  }
  FUZZ_ASSERT(v.kind == PipeCheck::kMismatch);
  const bool sane =
      h.type < uint64_t(fcclNumTypes) && h.tpSize > 0 && h.tpSize <= 0x7fffffff && h.tpRank < h.tpSize;
  if (!sane) {
    FUZZ_ASSERT(v.drainBytes == SIZE_MAX);
    return false;
  }
  slice(h.count, h.tpRank, h.tpSize, &b, &e);
  const u128 bytes = (e - b) * u128(dtypeSize(static_cast<fcclDataType_t>(h.type)));
  if (bytes <= u128(pipeDrainCap(count, type)))
    FUZZ_ASSERT(u128(v.drainBytes) == bytes);
  else
    FUZZ_ASSERT(v.drainBytes == SIZE_MAX);
  return v.drainBytes != SIZE_MAX;  // a mismatch the receiver can drain: handled
}

bool runOne(const uint8_t* data, size_t size) {
  if (size < 1) return false;
  Input in(data + 1, size - 1);
  switch (data[0] % kModes) {
    case kRing:
      return ring(in);
    case kDirect:
      return direct(in);
    case kP2p:
      return p2p(in);
    case kPipeHeader:
      return pipeHeader(in);
  }
  return false;
}

// ---- seeds: valid traffic for each mode ----

using fuzzmain::append;
void appendBytes(std::vector<uint8_t>* s, size_t n, uint8_t first) {
  for (size_t i = 0; i < n; i++) s->push_back(uint8_t(first + i));
}

std::vector<fuzzmain::Seed> seeds() {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> out;
  {
    // AllReduce of 4 int32 in 16-byte slots: rank 1 sends its partial of slice 0, then the
    // final slice 1 (2 elements each).
    std::vector<uint8_t> s{kRing, 0, 3, 0};
    for (int i = 0; i < 2; i++) {
      append(&s, SlotMeta{8, kTag, 0});
      appendBytes(&s, 16, uint8_t(i * 16));
    }
    out.push_back({"ring_allreduce", s});
  }
  {
    // AllGather of 3 int32 in 16-byte slots: rank 1's block in one chunk.
    std::vector<uint8_t> s{kRing, 2, 2, 0};
    append(&s, SlotMeta{12, kTag, 0});
    appendBytes(&s, 16, 1);
    out.push_back({"ring_allgather", s});
  }
  {
    // Direct AllReduce of 4 int32, the first direct operation (seq 1, slot 1).
    std::vector<uint8_t> s{kDirect, 0, 4, 0};
    append(&s, uint64_t(0));  // rank 1's doneSeq
    for (int k = 0; k < 2; k++) {
      append(&s, uint64_t(k));  // slot 1 holds seq 1
      append(&s, uint32_t(k ? 16 : 0));
      append(&s, k ? kTag : 0u);
      appendBytes(&s, 128, uint8_t(k * 50));
    }
    out.push_back({"direct_allreduce", s});
  }
  {
    // fcclRecv of 20 bytes in 16-byte slots (4 slots), plus an fcclSend of 10 bytes.
    std::vector<uint8_t> s{kP2p, 19, 10, 0x13};
    append(&s, SlotMeta{16, kP2pTag, 20});
    appendBytes(&s, 16, 100);
    append(&s, SlotMeta{4, kP2pTag, 20});
    appendBytes(&s, 16, 200);
    out.push_back({"p2p_recv", s});
  }
  {
    // fcclRecvAllGather of 1000 float32 as tp rank 1 of 2: the matching header, and one from a
    // sender with another count (its slice is drained).
    for (uint64_t count : {1000, 999}) {
      std::vector<uint8_t> s{kPipeHeader, uint8_t(fcclFloat32), 1 | 1 << 3};
      append(&s, uint64_t(1000));
      append(&s, PipeHeader{kPipeMagic, count, uint64_t(fcclFloat32), 2, 1});
      out.push_back({count == 1000 ? "pipe_header" : "pipe_header_mismatch", s});
    }
  }
  return out;
}

}  // namespace

FCCL_FUZZ_MAIN("fuzz_transport")
