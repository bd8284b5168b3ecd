// api_check.cu - device communicators through the public API, as a NCCL program uses them:
// fcclCommInitAll with a devlist that repeats device 0 (2, 3 and 4 ranks sharing the GPU as
// threads of this process), each rank with its own non-blocking stream, every call enqueued
// inside fcclGroupStart/End and checked exactly after cudaStreamSynchronize.
//   --sweep   AllReduce: every dtype x op (avg included); ReduceScatter and Reduce: five types x
//             sum/max/avg/PreMulSum (immediate and device scalars, rank r's = r + 1), AllReduce
//             with PreMulSum too; Broadcast and AllGather: every dtype; counts 0, 1, 7, 1M+3; in and
//             out of place; root nranks-1.
//   --p2p     Send/Recv: each rank to next and from prev, two messages to the same peer in one
//             group, a send to itself; AlltoAll; 2, 3 and 4 ranks, five types, counts 0, 1, 7,
//             1M+3; checked exactly.
//   --errors  bad input refused with the argument named and nothing enqueued (host buffer on a
//             device communicator, device buffer on a host one, the legacy stream shared by
//             ranks of one GPU); fcclCommCuDevice; fcclMemAlloc/fcclMemFree.
//   --abort   a rank's kernel waiting for a peer that never comes: fcclCommAbort ends it;
//             with a 2 s timeout it ends alone and fcclCommGetAsyncError names the peer.
//   --processes  2 processes on the GPU (cuMem descriptors or legacy CUDA IPC between them; they
//             take turns on the GPU unless MPS runs): AllReduce and Broadcast, float32, checked
//             exactly. Forks before the parent touches CUDA.
//   --bench   AllReduce float32 sum busbw, 2 ranks on the GPU, 1 MiB..1 GiB, against the
//             bound a device-to-device copy implies (busbw <= copy / 4 at 2 ranks).
//   --latency AllReduce float32 sum time per call, 8 B..1 MiB, under the protocol FCCL_PROTO
//             names (check.sh runs it with LL and with Simple).
// Exit status 0 when every check passed.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fccl.h"

namespace {

#define CUDA_OK(call)                                                                             \
  do {                                                                                            \
    cudaError_t e_ = (call);                                                                      \
    if (e_ != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                               \
    }                                                                                             \
  } while (0)
#define FCCL_OK(call)                                                                                \
  do {                                                                                               \
    fcclResult_t r_ = (call);                                                                        \
    if (r_ != fcclSuccess) {                                                                         \
      std::fprintf(stderr, "%s:%d: %s: %s: %s\n", __FILE__, __LINE__, #call, fcclGetErrorString(r_), \
                   fcclGetLastError(nullptr));                                                       \
      std::exit(2);                                                                                  \
    }                                                                                                \
  } while (0)

int g_failures = 0;
void fail(const std::string& what) {
  if (++g_failures <= 20) std::printf("FAIL %s\n", what.c_str());
}

struct Ranks {
  int n = 0;
  std::vector<fcclComm_t> comms;
  std::vector<cudaStream_t> streams;
};

Ranks makeRanks(int n) {
  Ranks r;
  r.n = n;
  r.comms.resize(n);
  r.streams.resize(n);
  std::vector<int> devlist(n, 0);
  FCCL_OK(fcclCommInitAll(r.comms.data(), n, devlist.data()));
  for (int i = 0; i < n; ++i) CUDA_OK(cudaStreamCreateWithFlags(&r.streams[i], cudaStreamNonBlocking));
  return r;
}

void freeRanks(Ranks& r) {
  for (int i = 0; i < r.n; ++i) {
    CUDA_OK(cudaStreamSynchronize(r.streams[i]));
    FCCL_OK(fcclCommDestroy(r.comms[i]));
    CUDA_OK(cudaStreamDestroy(r.streams[i]));
  }
}

// Streams done within a bound, so a hung kernel fails the check instead of the run.
bool syncAll(const Ranks& r, double seconds) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < r.n; ++i)
    for (;;) {
      cudaError_t e = cudaStreamQuery(r.streams[i]);
      if (e == cudaSuccess) break;
      if (e != cudaErrorNotReady) {
        std::fprintf(stderr, "stream of rank %d: %s\n", i, cudaGetErrorString(e));
        std::exit(2);
      }
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > seconds)
        return false;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  return true;
}

// ---- element types: values in and out of doubles ----------------------------------------------

size_t typeSize(fcclDataType_t t) {
  switch (t) {
    case fcclInt8:
    case fcclUint8:
      return 1;
    case fcclFloat16:
    case fcclBfloat16:
      return 2;
    case fcclInt32:
    case fcclUint32:
    case fcclFloat32:
      return 4;
    default:
      return 8;
  }
}
const char* typeName(fcclDataType_t t) {
  static const char* const k[] = {"int8",   "uint8", "int32", "uint32", "int64",
                                  "uint64", "half",  "float", "double", "bfloat16"};
  return k[t];
}
bool isFloat(fcclDataType_t t) {
  return t == fcclFloat16 || t == fcclFloat32 || t == fcclFloat64 || t == fcclBfloat16;
}

