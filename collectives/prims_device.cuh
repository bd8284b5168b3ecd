// prims_device.cuh - the primitives of the CUDA backend, bandwidth protocol (NCCL's "Simple"):
// the named operations of prims_host.h, each run by every thread of one CTA (one channel) on
// one chunk of at most one FIFO slot, so the ring templates of collectives/*_ring.h drive a GPU
// exactly as they drive the host.
//
// A connection is a FIFO of kFifoSlots slots plus two step counters: `tail` (slots the sender
// has filled; written by the sender's thread 0 after a system fence) and `head` (slots the
// receiver has drained). Counters only grow, across kernels too: a channel's steps are loaded
// at kernel start and saved at its end (DevChannel). Thread 0 does every wait, the CTA
// barrier hands its result to the other threads; data moves in 16-byte packs, loaded with
// ld.global.cg so that a slot refilled by the peer is never read from a stale L1 line.
//
// Every wait is bounded: thread 0 polls the host-mapped abort flag and the global timer every
// kPollsPerCheck polls, and on abort or timeout records the first error in the host-mapped
// DevError (which rank, channel, peer, step, what it waited for) and the whole CTA returns the
// error up through the algorithm.
#pragma once
#include <cstdint>

#include "collectives/device_types.h"
#include "collectives/reduce_device.cuh"
#include "collectives/ring.h"

namespace fccl::dev {

constexpr int kPollsPerCheck = 1024;

__device__ __forceinline__ uint64_t loadVolatile(const uint64_t* p) {
  return *reinterpret_cast<const volatile uint64_t*>(p);
}
__device__ __forceinline__ void storeVolatile(uint64_t* p, uint64_t v) {
  *reinterpret_cast<volatile uint64_t*>(p) = v;
}
__device__ __forceinline__ unsigned long long globalTimerNs() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// The waits of both protocols end alike: on the host-mapped abort flag, or once the
// communicator's timeout has passed since `start`. 0 while neither; else the code, and the
// rank's first failure (which channel, peer, step and what it waited for) goes to DevError.
__device__ inline int devWaitFailed(const DevComm& comm, int channel, unsigned long long start, DevWait what,
                                    int peer, uint64_t step) {
  const bool aborted = *comm.abortFlag != 0;
  const bool late = comm.timeoutNs != 0 && globalTimerNs() - start > comm.timeoutNs;
  if (!aborted && !late) return 0;
  const int code = aborted ? fcclRemoteError : fcclSystemError;
  if (atomicCAS(&comm.error->code, 0, code) == 0) {
    comm.error->aborted = aborted ? 1 : 0;
    comm.error->channel = channel;
    comm.error->peer = peer;
    comm.error->waitingFor = static_cast<int>(what);
    comm.error->step = step;
    __threadfence_system();
  }
  return code;
}

// Polls *counter until it reaches `target` (as a signed difference, so a target below zero
// - the first kFifoSlots sends - is met at once), checking devWaitFailed every kPollsPerCheck
// polls. One thread.
__device__ inline int devSpin(const DevComm& comm, int channel, const uint64_t* counter, uint64_t target,
                              DevWait what, int peer) {
  if (static_cast<int64_t>(loadVolatile(counter) - target) >= 0) return fcclSuccess;
  const unsigned long long start = globalTimerNs();
  for (int polls = 1;; ++polls) {
    if (static_cast<int64_t>(loadVolatile(counter) - target) >= 0) return fcclSuccess;
    if (polls % kPollsPerCheck != 0) continue;
    const int code = devWaitFailed(comm, channel, start, what, peer, target);
    if (code != 0) return code;
  }
}

// The steps a CTA reached on its channel, for the channel's next kernel. Thread 0. Only the
// counters it moved: a p2p channel's send and receive sides may be two CTAs of a launch.
__device__ inline void devSaveSteps(const DevComm& comm, int channel, const DevChannel& atStart,
                                    uint64_t sendStep, uint64_t recvStep) {
  if (sendStep != atStart.sendStep) comm.channels[channel].sendStep = sendStep;
  if (recvStep != atStart.recvStep) comm.channels[channel].recvStep = recvStep;
}

// The device side of the hook contract (hook_contract.h) for `reduced`: a hook that runs on
// each fully reduced element in registers, between the reduction and the stores, so a fused
// update costs no extra pass over the chunk. `first` is the logical index of element 0 of the
// pack or element; a hook reads and writes its own state there (no synchronization: every
// element belongs to one thread).
struct DevIdentityHook {
  static constexpr bool kHasReduced = false;
  template <class T>
  __device__ __forceinline__ uint4 reducedPack(size_t, uint4 v) const {
    return v;
  }
  template <class T>
  __device__ __forceinline__ T reduced(size_t, T v) const {
    return v;
  }
};

// fcclAvg's hook: each reduced element divided by the rank count, as the host's divide()
// (integers truncate toward zero; half and bfloat16 divide in float and round once).
struct DevDivideHook {
  static constexpr bool kHasReduced = true;
  int divisor;

