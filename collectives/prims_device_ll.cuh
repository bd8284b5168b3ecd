// prims_device_ll.cuh - the low-latency protocol of the CUDA backend (NCCL's "LL"): the same
// named operations as DevPrims (prims_device.cuh), so the ring templates run on it unchanged,
// for small messages, where the bandwidth protocol's fence, CTA barrier and counter round trip
// per step cost more than the data.
//
// Each FIFO slot of the connection's LL area (DevConn::llSlots, kLLSlotBytes) holds 16-byte
// lines {data1, flag1, data2, flag2}: 8 bytes of data, each 4-byte half beside a copy of the
// step's flag (step + 1). The sender writes a line with one 16-byte volatile store; the
// receiver's threads each poll their own lines until both flags carry the step's value, so data
// and "it is there" travel together: no tail counter to wait for, no fence before it. The slot
// is still freed through the head counter (thread 0, after the CTA's barrier), and the tail is
// still advanced, so the bandwidth protocol's counters stay right when a later kernel on the
// channel uses it. The LL area is apart from the bandwidth protocol's slots: a stale payload
// there could otherwise hold a word equal to a later step's flag.
//
// Every thread that polls checks the abort flag and the deadline itself every kPollsPerCheck
// polls; the CTA agrees on the verdict with __syncthreads_or, and the first error is recorded in
// DevError by the same devWaitFailed as DevPrims'.
#pragma once
#include <cstdint>

#include "collectives/prims_device.cuh"

namespace fccl::dev {

template <class T, class Op, class Hook = DevIdentityHook>
class DevLLPrims {
 public:
  static constexpr int kElemsPerLine = int(kLLLineData / sizeof(T));
  static constexpr size_t kLinesPerSlot = kLLSlotBytes / sizeof(LLLine);