void store(fcclDataType_t t, void* p, size_t i, double v) {
  switch (t) {
    case fcclInt8:
      static_cast<int8_t*>(p)[i] = int8_t(v);
      break;
    case fcclUint8:
      static_cast<uint8_t*>(p)[i] = uint8_t(v);
      break;
    case fcclInt32:
      static_cast<int32_t*>(p)[i] = int32_t(v);
      break;
    case fcclUint32:
      static_cast<uint32_t*>(p)[i] = uint32_t(v);
      break;
    case fcclInt64:
      static_cast<int64_t*>(p)[i] = int64_t(v);
      break;
    case fcclUint64:
      static_cast<uint64_t*>(p)[i] = uint64_t(v);
      break;
    case fcclFloat16:
      static_cast<__half*>(p)[i] = __float2half(float(v));
      break;
    case fcclFloat32:
      static_cast<float*>(p)[i] = float(v);
      break;
    case fcclFloat64:
      static_cast<double*>(p)[i] = v;
      break;
    default:
      static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16(float(v));
      break;
  }
}
double load(fcclDataType_t t, const void* p, size_t i) {
  switch (t) {
    case fcclInt8:
      return static_cast<const int8_t*>(p)[i];
    case fcclUint8:
      return static_cast<const uint8_t*>(p)[i];
    case fcclInt32:
      return static_cast<const int32_t*>(p)[i];
    case fcclUint32:
      return static_cast<const uint32_t*>(p)[i];
    case fcclInt64:
      return double(static_cast<const int64_t*>(p)[i]);
    case fcclUint64:
      return double(static_cast<const uint64_t*>(p)[i]);
    case fcclFloat16:
      return __half2float(static_cast<const __half*>(p)[i]);
    case fcclFloat32:
      return static_cast<const float*>(p)[i];
    case fcclFloat64:
      return static_cast<const double*>(p)[i];
    default:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  }
}

// v as type t stores it (the exact value for the small integers used here).
double load_round(fcclDataType_t t, double v) {
  char buf[8];
  store(t, buf, 0, v);
  return load(t, buf, 0);
}

// Rank r's input at index i: small integers, so every sum, product, max and min is exact in
// every type (at most 4 ranks: sums <= 20, products of 1s and 2s <= 16).
double input(fcclRedOp_t op, int r, size_t i) {
  if (op == fcclProd) return 1 + double((i + r) % 2);
  return 1 + double((i * 7 + size_t(r) * 3) % 5);
}
// PreMulSum in the sweep: rank r's scalar is r + 1, immediate or in device memory.
constexpr fcclRedOp_t kPremulHost = fcclRedOp_t(100), kPremulDevice = fcclRedOp_t(101);
bool isPremul(fcclRedOp_t op) { return op == kPremulHost || op == kPremulDevice; }

// The reduction of the n ranks' inputs at i, as the type stores it (Avg: the host's rule:
// integers truncate, half/bfloat16 divide in float and round once).
double reduced(fcclDataType_t t, fcclRedOp_t op, int n, size_t i) {
  if (isPremul(op)) {
    double sum = 0;
    for (int r = 0; r < n; ++r) sum += (r + 1) * input(op, r, i);
    return sum;
  }
  double acc = input(op, 0, i);
  for (int r = 1; r < n; ++r) {
    const double v = input(op, r, i);
    if (op == fcclSum || op == fcclAvg) acc += v;
    if (op == fcclProd) acc *= v;
    if (op == fcclMax) acc = std::max(acc, v);
    if (op == fcclMin) acc = std::min(acc, v);
  }
  if (op != fcclAvg) return acc;
  if (!isFloat(t)) return std::trunc(acc / n);
  if (t == fcclFloat64) return acc / n;
  char buf[8];
  store(t, buf, 0, double(float(acc) / float(n)));
  return load(t, buf, 0);
}

// ---- the sweep --------------------------------------------------------------------------------

enum class Coll {
  AllReduce,
  ReduceScatter,
  Reduce,
  Broadcast,
  AllGather
};
const char* collName(Coll c) {
  static const char* const k[] = {"AllReduce", "ReduceScatter", "Reduce", "Broadcast", "AllGather"};
  return k[int(c)];
}

