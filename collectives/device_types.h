// device_types.h - the plain data the CUDA backend's kernels share with the host code that
// sets them up (src/cuda/): connections, channels, the error word, the communicator view and a
// launch's arguments. No device code here, so ordinary C++ includes it too.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fccl::dev {

constexpr int kFifoSlots = 8;

// The low-latency protocol (prims_device_ll.cuh): per slot kLLSlotBytes of 16-byte lines, each
// carrying kLLLineData bytes of data beside two copies of the step's flag.
constexpr size_t kLLSlotBytes = 16 * 1024;
constexpr size_t kLLLineData = 8;
struct alignas(16) LLLine {
  uint32_t data1, flag1, data2, flag2;
};
// Which primitives a collective kernel runs on: the bandwidth protocol (DevPrims, NCCL's
// Simple) or the low-latency one (DevLLPrims, NCCL's LL).
enum class DevProto : int {
  Simple = 0,
  LL = 1
};
// One direction of one channel's ring link. Each counter sits on its own 128-byte line.
struct DevConn {
  char* slots;     // kFifoSlots * slotBytes, written by the sender, read by the receiver
  uint64_t* tail;  // slots posted by the sender
  uint64_t* head;  // slots freed by the receiver
  char* llSlots;   // kFifoSlots * kLLSlotBytes of LLLine (ring channels; null for p2p)
};

struct DevChannel {
  DevConn send;       // to the next rank of the ring
  DevConn recv;       // from the previous rank
  uint64_t sendStep;  // steps this rank has done on each connection, kept across kernels
  uint64_t recvStep;
};

enum class DevWait : int {
  None = 0,
  Data = 1,
  FreeSlot = 2
};

// The first error a kernel of this rank hit; host-mapped, read after the stream completes.
struct DevError {
  int code;     // fcclResult_t; 0 = none
  int aborted;  // 1 = fcclCommAbort's flag, 0 = the timeout
  int channel;
  int peer;
  int waitingFor;  // DevWait
  unsigned long long step;
};

// What a kernel knows of its communicator: plain data, copied into every launch.
struct DevComm {
  int rank;
  int nranks;
  int nchannels;
  size_t slotBytes;
  DevChannel* channels;           // device memory, nchannels entries
  const volatile int* abortFlag;  // host-mapped; non-zero: stop waiting
  DevError* error;                // host-mapped
  unsigned long long timeoutNs;   // 0 = no timeout
};

// The collectives of the kernels (device_kernels.cuh collectiveBody).
enum class DevColl : int {
  AllReduce,
  ReduceScatter,
  AllGather,
  Broadcast,
  Reduce,
  ReduceScatterSliced,
  AllGatherSliced,
};

// One launch's arguments (a kernel parameter: plain data).
struct DevCollArgs {
  DevComm comm;
  const void* send;
  void* recv;
  size_t count;       // as RingArgs::count
  size_t chunkElems;  // at most one FIFO slot
  int root;
  int avgDivisor;  // > 1: fcclAvg's kernels divide each reduced element by it
  // PreMulSum kernels: each rank's input scaled by its scalar, read from premulPtr (device
  // memory) or, when that is null, from premulValue (a value of the element type).
  const void* premulPtr;
  alignas(8) unsigned char premulValue[8];
};

// Threads per CTA of every collective kernel (its __launch_bounds__).
constexpr int kDevThreads = 512;

// Point-to-point: one CTA per (peer, direction) of a launch, on the peer's own channel (a
// DevComm whose channels are indexed by peer: send = our FIFO in the peer's memory, recv = the
// peer's FIFO in ours).
constexpr int kMaxP2pTasks = 64;
struct DevP2pTask {
  char* buf;     // the message (send: read; recv: written)
  size_t bytes;  // > 0
  int peer;      // != this rank
  int isSend;
};
struct DevP2pArgs {
  DevComm comm;  // channels: the p2p channels, indexed by peer
  int ntasks;    // CTAs of the launch
  DevP2pTask tasks[kMaxP2pTasks];
};

}  // namespace fccl::dev