  template <class T>
  __device__ __forceinline__ static T divideOne(T v, int d) {
    return T(v / T(d));
  }
  __device__ __forceinline__ static __half divideOne(__half v, int d) {
    return __float2half(__half2float(v) / float(d));
  }
  __device__ __forceinline__ static __nv_bfloat16 divideOne(__nv_bfloat16 v, int d) {
    return __float2bfloat16(__bfloat162float(v) / float(d));
  }
  template <class T>
  __device__ __forceinline__ uint4 reducedPack(size_t, uint4 v) const {
    T* e = reinterpret_cast<T*>(&v);
#pragma unroll
    for (int i = 0; i < int(sizeof(uint4) / sizeof(T)); ++i) e[i] = divideOne(e[i], divisor);
    return v;
  }
  template <class T>
  __device__ __forceinline__ T reduced(size_t, T v) const {
    return divideOne(v, divisor);
  }
};

// PreMulSum's hook: each rank's own input multiplied by its scalar as it enters the reduction
// (OpProd's multiply: half and bfloat16 rounded once, integers wrap), as the host's scale().
template <class T>
struct DevPremulHook {
  static constexpr bool kHasReduced = false;
  static constexpr bool kHasLoad = true;
  T scalar;

  template <class U>
  __device__ __forceinline__ U load(U v) const {
    return OpProd::apply(v, scalar);
  }
  template <class U>
  __device__ __forceinline__ uint4 loadPack(uint4 v) const {
    U* e = reinterpret_cast<U*>(&v);
#pragma unroll
    for (int i = 0; i < int(sizeof(uint4) / sizeof(U)); ++i) e[i] = OpProd::apply(e[i], scalar);
    return v;
  }
  template <class U>
  __device__ __forceinline__ uint4 reducedPack(size_t, uint4 v) const {
    return v;
  }
  template <class U>
  __device__ __forceinline__ U reduced(size_t, U v) const {
    return v;
  }
};

// Whether a hook transforms this rank's own input as it is loaded (kHasLoad, e.g. PreMulSum's
// scale); hooks without the member do not. (No <type_traits> under NVRTC: overloads decide.)
template <class H>
__device__ constexpr bool hookLoads(decltype(H::kHasLoad)*) {
  return H::kHasLoad;
}
template <class H>
__device__ constexpr bool hookLoads(...) {
  return false;
}

// dst[0..ND) = post(src[0] op ... op pre(src[NS-1])) for `count` elements of T, by `nthreads`
// threads: 16-byte packs (four in flight per thread) when every pointer is 16-byte aligned, then
// the tail. post (a hook's reduced, or the identity) sees logical indices from `first`; pre (a
// hook's load) sees the last source, which the reducing primitives make this rank's own input.
template <class T, class Op, int NS, int ND, class Post = DevIdentityHook, class Pre = DevIdentityHook>
__device__ __forceinline__ void reduceCopy(int tid, int nthreads, const char* const (&src)[NS],
                                           char* const (&dst)[ND], size_t count, const Post& post = Post(),
                                           size_t first = 0, const Pre& pre = Pre()) {
  constexpr bool kLoad = hookLoads<Pre>(nullptr);
  constexpr size_t kPackElems = 16 / sizeof(T);
  bool aligned = true;
#pragma unroll
  for (int s = 0; s < NS; ++s) aligned &= (reinterpret_cast<uintptr_t>(src[s]) & 15) == 0;
#pragma unroll
  for (int d = 0; d < ND; ++d) aligned &= (reinterpret_cast<uintptr_t>(dst[d]) & 15) == 0;
  const size_t packs = aligned ? count * sizeof(T) / 16 : 0;
  constexpr int kUnroll = 4;
  size_t i = tid;
  for (; i + size_t(kUnroll - 1) * nthreads < packs; i += size_t(kUnroll) * nthreads) {
    uint4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      v[u] = __ldcg(reinterpret_cast<const uint4*>(src[0]) + i + u * nthreads);
      if constexpr (kLoad && NS == 1) v[u] = pre.template loadPack<T>(v[u]);
    }
#pragma unroll
    for (int s = 1; s < NS; ++s)
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        uint4 x = __ldcg(reinterpret_cast<const uint4*>(src[s]) + i + u * nthreads);
        if constexpr (kLoad) {
          if (s == NS - 1) x = pre.template loadPack<T>(x);
        }
        v[u] = applyPack<Op, T>(v[u], x);
      }
    if constexpr (Post::kHasReduced)
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        v[u] = post.template reducedPack<T>(first + (i + u * nthreads) * kPackElems, v[u]);
#pragma unroll
    for (int d = 0; d < ND; ++d)
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) reinterpret_cast<uint4*>(dst[d])[i + u * nthreads] = v[u];
  }
  for (; i < packs; i += nthreads) {
    uint4 v = __ldcg(reinterpret_cast<const uint4*>(src[0]) + i);
    if constexpr (kLoad && NS == 1) v = pre.template loadPack<T>(v);
#pragma unroll
    for (int s = 1; s < NS; ++s) {
      uint4 x = __ldcg(reinterpret_cast<const uint4*>(src[s]) + i);
      if constexpr (kLoad) {
        if (s == NS - 1) x = pre.template loadPack<T>(x);
      }
      v = applyPack<Op, T>(v, x);
    }
    if constexpr (Post::kHasReduced) v = post.template reducedPack<T>(first + i * kPackElems, v);
#pragma unroll
    for (int d = 0; d < ND; ++d) reinterpret_cast<uint4*>(dst[d])[i] = v;
  }
  // Elements after the last whole pack (or all of them when misaligned).
  for (size_t e = packs * kPackElems + tid; e < count; e += nthreads) {
    T v = reinterpret_cast<const T*>(src[0])[e];
    if constexpr (kLoad && NS == 1) v = pre.load(v);
#pragma unroll
    for (int s = 1; s < NS; ++s) {
      T x = reinterpret_cast<const T*>(src[s])[e];
      if constexpr (kLoad) {
        if (s == NS - 1) x = pre.load(x);
      }
      v = Op::apply(v, x);
    }
    if constexpr (Post::kHasReduced) v = post.reduced(first + e, v);
#pragma unroll
    for (int d = 0; d < ND; ++d) reinterpret_cast<T*>(dst[d])[e] = v;
  }
}