// One case on every rank: inputs written, the call enqueued in a group, streams synchronized,
// outputs compared exactly. Returns false on a mismatch (reported).
bool runCase(Ranks& rk, Coll c, fcclDataType_t t, fcclRedOp_t op, size_t count, bool inPlace) {
  const int n = rk.n, root = n - 1;
  const size_t es = typeSize(t);
  const size_t sendElems = c == Coll::ReduceScatter ? count * n : count;
  const size_t recvElems = c == Coll::AllGather ? count * n : count;
  std::vector<void*> send(n), recv(n);
  std::vector<std::vector<char>> host(n);
  const size_t bufElems = std::max(sendElems, recvElems);
  for (int r = 0; r < n; ++r) {
    CUDA_OK(cudaMalloc(&recv[r], std::max<size_t>(1, bufElems * es)));
    host[r].assign(std::max<size_t>(1, bufElems * es), 0);
    // In place: the input sits where the API's in-place position puts it inside recvbuff.
    size_t offset = 0;
    if (inPlace && c == Coll::AllGather) offset = size_t(r) * count;
    send[r] = inPlace ? static_cast<char*>(recv[r]) + offset * es : nullptr;
    if (!inPlace) CUDA_OK(cudaMalloc(&send[r], std::max<size_t>(1, sendElems * es)));
    std::vector<char> in(std::max<size_t>(1, sendElems * es));
    for (size_t i = 0; i < sendElems; ++i) store(t, in.data(), i, input(op, r, i));
    CUDA_OK(cudaMemset(recv[r], 0xff, std::max<size_t>(1, bufElems * es)));
    CUDA_OK(cudaMemcpy(send[r], in.data(), sendElems * es, cudaMemcpyHostToDevice));
  }
  // Each rank's operator: op itself, or its own PreMulSum.
  std::vector<fcclRedOp_t> ops(n, op);
  std::vector<void*> scalars(n, nullptr);
  for (int r = 0; r < n && isPremul(op); ++r) {
    char value[8];
    store(t, value, 0, r + 1);
    void* where = value;
    if (op == kPremulDevice) {
      CUDA_OK(cudaMalloc(&scalars[r], 8));
      CUDA_OK(cudaMemcpy(scalars[r], value, 8, cudaMemcpyHostToDevice));
      where = scalars[r];
    }
    FCCL_OK(fcclRedOpCreatePreMulSum(
        &ops[r], where, t, op == kPremulDevice ? fcclScalarDevice : fcclScalarHostImmediate, rk.comms[r]));
  }
  FCCL_OK(fcclGroupStart());
  for (int r = 0; r < n; ++r) {
    fcclResult_t res = fcclSuccess;
    const fcclRedOp_t op = ops[r];
    switch (c) {
      case Coll::AllReduce:
        res = fcclAllReduce(send[r], recv[r], count, t, op, rk.comms[r], rk.streams[r]);
        break;
      case Coll::ReduceScatter:
        res = fcclReduceScatter(send[r], static_cast<char*>(recv[r]) + (inPlace ? size_t(r) * count * es : 0),
                                count, t, op, rk.comms[r], rk.streams[r]);
        break;
      case Coll::Reduce:
        res = fcclReduce(send[r], recv[r], count, t, op, root, rk.comms[r], rk.streams[r]);
        break;
      case Coll::Broadcast:
        res = fcclBroadcast(send[r], recv[r], count, t, root, rk.comms[r], rk.streams[r]);
        break;
      case Coll::AllGather:
        res = fcclAllGather(send[r], recv[r], count, t, rk.comms[r], rk.streams[r]);
        break;
    }
    if (res != fcclSuccess) {
      fail(std::string(collName(c)) + ": " + fcclGetLastError(rk.comms[r]));
      std::exit(2);  // a failed enqueue inside a group leaves the peers waiting: stop here
    }
  }
  FCCL_OK(fcclGroupEnd());
  if (!syncAll(rk, 60)) {
    fail(std::string(collName(c)) + ": streams did not finish within 60 s");
    std::exit(2);
  }
  bool ok = true;
  for (int r = 0; r < n && ok; ++r) {
    CUDA_OK(cudaMemcpy(host[r].data(), recv[r], bufElems * es, cudaMemcpyDeviceToHost));
    // Where this rank's result lies in recvbuff and how long it is.
    size_t first = 0, len = recvElems;
    if (c == Coll::ReduceScatter && inPlace) first = size_t(r) * count, len = count;
    if (c == Coll::Reduce && r != root) len = 0;
    for (size_t i = 0; i < len && ok; ++i) {
      double want = 0;
      switch (c) {
        case Coll::AllReduce:
        case Coll::Reduce:
          want = reduced(t, op, n, i);
          break;
        case Coll::ReduceScatter:
          want = reduced(t, op, n, size_t(r) * count + i);
          break;
        case Coll::Broadcast:
          want = input(op, root, i);
          break;
        case Coll::AllGather:
          want = input(op, int(i / count), i % count);
          break;
      }
      const double got = load(t, host[r].data(), first + i);
      if (got != want) {
        char buf[256];
        std::snprintf(buf, sizeof(buf), "%s %s op %d count %zu %s, %d ranks: rank %d [%zu] = %g, want %g",
                      collName(c), typeName(t), int(op), count, inPlace ? "in place" : "out of place", n, r,
                      i, got, want);
        fail(buf);
        ok = false;
      }
    }
  }
  for (int r = 0; r < n; ++r) {
    if (!inPlace) CUDA_OK(cudaFree(send[r]));
    CUDA_OK(cudaFree(recv[r]));
    if (isPremul(op)) FCCL_OK(fcclRedOpDestroy(ops[r], rk.comms[r]));
    if (scalars[r] != nullptr) CUDA_OK(cudaFree(scalars[r]));
  }
  return ok;
}

