// transport.h - how bytes move between two ranks, seen from above: every transport hands the
// communicator the same things, a SendConn/RecvConn FIFO per peer (transports/fifo.h) and a
// view of each peer's direct-publication region. Algorithms only ever see those.
//
// Registry (selection order): shm for peers with the same host hash. Peers on other hosts
// need the socket transport, which is not built yet: setup fails with a clear error.
#pragma once
#include <atomic>
#include <memory>
#include <vector>
#include "transports/fifo.h"

namespace fccl {

class Bootstrap;
struct PeerInfo;

// A rank's publication area for the latency ("direct") algorithm: two slots used
// alternately by operation sequence number, each a 16-byte header followed directly by the
// payload, so a small message and its flag share one cache line (one miss for the reader).
struct DirectSlotHeader {
  std::atomic<uint64_t> seq;  // the direct-operation number whose data is in the slot
  uint32_t bytes;
  uint32_t tag;
};
static_assert(sizeof(DirectSlotHeader) == 16, "payload starts 16 bytes into the slot");
struct alignas(64) DirectCtrl {
  std::atomic<uint64_t> doneSeq;  // the last direct operation this rank finished reading for
};

// What a rank tells its peers about itself, in its own segment (meaning and protocol:
// src/callboard.h): a lifecycle state with the sentence of its first failure, the last
// collective it finished, and its last few calls. Words only, so peers may read while the owner
// writes (each record is a seqlock: begin, fields, end).
constexpr int kCallRecords = 4;  // calls kept, indexed by sequence number
constexpr int kCallTextWords = 24;
struct CallRecordWords {
  std::atomic<uint64_t> begin;    // sequence number, written first
  std::atomic<uint64_t> word[6];  // the call (src/callboard.cc packs it)
  std::atomic<uint64_t> end;      // sequence number, written last
};
struct alignas(64) CallBoard {
  std::atomic<uint32_t> state;                 // CallBoardState
  std::atomic<uint64_t> doneSeq;               // the last collective this rank finished
  std::atomic<uint64_t> text[kCallTextWords];  // why it failed or closed (written before state)
  alignas(64) CallRecordWords calls[kCallRecords];
};

struct DirectView {
  DirectCtrl* ctrl = nullptr;
  DirectSlotHeader* header[2] = {nullptr, nullptr};
  char* data[2] = {nullptr, nullptr};
};

struct FifoShape {
  int nslots;
  size_t slotBytes;
  size_t directBytes;  // payload bytes of each direct slot
};

// Everything a communicator needs to talk to its peers.
struct Connections {
  std::vector<SendConn> send;                    // [peer]; send[rank] unused
  std::vector<RecvConn> recv;                    // [peer]
  std::vector<DirectView> direct;                // [peer], direct[rank] is this rank's own area
  std::vector<CallBoard*> boards;                // [peer], boards[rank] is this rank's own
  std::vector<std::shared_ptr<void>> resources;  // keeps mappings alive
  const char* transportName = "";
};

struct TransportSetup {
  int rank;
  int nranks;
  uint64_t commHash;
  Bootstrap* bootstrap;
  const std::vector<PeerInfo>* peers;
  FifoShape shape;
};

// Picks and sets up the transport for every peer (see the registry above).
fcclResult_t transportsSetup(const TransportSetup& setup, Connections* out);

}  // namespace fccl
