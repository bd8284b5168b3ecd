// transport.h - how bytes move between two ranks, seen from the core. Each transport is one
// folder (shm/, later socket/, cuda_ipc/ ...) behind this interface, and one entry of the
// registry (transports/registry.cc), which also gives the selection order. For every pair of
// ranks the core takes the first transport whose canConnect accepts both peers' PeerInfo, then
// drives each transport it uses through one lifecycle (src/transport_setup.cc), on the thread
// that initializes the communicator:
//   create -> setup (local resources, described in a fixed-size ConnectBlob)
//   -> the core all-gathers every rank's blobs through the bootstrap
//   -> connect (reach each peer through its blob; fill the peer's connectors)
//   -> a bootstrap barrier -> connected (drop what only setup needed)
//   abandon replaces the rest when any step fails on this rank; close ends a working one.
// Afterwards the algorithms see only the connectors (transports/fifo.h SendConn / RecvConn,
// the same for every transport) and the optional capabilities below; a transport with a helper
// thread asks the core for progress() calls, and reports a peer it lost (peerLost) to the waits'
// slow path. Nothing here knows collectives, call boards or the bootstrap.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include "src/base/peer_info.h"
#include "src/base/socket.h"
#include "src/base/wait.h"
#include "transports/fifo.h"

namespace fccl {

// What a rank's transport tells its peers at setup: a segment name, a listening address...
constexpr size_t kConnectBlobBytes = 256;
struct ConnectBlob {
  unsigned char bytes[kConnectBlobBytes];
};
static_assert(sizeof(ConnectBlob) == kConnectBlobBytes, "blobs travel as fixed-size blocks");

// Memory of a peer this rank can load from and store to directly; null when not offered.
struct SharedArea {
  char* base = nullptr;
  size_t bytes = 0;
};

// The sizes every connection of a communicator is set up with (the core's tuning).
struct FifoShape {
  int nslots;
  size_t slotBytes;
  size_t directAreaBytes;  // capability `direct`: the latency algorithm's area (collectives/direct.h)
  size_t statusBytes;      // capability `status`: the core's call board (src/callboard.h)
};

// Everything a communicator's algorithms use to talk to their peers, indexed by peer rank.
struct Connections {
  std::vector<SendConn> send;  // [peer]; send[rank] unused
  std::vector<RecvConn> recv;  // [peer]
  // Optional capabilities, [peer] with entry [rank] this rank's own area; {} where the peer's
  // transport does not offer it. Peers' areas are read and written with atomics only.
  std::vector<SharedArea> direct;  // each rank's publication area, read in place by its peers
  std::vector<SharedArea> status;  // each rank's status words, read by its peers' waits
  std::vector<const char*> via;    // [peer] the name of the transport that connects it
};

// What a transport knows of the communicator it serves.
struct TransportContext {
  int rank;
  int nranks;
  uint64_t commHash;
  const PeerInfo* peers;   // [nranks], as the bootstrap exchanged them
  std::vector<int> links;  // the peers this transport connects (never `rank`)
  FifoShape shape;
  WaitContext wait;  // for bounded, abortable waits during setup
  // For network transports: the address (port 0) and interface this rank's bootstrap listens
  // on, and the unique id's secret that every data connection must prove.
  SocketAddress localAddr{};
  std::string localIfname;
  uint8_t secret[32] = {};
};

// One transport's state on one communicator. The core calls every method from the thread
// that owns the communicator, except progress() (the core's progress thread) and peerLost()
// (any thread in a wait's slow path); the object lives until the communicator is freed.
class TransportComm {
 public:
  virtual ~TransportComm() = default;
  // Creates this rank's resources for ctx.links and describes them in *blob for the peers.
  virtual fcclResult_t setup(ConnectBlob* blob) = 0;
  // blobs[r]: rank r's blob (every rank's setup finished). Reaches each peer of ctx.links and
  // fills conns->send/recv[p] (and, where offered, direct/status for p and for this rank).
  virtual fcclResult_t connect(const ConnectBlob* const* blobs, Connections* conns) = 0;
  // Every rank connected (a barrier passed): release what only setup needed.
  virtual void connected() {}
  // setup or connect failed, here or on a peer: remove what could outlive every process (shm:
  // names in /dev/shm, ours and the peers'). blobs is null when the exchange did not happen.
  virtual void abandon(const ConnectBlob* const* blobs) { (void)blobs; }
  // Transports that move data on a helper thread (sockets) return true; the core then calls
  // progress() in a loop on its progress thread; *busy: whether anything moved.
  virtual bool needsProgress() const { return false; }
  virtual fcclResult_t progress(bool* busy) {
    *busy = false;
    return fcclSuccess;
  }
  // The rank's thread, while it waits in a collective: move data now if that saves waiting for a
  // helper thread (sockets: step the lanes a helper is not stepping). Never blocks; true if
  // anything moved. Called from the thread that owns the communicator only.
  virtual bool drive() { return false; }
  // The rank's call returns while what it posted last may still sit in its send FIFOs (a send
  // is done once posted): hand it to whatever moves it now (sockets: wake sleeping helpers),
  // so no peer waits for the progress thread's next round. Never blocks. The rank's thread only.
  virtual void kick() {}
  // The communicator is about to be freed (after progress() stopped): finish handing over what
  // the rank posted (bounded by the timeout; not after an abort), then stop helper threads.
  virtual void close(bool aborted) { (void)aborted; }
  // Whether `peer` can no longer be reached (its connection closed): then *why says how.
  virtual bool peerLost(int peer, std::string* why) const {
    (void)peer, (void)why;
    return false;
  }
};

struct Transport {
  const char* name;
  // Whether this transport connects ranks described by a and b (symmetric).
  bool (*canConnect)(const PeerInfo& a, const PeerInfo& b);
  std::unique_ptr<TransportComm> (*create)(const TransportContext& ctx);
};

// The transports in selection order (transports/registry.cc).
extern const Transport* const kTransports[];
extern const int kNumTransports;

}  // namespace fccl