int sweep(bool quick, size_t extraCount) {
  const fcclRedOp_t allOps[] = {fcclSum, fcclProd, fcclMax, fcclMin, fcclAvg};
  const fcclDataType_t some[] = {fcclFloat32, fcclFloat16, fcclBfloat16, fcclInt32, fcclUint8};
  std::vector<size_t> counts = {0, 1, 7, (size_t(1) << 20) + 3};
  if (quick) counts = {1, 7, 4099};
  if (extraCount > 0) counts.push_back(extraCount);
  int cases = 0, bad = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int n : {2, 3, 4}) {
    Ranks rk = makeRanks(n);
    for (size_t count : counts)
      for (bool inPlace : {false, true}) {
        auto run = [&](Coll c, fcclDataType_t t, fcclRedOp_t op) {
          ++cases;
          bad += !runCase(rk, c, t, op, count, inPlace);
        };
        for (int t = 0; t < fcclNumTypes; ++t) {
          for (fcclRedOp_t op : allOps) run(Coll::AllReduce, fcclDataType_t(t), op);
          run(Coll::Broadcast, fcclDataType_t(t), fcclSum);
          run(Coll::AllGather, fcclDataType_t(t), fcclSum);
        }
        for (fcclDataType_t t : some) {
          for (fcclRedOp_t op : {fcclSum, fcclMax, fcclAvg, kPremulHost, kPremulDevice}) {
            run(Coll::ReduceScatter, t, op);
            run(Coll::Reduce, t, op);
          }
          run(Coll::AllReduce, t, kPremulHost);
          run(Coll::AllReduce, t, kPremulDevice);
        }
      }
    freeRanks(rk);
  }
  std::printf("sweep: %d cases on 2, 3 and 4 ranks sharing the GPU, %d wrong, %.1f s\n", cases, bad,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return bad == 0 ? 0 : 1;
}

// ---- point-to-point ---------------------------------------------------------------------------

// Value of element i of the message rank `from` sends to rank `to` (tag: which message).
double p2pValue(int from, int to, int tag, size_t i) {
  return double((i * 3 + size_t(from) * 5 + size_t(to) * 7 + tag) % 97);
}