template <class T, class Op, class Hook = DevIdentityHook>
class DevPrims {
 public:
  // `abortShared` is one int of the CTA's shared memory: thread 0's verdict for everyone.
  // `hook` runs on every fully reduced element (recvReduceCopySend, recvReduceCopy).
  // `peer` >= 0: a point-to-point channel, whose FIFOs both link to `peer` (not the ring's
  // neighbours); it only names the peer in error reports.
  __device__ DevPrims(const DevComm& comm, int channel, int* abortShared, const Hook& hook = Hook(),
                      int peer = -1)
      : comm_(comm),
        hook_(hook),
        ch_(comm.channels[channel]),
        channel_(channel),
        tid_(threadIdx.x),
        nthreads_(blockDim.x),
        shared_(abortShared),
        sendStep_(ch_.sendStep),
        recvStep_(ch_.recvStep),
        slotElems_(comm.slotBytes / sizeof(T)),
        sendPeer_(peer >= 0 ? peer : ringMod(comm.rank + 1, comm.nranks)),
        recvPeer_(peer >= 0 ? peer : ringMod(comm.rank - 1, comm.nranks)) {}

  // Step 0 of a ring: our chunk goes to next.
  __device__ fcclResult_t send(const char* src, const ChunkDesc& d) {
    FCCL_ALGO_CHECK(wait(false, true));
    // Step 0 of a reduction (or of a broadcast/gather, whose kernels have no load hook).
    reduceCopy<T, Op, 1, 1, DevIdentityHook, Hook>(tid_, nthreads_, {src}, {sendSlot()}, d.count,
                                                   DevIdentityHook(), 0, hook_);
    post(false, true);
    return fcclSuccess;
  }
  // Middle of a reduce: received partial + own chunk -> next.
  __device__ fcclResult_t recvReduceSend(const char* src, const ChunkDesc& d) {
    FCCL_ALGO_CHECK(wait(true, true));
    reduceCopy<T, Op, 2, 1, DevIdentityHook, Hook>(tid_, nthreads_, {recvSlot(), src}, {sendSlot()}, d.count,
                                                   DevIdentityHook(), 0, hook_);
    post(true, true);
    return fcclSuccess;
  }
  // The step that produces the final value: reduce, store and pass on.
  __device__ fcclResult_t recvReduceCopySend(const char* src, char* dst, const ChunkDesc& d) {
    FCCL_ALGO_CHECK(wait(true, true));
    reduceCopy<T, Op, 2, 2, Hook, Hook>(tid_, nthreads_, {recvSlot(), src}, {dst, sendSlot()}, d.count, hook_,
                                        d.offset, hook_);
    post(true, true);
    return fcclSuccess;
  }
  // Final step of reduce-scatter / reduce at the root: reduce straight into the output.
  __device__ fcclResult_t recvReduceCopy(const char* src, char* dst, const ChunkDesc& d) {
    FCCL_ALGO_CHECK(wait(true, false));
    reduceCopy<T, Op, 2, 1, Hook, Hook>(tid_, nthreads_, {recvSlot(), src}, {dst}, d.count, hook_, d.offset,
                                        hook_);
    post(true, false);
    return fcclSuccess;
  }
  // All-gather phase: keep a copy, pass it on.
  __device__ fcclResult_t recvCopySend(char* dst, const ChunkDesc& d) {
    FCCL_ALGO_CHECK(wait(true, true));
    move<1, 2>({recvSlot()}, {dst, sendSlot()}, d.count);
    post(true, true);
    return fcclSuccess;
  }
  // Last step of an all-gather / broadcast chain.
  __device__ fcclResult_t recv(char* dst, const ChunkDesc& d) {
    FCCL_ALGO_CHECK(wait(true, false));
    move<1, 1>({recvSlot()}, {dst}, d.count);
    post(true, false);
    return fcclSuccess;
  }
  // First step of an all-gather / broadcast root: own data to next and (if distinct) to dst.
  __device__ fcclResult_t copySend(const char* src, char* dst, const ChunkDesc& d) {
    FCCL_ALGO_CHECK(wait(false, true));
    if (dst != src)
      move<1, 2>({src}, {dst, sendSlot()}, d.count);
    else
      move<1, 1>({src}, {sendSlot()}, d.count);
    post(false, true);
    return fcclSuccess;
  }

