// coll.h - the entry points of the algorithm layer: a task (what to compute) and a context
// (this rank's connectors, scratch, sequence state), and one run function per algorithm
// family. The executor in src/ picks the algorithm; nothing here reads the environment.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>
#include "collectives/direct.h"
#include "fccl.h"
#include "src/base/wait.h"
#include "transports/transport.h"

namespace fccl {

enum class CollKind : uint8_t {
  AllReduce = 1,
  Reduce,
  Broadcast,
  ReduceScatter,
  AllGather,
  AlltoAll,
  Send,
  Recv,
  // Internal, for fused programs: the IR's sliced partition (collectives/sliced_ring.h).
  // count is the logical length N; the slice side is this rank's slice storage.
  ReduceScatterSliced,
  AllGatherSliced,
};
const char* collName(CollKind k);  // "AllReduce", ...

struct CollTask {
  CollKind kind;
  const void* send;
  void* recv;
  size_t count;  // NCCL's count argument (per-rank block for ReduceScatter / AllGather / AlltoAll)
  fcclDataType_t type;
  fcclRedOp_t op;                      // base op: sum / prod / max / min
  const void* premulScalar = nullptr;  // PreMulSum: scale inputs by this value of `type`
  bool premulInDevice = false;         // premulScalar is the user's pointer (fcclScalarDevice)
  int avgDivisor = 1;                  // Avg: divide the sum by this
  int root = 0;                        // Reduce / Broadcast root, or Send / Recv peer
  fcclReady* sendReady = nullptr;      // fcclAllReduceOverlap: read send chunks once marked ready
  void* stream = nullptr;              // a device communicator's CUDA stream (host: unused)
};

// Sequencing state of the direct algorithm (see direct.cc).
struct DirectState {
  uint64_t seq = 0;
  bool lastReadAll = true;
};

struct CollContext {
  int rank;
  int nranks;
  Connections* conns;
  size_t chunkBytes;   // FIFO slot bytes
  size_t directBytes;  // capacity of a direct slot
  char* scratch;       // chunkBytes of scratch
  uint32_t tag;        // operation tag checked on the wire
  WaitContext wait;
  DirectState* direct;
  const DirectView* directViews;  // [rank]: each rank's direct area (direct.h)
  // The ring algorithms' ring: ring[i] is the rank at position i, and rank / nranks above are
  // this rank's position and the ring's length. Null: every rank, in rank order.
  const int* ring = nullptr;
};

// One ring over some of the communicator's ranks: ranks[i] at position i, this rank at pos.
struct RingView {
  const int* ranks;
  int n;
  int pos;
};

// Bytes this rank publishes for the direct algorithm (must fit directBytes).
size_t directPublishBytes(const CollTask& t, int nranks);

fcclResult_t runRing(CollContext& ctx, const CollTask& t);
// The ring with a run-time hook at the reduced point (AllReduce, ReduceScatter, Reduce):
// how fused programs run inside a collective. Returns the hook's first failure if any.
struct FnHook;
fcclResult_t runRingHooked(CollContext& ctx, const CollTask& t, FnHook& hook);
fcclResult_t runDirect(CollContext& ctx, const CollTask& t);
// AllReduce by exchanging the whole (tiny) inputs and reducing locally (allreduce_exchange.cc):
// for peers across hosts, where the direct algorithm's shared areas do not exist.
constexpr size_t kExchangeMaxBytes = 4096;
bool exchangeFits(const CollTask& t, int nranks, size_t scratchBytes);
fcclResult_t runExchangeAllReduce(CollContext& ctx, const CollTask& t);
// Two-level AllReduce (allreduce_hier.cc): reduce-scatter on `local` (this host's ranks), an
// allreduce of this rank's slice on `cross` (the ranks of the same local position on every
// host), all-gather on `local`. Needs local.n >= 2 and cross.n >= 2.
fcclResult_t runHierAllReduce(CollContext& ctx, const CollTask& t, const RingView& local,
                              const RingView& cross);
// A batch of Send/Recv tasks (and AlltoAll expanded into them) progressing together.
fcclResult_t runP2p(CollContext& ctx, const CollTask* tasks, size_t ntasks);
// AlltoAll as a p2p batch: block p of sendbuff to rank p, block p of recvbuff from rank p (the
// host executor and the CUDA backend both run it so).
std::vector<CollTask> alltoAllAsP2p(const CollTask& t, int nranks);

}  // namespace fccl