int p2p() {
  const fcclDataType_t types[] = {fcclFloat32, fcclFloat16, fcclInt8, fcclUint64, fcclBfloat16};
  int cases = 0, bad = 0;
  for (int n : {2, 3, 4}) {
    Ranks rk = makeRanks(n);
    for (fcclDataType_t t : types)
      for (size_t count : {size_t(0), size_t(1), size_t(7), (size_t(1) << 20) + 3}) {
        const size_t es = typeSize(t), bytes = std::max<size_t>(1, count * es);
        // Per rank: two messages to next (tags 0, 1), one to itself (tag 2); an AlltoAll of count each.
        std::vector<std::vector<void*>> in(n, std::vector<void*>(3)), out(n, std::vector<void*>(3));
        std::vector<void*> aIn(n), aOut(n);
        for (int r = 0; r < n; ++r) {
          const int next = (r + 1) % n;
          std::vector<char> h(bytes), ha(std::max<size_t>(1, count * es * n));
          for (int tag = 0; tag < 3; ++tag) {
            for (size_t i = 0; i < count; ++i)
              store(t, h.data(), i, p2pValue(r, tag == 2 ? r : next, tag, i));
            CUDA_OK(cudaMalloc(&in[r][tag], bytes));
            CUDA_OK(cudaMalloc(&out[r][tag], bytes));
            CUDA_OK(cudaMemcpy(in[r][tag], h.data(), count * es, cudaMemcpyHostToDevice));
            CUDA_OK(cudaMemset(out[r][tag], 0xff, bytes));
          }
          for (int p = 0; p < n; ++p)
            for (size_t i = 0; i < count; ++i) store(t, ha.data(), p * count + i, p2pValue(r, p, 3, i));
          CUDA_OK(cudaMalloc(&aIn[r], ha.size()));
          CUDA_OK(cudaMalloc(&aOut[r], ha.size()));
          CUDA_OK(cudaMemcpy(aIn[r], ha.data(), ha.size(), cudaMemcpyHostToDevice));
          CUDA_OK(cudaMemset(aOut[r], 0xff, ha.size()));
        }
        FCCL_OK(fcclGroupStart());
        for (int r = 0; r < n; ++r) {
          const int next = (r + 1) % n, prev = (r + n - 1) % n;
          for (int tag = 0; tag < 2; ++tag) {
            FCCL_OK(fcclSend(in[r][tag], count, t, next, rk.comms[r], rk.streams[r]));
            FCCL_OK(fcclRecv(out[r][tag], count, t, prev, rk.comms[r], rk.streams[r]));
          }
          FCCL_OK(fcclSend(in[r][2], count, t, r, rk.comms[r], rk.streams[r]));
          FCCL_OK(fcclRecv(out[r][2], count, t, r, rk.comms[r], rk.streams[r]));
        }
        FCCL_OK(fcclGroupEnd());
        FCCL_OK(fcclGroupStart());
        for (int r = 0; r < n; ++r)
          FCCL_OK(fcclAlltoAll(aIn[r], aOut[r], count, t, rk.comms[r], rk.streams[r]));
        FCCL_OK(fcclGroupEnd());
        if (!syncAll(rk, 60)) {
          fail("p2p: streams did not finish within 60 s");
          std::exit(2);
        }
        for (int r = 0; r < n; ++r) {
          const int prev = (r + n - 1) % n;
          std::vector<char> h(bytes), ha(std::max<size_t>(1, count * es * n));
          bool ok = true;
          for (int tag = 0; tag < 3 && ok; ++tag) {
            CUDA_OK(cudaMemcpy(h.data(), out[r][tag], bytes, cudaMemcpyDeviceToHost));
            const int from = tag == 2 ? r : prev;
            for (size_t i = 0; i < count && ok; ++i)
              ok = load(t, h.data(), i) == load_round(t, p2pValue(from, r, tag, i));
          }
          CUDA_OK(cudaMemcpy(ha.data(), aOut[r], ha.size(), cudaMemcpyDeviceToHost));
          for (int p = 0; p < n && ok; ++p)
            for (size_t i = 0; i < count && ok; ++i)
              ok = load(t, ha.data(), p * count + i) == load_round(t, p2pValue(p, r, 3, i));
          ++cases;
          if (!ok) {
            ++bad;
            fail(std::string("p2p ") + typeName(t) + " count " + std::to_string(count) + " on " +
                 std::to_string(n) + " ranks: rank " + std::to_string(r) + " received wrong data");
          }
          for (int tag = 0; tag < 3; ++tag) {
            CUDA_OK(cudaFree(in[r][tag]));
            CUDA_OK(cudaFree(out[r][tag]));
          }
          CUDA_OK(cudaFree(aIn[r]));
          CUDA_OK(cudaFree(aOut[r]));
        }
      }
    freeRanks(rk);
  }
  std::printf("p2p: %d rank-cases (Send/Recv, self, AlltoAll) on 2, 3 and 4 ranks, %d wrong\n", cases, bad);
  return bad == 0 ? 0 : 1;
}

// ---- bad input, queries, memory ---------------------------------------------------------------

// The call fails with `code` and its sentence contains `words`.
void expectRefused(fcclResult_t got, fcclResult_t code, fcclComm_t comm, const char* words,
                   const char* what) {
  const std::string e = fcclGetLastError(comm);
  if (got != code || e.find(words) == std::string::npos)
    fail(std::string(what) + ": got " + fcclGetErrorString(got) + " \"" + e + "\", want \"" + words + "\"");
  else
    std::printf("refused as expected: %s\n", e.c_str());
}