  // The steps this CTA reached, for the channel's next kernel. Call once, by every thread.
  __device__ void finish() {
    if (tid_ == 0) devSaveSteps(comm_, channel_, ch_, sendStep_, recvStep_);
  }

 private:
  __device__ char* sendSlot() const { return ch_.send.slots + (sendStep_ % kFifoSlots) * comm_.slotBytes; }
  __device__ const char* recvSlot() const {
    return ch_.recv.slots + (recvStep_ % kFifoSlots) * comm_.slotBytes;
  }

  template <int NS, int ND>
  __device__ void move(const char* const (&src)[NS], char* const (&dst)[ND], size_t count) {
    reduceCopy<T, Op, NS, ND>(tid_, nthreads_, src, dst, count);
  }

  // Thread 0 waits until the previous rank's data is there (recv) and the next rank's slot is
  // free (send); the barrier then releases every thread with thread 0's verdict.
  __device__ fcclResult_t wait(bool recv, bool send) {
    if (tid_ == 0) {
      int res = fcclSuccess;
      if (recv) res = spin(ch_.recv.tail, recvStep_ + 1, DevWait::Data, recvPeer_);
      if (res == fcclSuccess && send)
        res = spin(ch_.send.head, sendStep_ + 1 - kFifoSlots, DevWait::FreeSlot, sendPeer_);
      // The slot's contents were written before the peer's tail store (its fence); order our
      // reads after the counter read.
      __threadfence();
      *shared_ = res;
    }
    __syncthreads();
    return static_cast<fcclResult_t>(*shared_);
  }

  // After every thread is done with the slots: free the received one, post the sent one.
  __device__ void post(bool recv, bool send) {
    __syncthreads();
    if (tid_ == 0) {
      if (recv) storeVolatile(ch_.recv.head, ++recvStep_);
      if (send) {
        __threadfence_system();  // the slot's data before the counter, for any peer GPU too
        storeVolatile(ch_.send.tail, ++sendStep_);
      }
    } else {
      if (recv) ++recvStep_;
      if (send) ++sendStep_;
    }
  }

  __device__ int spin(const uint64_t* counter, uint64_t target, DevWait what, int peer) {
    return devSpin(comm_, channel_, counter, target, what, peer);
  }

  const DevComm comm_;  // a copy: kernel parameters are read-only and cheap to keep in registers
  const Hook hook_;
  const DevChannel ch_;
  const int channel_;
  const int tid_;
  const int nthreads_;
  int* shared_;
  uint64_t sendStep_;
  uint64_t recvStep_;
  const size_t slotElems_;
  const int sendPeer_;  // whom the send FIFO feeds, whom the receive FIFO comes from
  const int recvPeer_;
};

}  // namespace fccl::dev