  __device__ DevLLPrims(const DevComm& comm, int channel, int* abortShared, const Hook& hook = Hook(),
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
        sendPeer_(peer >= 0 ? peer : ringMod(comm.rank + 1, comm.nranks)),
        recvPeer_(peer >= 0 ? peer : ringMod(comm.rank - 1, comm.nranks)) {}

  __device__ fcclResult_t send(const char* src, const ChunkDesc& d) {
    FCCL_ALGO_CHECK(waitFreeSlot());
    for (size_t l = tid_; l < lines(d); l += nthreads_) storeLine(l, loadOwn(src, l, d.count));
    padSlot(lines(d));
    post(false, true);
    return fcclSuccess;
  }
  __device__ fcclResult_t recvReduceSend(const char* src, const ChunkDesc& d) {
    FCCL_ALGO_CHECK(waitFreeSlot());
    int err = 0;
    for (size_t l = tid_; l < lines(d); l += nthreads_) {
      const uint64_t in = readLine(l, &err);
      if (err != 0) break;  // nothing that looks valid goes on
      storeLine(l, reduce(in, loadOwn(src, l, d.count)));
    }
    if (err == 0) padSlot(lines(d));
    return finishStep(err, true, true);
  }
  __device__ fcclResult_t recvReduceCopySend(const char* src, char* dst, const ChunkDesc& d) {
    FCCL_ALGO_CHECK(waitFreeSlot());
    int err = 0;
    for (size_t l = tid_; l < lines(d); l += nthreads_) {
      const uint64_t in = readLine(l, &err);
      if (err != 0) break;
      const uint64_t v = reduced(reduce(in, loadOwn(src, l, d.count)), l, d);
      storeOut(dst, l, d.count, v);
      storeLine(l, v);
    }
    if (err == 0) padSlot(lines(d));
    return finishStep(err, true, true);
  }
  __device__ fcclResult_t recvReduceCopy(const char* src, char* dst, const ChunkDesc& d) {
    int err = 0;
    for (size_t l = tid_; l < lines(d); l += nthreads_) {
      const uint64_t in = readLine(l, &err);
      if (err != 0) break;
      storeOut(dst, l, d.count, reduced(reduce(in, loadOwn(src, l, d.count)), l, d));
    }
    return finishStep(err, true, false);
  }
  __device__ fcclResult_t recvCopySend(char* dst, const ChunkDesc& d) {
    FCCL_ALGO_CHECK(waitFreeSlot());
    int err = 0;
    for (size_t l = tid_; l < lines(d); l += nthreads_) {
      const uint64_t in = readLine(l, &err);
      if (err != 0) break;
      storeOut(dst, l, d.count, in);
      storeLine(l, in);
    }
    if (err == 0) padSlot(lines(d));
    return finishStep(err, true, true);
  }
  __device__ fcclResult_t recv(char* dst, const ChunkDesc& d) {
    int err = 0;
    for (size_t l = tid_; l < lines(d); l += nthreads_) {
      const uint64_t in = readLine(l, &err);
      if (err != 0) break;
      storeOut(dst, l, d.count, in);
    }
    return finishStep(err, true, false);
  }
  __device__ fcclResult_t copySend(const char* src, char* dst, const ChunkDesc& d) {
    FCCL_ALGO_CHECK(waitFreeSlot());
    for (size_t l = tid_; l < lines(d); l += nthreads_) {
      const uint64_t v = loadWord(src, l, d.count);
      if (dst != src) storeOut(dst, l, d.count, v);
      storeLine(l, v);
    }
    padSlot(lines(d));
    post(false, true);
    return fcclSuccess;
  }

  __device__ void finish() {
    if (tid_ == 0) devSaveSteps(comm_, channel_, ch_, sendStep_, recvStep_);
  }

 private:
  __device__ static size_t lines(const ChunkDesc& d) {
    return (d.count + size_t(kElemsPerLine) - 1) / size_t(kElemsPerLine);
  }
  __device__ LLLine* sendLines() const {
    return reinterpret_cast<LLLine*>(ch_.send.llSlots + (sendStep_ % kFifoSlots) * kLLSlotBytes);
  }
  __device__ const LLLine* recvLines() const {
    return reinterpret_cast<const LLLine*>(ch_.recv.llSlots + (recvStep_ % kFifoSlots) * kLLSlotBytes);
  }

  // Elements [l * kElemsPerLine, ...) of a chunk of `count`, packed into 8 bytes (zero past the
  // end). Element loads: any T-aligned buffer works.
  __device__ static uint64_t loadWord(const char* src, size_t l, size_t count) {
    uint64_t w = 0;
    T* e = reinterpret_cast<T*>(&w);
    const T* s = reinterpret_cast<const T*>(src);
#pragma unroll
    for (int k = 0; k < kElemsPerLine; ++k) {
      const size_t i = l * kElemsPerLine + k;
      if (i < count) e[k] = s[i];
    }
    return w;
  }
  // This rank's own input as it enters the reduction: the hook's load (PreMulSum's scale).
  __device__ uint64_t loadOwn(const char* src, size_t l, size_t count) const {
    uint64_t w = loadWord(src, l, count);
    if constexpr (hookLoads<Hook>(nullptr)) {
      T* e = reinterpret_cast<T*>(&w);
#pragma unroll
      for (int k = 0; k < kElemsPerLine; ++k) e[k] = hook_.load(e[k]);
    }
    return w;
  }
  __device__ static void storeOut(char* dst, size_t l, size_t count, uint64_t w) {
    const T* e = reinterpret_cast<const T*>(&w);
    T* o = reinterpret_cast<T*>(dst);
#pragma unroll
    for (int k = 0; k < kElemsPerLine; ++k) {
      const size_t i = l * kElemsPerLine + k;
      if (i < count) o[i] = e[k];
    }
  }
  // received op own, in DevPrims' operand order.
  __device__ static uint64_t reduce(uint64_t received, uint64_t own) {
    T* a = reinterpret_cast<T*>(&received);
    const T* b = reinterpret_cast<const T*>(&own);
#pragma unroll
    for (int k = 0; k < kElemsPerLine; ++k) a[k] = Op::apply(a[k], b[k]);
    return received;
  }
  // The hook's reduced on each element (the divide of Avg; a fused update), at its logical index.
  __device__ uint64_t reduced(uint64_t w, size_t l, const ChunkDesc& d) const {
    if constexpr (Hook::kHasReduced) {
      T* e = reinterpret_cast<T*>(&w);
#pragma unroll
      for (int k = 0; k < kElemsPerLine; ++k) {
        const size_t i = l * kElemsPerLine + k;
        if (i < d.count) e[k] = hook_.reduced(d.offset + i, e[k]);
      }
    }
    return w;
  }

  __device__ void storeLine(size_t l, uint64_t w) const {
    const uint32_t flag = uint32_t(sendStep_ + 1);
    LLLine* p = sendLines() + l;
    asm volatile("st.volatile.global.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(uint32_t(w)), "r"(flag),
                 "r"(uint32_t(w >> 32)), "r"(flag)
                 : "memory");
  }
  // Line l of the step being received, once both its flags say it is this step's. *err: the
  // thread's abort or timeout.
  __device__ uint64_t readLine(size_t l, int* err) {
    const uint32_t flag = uint32_t(recvStep_ + 1);
    const LLLine* p = recvLines() + l;
    unsigned long long start = 0;
    for (int polls = 1;; ++polls) {
      uint32_t d1, f1, d2, f2;
      asm volatile("ld.volatile.global.v4.u32 {%0, %1, %2, %3}, [%4];"
                   : "=r"(d1), "=r"(f1), "=r"(d2), "=r"(f2)
                   : "l"(p)
                   : "memory");
      if (f1 == flag && f2 == flag) return uint64_t(d1) | (uint64_t(d2) << 32);
      if (polls == 1) start = globalTimerNs();
      if (polls % kPollsPerCheck != 0) continue;
      const int code = devWaitFailed(comm_, channel_, start, DevWait::Data, recvPeer_, recvStep_ + 1);
      if (code != 0) {
        *err = code;
        return 0;
      }
    }
  }

  // Thread 0 waits until the next rank freed the slot this step writes; every thread learns
  // the verdict from the barrier itself (the shared word is written only on failure, after
  // every thread has read the previous verdict: a send step ends without a barrier).
  __device__ fcclResult_t waitFreeSlot() {
    int res = fcclSuccess;
    if (tid_ == 0)
      res = devSpin(comm_, channel_, ch_.send.head, sendStep_ + 1 - kFifoSlots, DevWait::FreeSlot, sendPeer_);
    if (!__syncthreads_or(res != 0)) return fcclSuccess;
    if (tid_ == 0) *shared_ = res;
    __syncthreads();
    return static_cast<fcclResult_t>(*shared_);
  }

  // A line last written 2^32 steps ago would carry the current flag again. So in the first
  // kFifoSlots steps of every 2^30, each slot is written whole (lines past the chunk padded):
  // no line's flag is ever older than 2^31 steps. NCCL cleans its LL buffers likewise.
  __device__ void padSlot(size_t used) const {
    if ((sendStep_ & ((uint64_t(1) << 30) - 1)) >= uint64_t(kFifoSlots)) return;
    for (size_t l = used + tid_; l < kLinesPerSlot; l += nthreads_) storeLine(l, 0);
  }

  // The end of a step that received: every thread is done with the lines (or one failed, and
  // the CTA returns its code); then the slot goes back to the previous rank.
  __device__ fcclResult_t finishStep(int err, bool recv, bool send) {
    if (__syncthreads_or(err != 0)) {
      if (err != 0) *shared_ = err;
      __syncthreads();
      return static_cast<fcclResult_t>(*shared_);
    }
    post(recv, send);
    return fcclSuccess;
  }
  // Free the received slot (after the barrier: every line is read) and advance the tail (the
  // lines' flags already told the receiver; the counter keeps the bandwidth protocol in step).
  __device__ void post(bool recv, bool send) {
    if (tid_ == 0) {
      if (recv) storeVolatile(ch_.recv.head, recvStep_ + 1);
      if (send) storeVolatile(ch_.send.tail, sendStep_ + 1);
    }
    if (recv) ++recvStep_;
    if (send) ++sendStep_;
  }

  const DevComm comm_;
  const Hook hook_;
  const DevChannel ch_;
  const int channel_;
  const int tid_;
  const int nthreads_;
  int* shared_;
  uint64_t sendStep_;
  uint64_t recvStep_;
  const int sendPeer_;
  const int recvPeer_;
};

}  // namespace fccl::dev