int errors() {
  const int before = g_failures;
  Ranks rk = makeRanks(2);
  int dev = -7;
  FCCL_OK(fcclCommCuDevice(rk.comms[1], &dev));
  if (dev != 0) fail("fcclCommCuDevice gave " + std::to_string(dev));
  void *d = nullptr, *d2 = nullptr;
  FCCL_OK(fcclMemAlloc(&d, 4096));
  FCCL_OK(fcclMemAlloc(&d2, 4096));
  std::vector<float> h(1024, 1.0f);
  expectRefused(fcclAllReduce(h.data(), d, 1024, fcclFloat32, fcclSum, rk.comms[0], rk.streams[0]),
                fcclInvalidArgument, rk.comms[0], "sendbuff is host memory", "host sendbuff");
  expectRefused(fcclAllReduce(d, h.data(), 1024, fcclFloat32, fcclSum, rk.comms[0], rk.streams[0]),
                fcclInvalidArgument, rk.comms[0], "recvbuff is host memory", "host recvbuff");
  expectRefused(fcclAllReduce(d, d2, 1024, fcclFloat32, fcclSum, rk.comms[0], nullptr), fcclInvalidArgument,
                rk.comms[0], "legacy default stream", "NULL stream shared by ranks of one GPU");
  // Nothing was enqueued: the two ranks still run one AllReduce together.
  FCCL_OK(fcclGroupStart());
  for (int r = 0; r < 2; ++r)
    FCCL_OK(fcclAllReduce(d, d2, 1024, fcclFloat32, fcclSum, rk.comms[r], rk.streams[r]));
  FCCL_OK(fcclGroupEnd());
  if (!syncAll(rk, 30)) fail("AllReduce after refused calls did not finish");
  // A host communicator next to them refuses device memory.
  fcclUniqueId id;
  FCCL_OK(fcclGetUniqueId(&id));
  fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
  config.device = -1;
  fcclComm_t host = nullptr;
  FCCL_OK(fcclCommInitRankConfig(&host, 1, id, 0, &config));
  FCCL_OK(fcclCommCuDevice(host, &dev));
  if (dev != -1) fail("host communicator's fcclCommCuDevice gave " + std::to_string(dev));
  expectRefused(fcclAllReduce(d, d, 1024, fcclFloat32, fcclSum, host, nullptr), fcclInvalidArgument, host,
                "CUDA device memory but the communicator is a host communicator",
                "device buffer on a host comm");
  FCCL_OK(fcclCommDestroy(host));
  FCCL_OK(fcclMemFree(d));
  FCCL_OK(fcclMemFree(d2));
  freeRanks(rk);
  std::printf("errors: %d failed\n", g_failures - before);
  return g_failures == before ? 0 : 1;
}

// ---- abort and timeout of a kernel waiting for a peer -----------------------------------------

int abortAndTimeout() {
  const int before = g_failures;
  void *a, *b;
  CUDA_OK(cudaMalloc(&a, 1 << 20));
  CUDA_OK(cudaMalloc(&b, 1 << 20));
  {  // fcclCommAbort: rank 0 waits for rank 1, which never calls.
    Ranks rk = makeRanks(2);
    FCCL_OK(fcclAllReduce(a, b, 1 << 18, fcclFloat32, fcclSum, rk.comms[0], rk.streams[0]));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (cudaStreamQuery(rk.streams[0]) != cudaErrorNotReady)
      fail("abort: the lone rank's kernel did not wait");
    const auto t0 = std::chrono::steady_clock::now();
    FCCL_OK(fcclCommAbort(rk.comms[0]));
    CUDA_OK(cudaStreamSynchronize(rk.streams[0]));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("abort: the waiting kernel ended %.3f s after fcclCommAbort\n", s);
    if (s > 5) fail("abort took more than 5 s");
    FCCL_OK(fcclCommDestroy(rk.comms[1]));
    for (cudaStream_t st : rk.streams) CUDA_OK(cudaStreamDestroy(st));
  }
  {  // The communicator's timeout: the kernel gives up alone and the error names the peer.
    std::vector<fcclComm_t> comms(2);
    fcclUniqueId id;
    FCCL_OK(fcclGetUniqueId(&id));
    std::vector<std::thread> th;
    for (int r = 0; r < 2; ++r)
      th.emplace_back([&, r] {
        CUDA_OK(cudaSetDevice(0));  // the rank binds to this thread's current device
        fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
        config.timeoutMs = 2000;
        FCCL_OK(fcclCommInitRankConfig(&comms[r], 2, id, r, &config));
      });
    for (auto& t : th) t.join();
    cudaStream_t st;
    CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    const auto t0 = std::chrono::steady_clock::now();
    FCCL_OK(fcclAllReduce(a, b, 1 << 18, fcclFloat32, fcclSum, comms[0], st));
    CUDA_OK(cudaStreamSynchronize(st));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fcclResult_t async = fcclSuccess;
    FCCL_OK(fcclCommGetAsyncError(comms[0], &async));
    const std::string e = fcclGetLastError(comms[0]);
    std::printf("timeout: the kernel gave up after %.2f s: %s: %s\n", s, fcclGetErrorString(async),
                e.c_str());
    if (async == fcclSuccess || e.find("rank 1") == std::string::npos)
      fail("timeout not reported with the peer");
    if (s < 1.5 || s > 10) fail("timeout after " + std::to_string(s) + " s, want about 2");
    expectRefused(fcclAllReduce(a, b, 16, fcclFloat32, fcclSum, comms[0], st), async, comms[0],
                  "failed earlier", "a call after the timeout");
    for (fcclComm_t c : comms) FCCL_OK(fcclCommDestroy(c));
    CUDA_OK(cudaStreamDestroy(st));
  }
  CUDA_OK(cudaFree(a));
  CUDA_OK(cudaFree(b));
  return g_failures == before ? 0 : 1;
}

// ---- bandwidth --------------------------------------------------------------------------------

// Two ranks on the GPU with a send and a receive buffer of `bytes` each (fcclMemAlloc).
struct AllReducePair {
  Ranks rk = makeRanks(2);
  std::vector<void*> send = std::vector<void*>(2), recv = std::vector<void*>(2);
  explicit AllReducePair(size_t bytes) {
    for (int r = 0; r < 2; ++r) {
      FCCL_OK(fcclMemAlloc(&send[r], bytes));
      FCCL_OK(fcclMemAlloc(&recv[r], bytes));
      CUDA_OK(cudaMemset(send[r], 0, bytes));
    }
  }
  bool hung = false;  // a timed loop did not finish: leave the ranks (destroying would wait on them)
  ~AllReducePair() {
    if (hung) return;
    for (int r = 0; r < 2; ++r) {
      FCCL_OK(fcclMemFree(send[r]));
      FCCL_OK(fcclMemFree(recv[r]));
    }
    freeRanks(rk);
  }
  // Microseconds per float32 sum AllReduce of `count` elements (both ranks in one group), after
  // `warmup` untimed calls; a negative time when the GPU did not finish within syncSec.
  double time(size_t count, int warmup, int iters, int syncSec) {
    auto once = [&] {
      FCCL_OK(fcclGroupStart());
      for (int r = 0; r < 2; ++r)
        FCCL_OK(fcclAllReduce(send[r], recv[r], count, fcclFloat32, fcclSum, rk.comms[r], rk.streams[r]));
      FCCL_OK(fcclGroupEnd());
    };
    for (int w = 0; w < warmup; ++w) once();
    if (!syncAll(rk, syncSec)) return hung = true, -1;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) once();
    if (!syncAll(rk, syncSec)) return hung = true, -1;
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
  }
};

// Small AllReduces (float32 sum, 2 ranks on the GPU): the time per call from 8 B to 1 MiB, for
// the protocol FCCL_PROTO picks (unset: LL up to 64 KiB), to place the LL/Simple threshold.
int latency() {
  const char* proto = std::getenv("FCCL_PROTO");
  const size_t maxBytes = size_t(1) << 20;
  AllReducePair pair(maxBytes);
  for (size_t bytes = 8; bytes <= maxBytes; bytes *= 4) {
    const double us = pair.time(bytes / 4, 20, 200, 60);
    if (us < 0) return fail("latency: the GPU did not finish"), 1;
    std::printf("latency %-6s %9zu B %9.1f us\n", proto != nullptr ? proto : "auto", bytes, us);
  }
  return 0;
}

int bench() {
  const size_t maxBytes = size_t(1) << 30;
  void *a, *b;
  CUDA_OK(cudaMalloc(&a, maxBytes));
  CUDA_OK(cudaMalloc(&b, maxBytes));
  CUDA_OK(cudaMemset(a, 0, maxBytes));
  cudaEvent_t e0, e1;
  CUDA_OK(cudaEventCreate(&e0));
  CUDA_OK(cudaEventCreate(&e1));
  double bestMs = 1e30;
  for (int it = 0; it < 8; ++it) {
    CUDA_OK(cudaEventRecord(e0));
    CUDA_OK(cudaMemcpyAsync(b, a, maxBytes, cudaMemcpyDeviceToDevice));
    CUDA_OK(cudaEventRecord(e1));
    CUDA_OK(cudaEventSynchronize(e1));
    float ms;
    CUDA_OK(cudaEventElapsedTime(&ms, e0, e1));
    if (it >= 2) bestMs = std::min(bestMs, double(ms));
  }
  const double copyGBs = 2.0 * maxBytes / (bestMs * 1e-3) / 1e9;
  std::printf(
      "copy 1 GiB device to device: %.1f GB/s (bytes read + written); bound for 2 ranks: %.1f GB/s busbw\n",
      copyGBs, copyGBs / 4);
  CUDA_OK(cudaFree(a));
  CUDA_OK(cudaFree(b));
  AllReducePair pair(maxBytes);
  std::printf("%12s %10s %10s %10s %8s\n", "bytes", "time(us)", "algbw", "busbw", "of bound");
  // Messages of 1 MiB .. 1 GiB per rank.
  for (size_t bytes = size_t(1) << 20; bytes <= maxBytes; bytes *= 4) {
    const double us = pair.time(bytes / 4, 3, bytes >= (size_t(64) << 20) ? 5 : 20, 120);
    if (us < 0) return fail("bench: the GPU did not finish"), 1;
    const double algbw = bytes / us / 1e3, busbw = algbw;  // 2 ranks: busbw = algbw * 2(n-1)/n
    std::printf("%12zu %10.1f %10.2f %10.2f %7.0f%%\n", bytes, us, algbw, busbw, 100 * busbw / (copyGBs / 4));
  }
  fcclResult_t async;
  for (int r = 0; r < 2; ++r) {
    FCCL_OK(fcclCommGetAsyncError(pair.rk.comms[r], &async));
    if (async != fcclSuccess) fail("bench: async error on rank " + std::to_string(r));
  }
  return g_failures == 0 ? 0 : 1;
}

// ---- ranks as processes (CUDA IPC) --------------------------------------------------------------

// One rank of --processes: its own process, bound to device 0 by cudaSetDevice.
int processRank(const fcclUniqueId& id, int rank, int n) {
  CUDA_OK(cudaSetDevice(0));
  fcclComm_t comm;
  FCCL_OK(fcclCommInitRank(&comm, n, id, rank));
  cudaStream_t st;
  CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  int bad = 0;
  for (size_t count : {size_t(7), (size_t(1) << 20) + 3}) {
    std::vector<float> in(count), out(count);
    for (size_t i = 0; i < count; ++i) in[i] = float(input(fcclSum, rank, i));
    float *d, *e;
    CUDA_OK(cudaMalloc(&d, count * 4));
    CUDA_OK(cudaMalloc(&e, count * 4));
    CUDA_OK(cudaMemcpy(d, in.data(), count * 4, cudaMemcpyHostToDevice));
    FCCL_OK(fcclAllReduce(d, e, count, fcclFloat32, fcclSum, comm, st));  // out of place
    FCCL_OK(fcclAllReduce(d, d, count, fcclFloat32, fcclSum, comm, st));  // in place
    CUDA_OK(cudaStreamSynchronize(st));
    for (float* buf : {e, d}) {
      CUDA_OK(cudaMemcpy(out.data(), buf, count * 4, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < count; ++i) bad += out[i] != float(reduced(fcclFloat32, fcclSum, n, i));
    }
    FCCL_OK(fcclBroadcast(e, d, count, fcclFloat32, 0, comm, st));
    CUDA_OK(cudaStreamSynchronize(st));
    CUDA_OK(cudaMemcpy(out.data(), d, count * 4, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < count; ++i) bad += out[i] != float(reduced(fcclFloat32, fcclSum, n, i));
    CUDA_OK(cudaFree(d));
    CUDA_OK(cudaFree(e));
  }
  fcclResult_t async;
  FCCL_OK(fcclCommGetAsyncError(comm, &async));
  FCCL_OK(fcclCommDestroy(comm));
  if (bad != 0 || async != fcclSuccess)
    std::printf("processes: rank %d: %d wrong elements, async %d\n", rank, bad, int(async));
  return bad == 0 && async == fcclSuccess ? 0 : 1;
}

// Before any CUDA call in this process: the children start with a clean driver.
int processes() {
  const int n = 2;
  fcclUniqueId id;
  FCCL_OK(fcclGetUniqueId(&id));
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<pid_t> kids;
  for (int r = 0; r < n; ++r) {
    const pid_t pid = fork();
    if (pid == 0) _exit(processRank(id, r, n));
    kids.push_back(pid);
  }
  int failed = 0;
  for (pid_t k : kids) {
    int status = 0;
    // Bounded: a rank still running after 120 s is killed and counted as failed.
    for (;;) {
      const pid_t w = waitpid(k, &status, WNOHANG);
      if (w == k) break;
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > 120) {
        kill(k, SIGKILL);
        waitpid(k, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::printf("processes: 2 ranks as processes on one GPU (CUDA IPC), %d failed, %.1f s\n", failed,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (failed) fail("ranks as processes");
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int rc = 0;
  bool any = false;
  bool quick = false;
  size_t extraCount = 0;  // --count N: the sweep also runs N elements
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "--count") == 0 && i + 1 < argc)
      extraCount = std::strtoull(argv[i + 1], nullptr, 10);
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") continue;
    if (a == "--count") {
      ++i;
      continue;
    }
    any = true;
    if (a == "--sweep")
      rc |= sweep(quick, extraCount);
    else if (a == "--errors")
      rc |= errors();
    else if (a == "--abort")
      rc |= abortAndTimeout();
    else if (a == "--bench")
      rc |= bench();
    else if (a == "--latency")
      rc |= latency();
    else if (a == "--p2p")
      rc |= p2p();
    else if (a == "--processes")
      rc |= processes();
    else
      return std::fprintf(
                 stderr,
                 "usage: %s --sweep [--quick] [--count N] | --latency | --p2p | --errors | --abort | "
                 "--processes | --bench\n",
                 argv[0]),
             2;
  }
  if (!any) rc = sweep(false, 0) | p2p() | errors() | abortAndTimeout();
  std::printf("api_check: %s (%d failures)\n", rc == 0 ? "PASS" : "FAIL", g_failures);
  return rc;
}
