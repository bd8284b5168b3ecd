// common.cc - options, exact inputs/references, the timing and checking driver, and the
// nccl-tests-format table shared by every perf tool (fccl's and mpi_perf).
// Timing follows nccl-tests: per size, a timed loop of -n iterations (each -m collectives), the
// per-rank time combined over ranks per -a, then -c separate check runs on fresh inputs.
#include "common.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "float_conv.h"

namespace fccl::perf {

const fcclDataType_t kTypes[kNumTypes] = {fcclInt8,   fcclUint8, fcclInt32, fcclUint32, fcclInt64,
                                          fcclUint64, fcclHalf,  fcclFloat, fcclDouble, fcclBfloat16};
const char* const kTypeNames[kNumTypes] = {"int8",   "uint8", "int32", "uint32", "int64",
                                           "uint64", "half",  "float", "double", "bfloat16"};
const char* const kOpNames[kNumOps] = {"sum", "prod", "max", "min", "avg", "mulsum"};

size_t typeSize(fcclDataType_t t) {
  switch (t) {
    case fcclInt8:
    case fcclUint8:
      return 1;
    case fcclHalf:
    case fcclBfloat16:
      return 2;
    case fcclInt32:
    case fcclUint32:
    case fcclFloat:
      return 4;
    case fcclInt64:
    case fcclUint64:
    case fcclDouble:
      return 8;
    default:
      return 0;
  }
}

const char* typeName(fcclDataType_t t) {
  for (int i = 0; i < kNumTypes; i++)
    if (kTypes[i] == t) return kTypeNames[i];
  return "?";
}

static bool isFloat(fcclDataType_t t) {
  return t == fcclHalf || t == fcclFloat || t == fcclDouble || t == fcclBfloat16;
}
static bool isUnsigned(fcclDataType_t t) { return t == fcclUint8 || t == fcclUint32 || t == fcclUint64; }

// ---- Exact inputs and references ----------------------------------------------------------------

uint64_t mix(uint64_t seed, uint64_t rank, uint64_t index) {
  // splitmix64 over a combination of the three: different (seed, rank, index) differ.
  uint64_t z = seed * 0x9e3779b97f4a7c15ull + rank * 0xd1b54a32d192ed03ull + index;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

namespace {

void storeInt(fcclDataType_t t, void* buf, size_t i, int64_t v) {
  switch (t) {
    case fcclInt8:
      ((int8_t*)buf)[i] = (int8_t)v;
      break;
    case fcclUint8:
      ((uint8_t*)buf)[i] = (uint8_t)v;
      break;
    case fcclInt32:
      ((int32_t*)buf)[i] = (int32_t)v;
      break;
    case fcclUint32:
      ((uint32_t*)buf)[i] = (uint32_t)v;
      break;
    case fcclInt64:
      ((int64_t*)buf)[i] = v;
      break;
    case fcclUint64:
      ((uint64_t*)buf)[i] = (uint64_t)v;
      break;
    case fcclHalf:
      ((uint16_t*)buf)[i] = floatToHalf((float)v);
      break;
    case fcclBfloat16:
      ((uint16_t*)buf)[i] = floatToBf16((float)v);
      break;
    case fcclFloat:
      ((float*)buf)[i] = (float)v;
      break;
    case fcclDouble:
      ((double*)buf)[i] = (double)v;
      break;
    default:
      break;
  }
}

void storeDouble(fcclDataType_t t, void* buf, size_t i, double v) {
  switch (t) {
    case fcclHalf:
      ((uint16_t*)buf)[i] = floatToHalf((float)v);
      break;
    case fcclBfloat16:
      ((uint16_t*)buf)[i] = floatToBf16((float)v);
      break;
    case fcclFloat:
      ((float*)buf)[i] = (float)v;
      break;
    case fcclDouble:
      ((double*)buf)[i] = v;
      break;
    default:
      storeInt(t, buf, i, (int64_t)v);
      break;
  }
}

double loadDouble(fcclDataType_t t, const void* buf, size_t i) {
  switch (t) {
    case fcclHalf:
      return halfToFloat(((const uint16_t*)buf)[i]);
    case fcclBfloat16:
      return bf16ToFloat(((const uint16_t*)buf)[i]);
    case fcclFloat:
      return ((const float*)buf)[i];
    case fcclDouble:
      return ((const double*)buf)[i];
    default:
      return 0;
  }
}

// Largest input of sum/avg so that nranks of them sum to at most 127: exact in int8 and in
// bfloat16 (integers up to 256), and no partial sum can round, in any order.
int64_t sumRange(int nranks, int scale) {
  return std::clamp<int64_t>(127 / ((int64_t)nranks * scale), 1, 15);
}

// One rank's input of a reduction at element idx: always a small integer.
int64_t reduceValue(fcclDataType_t t, int op, uint64_t seed, int rank, int nranks, size_t idx) {
  switch (op) {
    case 1: {  // prod: 2 on at most 6 ranks, else 1 -> the product is <= 64
      uint64_t bits = mix(seed, 0xffff, idx);
      return (rank < 6 && ((bits >> rank) & 1)) ? 2 : 1;
    }
    case 2:
    case 3: {  // max, min: anything exact; negative only where the type has them
      uint64_t h = mix(seed, rank, idx) % 241;
      return isUnsigned(t) ? (int64_t)h : (int64_t)h - 120;
    }
    case kOpMulSum:
      return 1 + (int64_t)(mix(seed, rank, idx) % sumRange(nranks, 2));
    default:  // sum, avg
      return 1 + (int64_t)(mix(seed, rank, idx) % sumRange(nranks, 1));
  }
}

int64_t mulSumScalarValue(int rank) { return 1 + (rank & 1); }

}  // namespace

void fillReduceInput(fcclDataType_t t, int op, uint64_t seed, int rank, int nranks, void* buf, size_t count,
                     size_t first) {
  for (size_t i = 0; i < count; i++) storeInt(t, buf, i, reduceValue(t, op, seed, rank, nranks, first + i));
}

void fillReduceExpected(fcclDataType_t t, int op, uint64_t seed, int nranks, void* buf, size_t count,
                        size_t first) {
  for (size_t i = 0; i < count; i++) {
    int64_t acc = reduceValue(t, op, seed, 0, nranks, first + i);
    if (op == kOpMulSum) acc *= mulSumScalarValue(0);
    for (int r = 1; r < nranks; r++) {
      int64_t v = reduceValue(t, op, seed, r, nranks, first + i);
      switch (op) {
        case 1:
          acc *= v;
          break;
        case 2:
          acc = std::max(acc, v);
          break;
        case 3:
          acc = std::min(acc, v);
          break;
        case kOpMulSum:
          acc += mulSumScalarValue(r) * v;
          break;
        default:
          acc += v;
          break;
      }
    }
    if (op == 4 && isFloat(t))
      storeDouble(t, buf, i, (double)acc / nranks);
    else
      storeInt(t, buf, i, op == 4 ? acc / nranks : acc);  // integer avg truncates, as NCCL
  }
}

void fillPattern(fcclDataType_t t, uint64_t seed, void* buf, size_t count, size_t first) {
  // Integers take the hash's low bits (every bit pattern is a value); floats take integers
  // in [-R, R], R the largest run of consecutive integers the format holds.
  int64_t range = t == fcclHalf       ? 2048
                  : t == fcclBfloat16 ? 256
                  : t == fcclFloat    ? (1 << 24)
                                      : (int64_t)1 << 53;
  for (size_t i = 0; i < count; i++) {
    uint64_t h = mix(seed, 0x5eed, first + i);
    if (isFloat(t))
      storeInt(t, buf, i, (int64_t)(h % (uint64_t)(2 * range + 1)) - range);
    else
      storeInt(t, buf, i, (int64_t)h);
  }
}

void mulSumScalar(fcclDataType_t t, int rank, void* out) {
  std::memset(out, 0, 8);
  storeInt(t, out, 0, mulSumScalarValue(rank));
}

int64_t countWrong(fcclDataType_t t, int op, int nranks, const void* got, const void* want, size_t count) {
  int64_t wrong = 0;
  size_t elt = typeSize(t);
  if (op == 4 && isFloat(t)) {
    // avg on floats: the library may divide the sum or pre-scale each input by 1/n; either
    // way the error is a few roundings, bounded by (n+2) units of the type's epsilon.
    double eps = t == fcclHalf ? 0x1p-10 : t == fcclBfloat16 ? 0x1p-7 : t == fcclFloat ? 0x1p-23 : 0x1p-52;
    double tol = eps * (nranks + 2);
    for (size_t i = 0; i < count; i++) {
      double g = loadDouble(t, got, i), w = loadDouble(t, want, i);
      if (!(std::fabs(g - w) <= tol * std::max(1.0, std::fabs(w)))) wrong++;
    }
    return wrong;
  }
  const char* g = (const char*)got;
  const char* w = (const char*)want;
  for (size_t i = 0; i < count; i++)
    if (std::memcmp(g + i * elt, w + i * elt, elt) != 0) wrong++;
  return wrong;
}

// ---- Output ---------------------------------------------------------------------------------------

std::string hostName() {
  char h[256] = {0};
  if (gethostname(h, sizeof h - 1) != 0) return "unknown";
  if (char* dot = std::strchr(h, '.')) *dot = '\0';
  return h;
}

void printHeader(const Options& o, const char* program, int versionCode, int nThreads) {
  std::printf("# fccl perf tests (nccl-tests 2.19.6 format) fccl-headers=%d fccl-library=%d\n",
              FCCL_VERSION_CODE, versionCode);
  std::printf("# Collective test starting: %s\n", program);
  std::printf(
      "# nThread %d nGpus %d minBytes %zu maxBytes %zu step: %zu(%s) warmup iters: %d "
      "iters: %d agg iters: %d validation: %d graph: %d unalign: %d\n",
      nThreads, 1, o.minBytes, o.maxBytes, o.stepFactor > 1 ? o.stepFactor : o.stepBytes,
      o.stepFactor > 1 ? "factor" : "bytes", o.warmupIters, o.iters, o.aggIters, o.check, 0, 0);
  if (o.blocking)
    std::printf("# Blocking Enabled: host collectives are synchronous, -z %d changes nothing\n", o.blocking);
  std::printf("#\n");
}

void printDevicesTitle() { std::printf("# Using devices\n"); }

std::string deviceLine(int rank, int group, int device, const char* what) {
  char line[256];
  std::snprintf(line, sizeof line, "#  Rank %2d Group %2d Pid %6d on %10s device %2d %s\n", rank, group,
                (int)getpid(), hostName().c_str(), device, what);
  return line;
}

void printColumnHeader() {
  std::printf("#\n");
  std::printf(
      "# %10s  %12s  %8s  %6s  %6s           out-of-place                       in-place"
      "          \n",
      "", "", "", "", "");
  std::printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s %*s\n", "size", "count",
              "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw", "#wrong",
              0, "");
  std::printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s %*s\n", "(B)",
              "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "", 0,
              "");
  std::fflush(stdout);
}

void printFooter(const Totals& t, const char* program) {
  double avg = t.bwCount ? t.bwSum / t.bwCount : 0.0;
  std::printf("# %-20s : %lld %s\n", "Out of bounds values", (long long)t.wrong, t.wrong ? "FAILED" : "OK");
  std::printf("# %-20s : %g \n", "Avg bus bandwidth", avg);
  std::printf("#\n");
  std::printf("# Collective test concluded: %s\n", program);
  std::printf("#\n");
  std::fflush(stdout);
}

namespace {

// A number in exactly `width` characters, as many decimals as fit (nccl-tests' rule).
std::string fitNumber(double v, int width) {
  char s[64];
  for (int prec = 2; prec >= 0; prec--)
    if (std::snprintf(s, sizeof s, "%*.*f", width, prec, v) <= width) return s;
  std::snprintf(s, sizeof s, width >= 7 ? "%*.1e" : "%*.0e", width, v);
  return s;
}

struct Group {
  bool ran = false, reportErrors = false;
  double us = 0, algbw = 0, busbw = 0;
  int64_t wrong = 0;
};

std::string groupText(const Group& g) {
  char s[128];
  if (!g.ran) {
    std::snprintf(s, sizeof s, "  %7s  %6s  %6s  %6s", "N/A", "N/A", "N/A", "N/A");
  } else if (g.reportErrors) {
    std::snprintf(s, sizeof s, "  %7s  %6s  %6s  %6g", fitNumber(g.us, 7).c_str(),
                  fitNumber(g.algbw, 6).c_str(), fitNumber(g.busbw, 6).c_str(), (double)g.wrong);
  } else {
    std::snprintf(s, sizeof s, "  %7s  %6s  %6s    N/A", fitNumber(g.us, 7).c_str(),
                  fitNumber(g.algbw, 6).c_str(), fitNumber(g.busbw, 6).c_str());
  }
  return s;
}

// Page-aligned, zero-filled (touched now, so page faults are not timed).
struct Buffer {
  void* p = nullptr;
  explicit Buffer(size_t bytes) {
    size_t n = (bytes + 4095) / 4096 * 4096 + 4096;
    p = std::aligned_alloc(4096, n);
    if (p) std::memset(p, 0, n);
  }
  ~Buffer() { std::free(p); }
  char* c() const { return (char*)p; }
};

double nowSec() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

bool torchrunEnv(int* rank, int* size, std::string* error) {
  const char* r = std::getenv("RANK");
  const char* w = std::getenv("WORLD_SIZE");
  if (!r || !w) return false;
  char* end1 = nullptr;
  char* end2 = nullptr;
  long rv = std::strtol(r, &end1, 10), wv = std::strtol(w, &end2, 10);
  if (*r == '\0' || *end1 || *w == '\0' || *end2 || wv < 1 || wv > (1 << 20) || rv < 0 || rv >= wv) {
    *error = std::string("bad RANK=") + r + " / WORLD_SIZE=" + w + " in the environment";
    return true;
  }
  *rank = (int)rv;
  *size = (int)wv;
  if (!std::getenv("FCCL_COMM_ID")) {
    const char* addr = std::getenv("MASTER_ADDR");
    const char* port = std::getenv("MASTER_PORT");
    if (!addr || !port) {
      *error = "RANK/WORLD_SIZE set but MASTER_ADDR or MASTER_PORT missing (or set FCCL_COMM_ID)";
      return true;
    }
    std::string id =
        std::strchr(addr, ':') ? "[" + std::string(addr) + "]:" + port : std::string(addr) + ":" + port;
    setenv("FCCL_COMM_ID", id.c_str(), 1);  // before the first fccl call
  }
  return true;
}

[[noreturn]] void Rank::fatal(const std::string& msg) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s: rank %d: %s\n", hostName().c_str(), rank, msg.c_str());
  std::fflush(stderr);
  _exit(2);
}

// ---- The driver -----------------------------------------------------------------------------------

Totals runBenchmark(const Options& o, const Coll& coll, Rank& r) {
  Totals tot;
  const bool printer = r.rank == 0;
  std::vector<int> types, ops, roots;
  if (o.typeIndex >= 0)
    types.push_back(o.typeIndex);
  else
    for (int i = 0; i < kNumTypes; i++) types.push_back(i);
  if (!coll.hasOp)
    ops.push_back(-1);
  else if (o.opIndex >= 0)
    ops.push_back(o.opIndex);
  else
    for (int i = 0; i < kOpMulSum; i++) ops.push_back(i);  // "all": as nccl-tests, minus mulsum
  if (!coll.hasRoot)
    roots.push_back(-1);
  else if (o.root >= 0)
    roots.push_back(o.root);
  else
    for (int i = 0; i < r.nranks; i++) roots.push_back(i);
  if (coll.hasRoot && o.root >= r.nranks)
    r.fatal("root " + std::to_string(o.root) + " is not a rank (there are " + std::to_string(r.nranks) +
            " ranks)");

  // Buffers for the largest size: with 1-byte elements the counts are largest.
  Counts cmax;
  coll.counts(o.maxBytes, 1, r.nranks, &cmax);
  size_t bufBytes = std::max({o.maxBytes, cmax.send, cmax.recv});
  Buffer send(bufBytes), recv(bufBytes), expected(bufBytes);
  if (!send.p || !recv.p || !expected.p)
    r.fatal("cannot allocate 3 x " + std::to_string(bufBytes) + " bytes for -e " +
            std::to_string(o.maxBytes));

  uint64_t rep = 0;  // the seed of each check; the same sequence on every rank
  for (int ti : types) {
    fcclDataType_t type = kTypes[ti];
    size_t elt = typeSize(type);
    for (int oi : ops) {
      std::string why = r.unsupported(coll, type, oi < 0 ? 0 : oi);
      if (!why.empty()) {
        if (printer)
          std::printf("# Skipping %s %s: %s\n", kTypeNames[ti], oi < 0 ? "none" : kOpNames[oi], why.c_str());
        continue;
      }
      for (int root : roots) {
        int op = oi < 0 ? 0 : oi;
        auto runOnce = [&](const Counts& c, bool inPlace, std::string* err) -> void* {
          char* s = inPlace ? recv.c() + c.sendInplaceOffset * r.rank * elt : send.c();
          char* d = recv.c() + (inPlace ? c.recvInplaceOffset * r.rank * elt : 0);
          return r.run(coll, s, d, c.param, type, op, root, inPlace, err);
        };
        auto fail = [&](const std::string& err) {
          r.fatal(std::string(coll.name) + " " + kTypeNames[ti] + ": " + err);
        };
        // Warm-up for every size, out of place, doubling as nccl-tests does.
        for (size_t size = o.minBytes; size <= o.maxBytes; size = size ? size * 2 : 1) {
          Counts c;
          coll.counts(size / elt, elt, r.nranks, &c);
          std::string err;
          for (int w = 0; w < o.warmupIters; w++)
            if (!runOnce(c, false, &err)) fail(err);
        }
        for (long cycle = 0; o.runCycles == 0 || cycle < o.runCycles; cycle++) {
          for (size_t size = o.minBytes; size <= o.maxBytes;) {
            Counts c;
            coll.counts(size / elt, elt, r.nranks, &c);
            Group g[2];
            for (int ip = 0; ip < 2; ip++) {
              bool inPlace = ip == 1;
              if (inPlace && coll.inPlace == InPlace::kNotRun) continue;
              DataCtx d{type,   op,        root,
                        r.rank, r.nranks,  0,
                        c,      inPlace,   inPlace ? recv.c() + c.sendInplaceOffset * r.rank * elt : send.c(),
                        recv.p, expected.p};
              // Every in-place input and result lies inside the larger of the two regions.
              size_t span = std::max(c.send, c.recv) * elt;
              if (o.check) {  // time on valid data (ops on garbage may hit slow paths)
                std::memset(recv.p, 0, span);
                d.seed = 99;
                coll.init(d);
              }
              std::string err;
              r.barrier();
              double t0 = nowSec();
              for (int it = 0; it < o.iters; it++) {
                if (o.aggIters > 1) r.groupStart();
                for (int a = 0; a < o.aggIters; a++)
                  if (!runOnce(c, inPlace, &err)) fail(err);
                if (o.aggIters > 1) r.groupEnd();
              }
              double sec = (nowSec() - t0) / ((double)o.iters * o.aggIters);
              sec = r.reduce(sec, (Agg)o.average);
              g[ip].ran = true;
              g[ip].us = sec * 1e6;
              g[ip].algbw = (double)c.param * elt * coll.algFactor(r.nranks) / 1e9 / sec;
              g[ip].busbw = g[ip].algbw * coll.busFactor(r.nranks);
              g[ip].reportErrors = o.check > 0 && !(inPlace && coll.inPlace == InPlace::kTimedOnly);
              for (int k = 0; k < o.check; k++) {
                std::memset(recv.p, 0, span);
                d.seed = ++rep;
                coll.init(d);
                r.barrier();
                void* result = runOnce(c, inPlace, &err);
                if (!result) fail(err);
                int64_t w =
                    g[ip].reportErrors ? countWrong(type, op, r.nranks, result, expected.p, c.recv) : 0;
                w = (int64_t)r.reduce((double)w, Agg::kSum);
                g[ip].wrong += w;
                if (w) break;
              }
              if (g[ip].reportErrors) tot.wrong += g[ip].wrong;
              tot.bwSum += g[ip].busbw;
              tot.bwCount++;
            }
            if (printer) {
              std::printf("%12zu  %12zu  %8s  %6s  %6d%s%s\n", std::max(c.send, c.recv) * elt, c.param,
                          kTypeNames[ti], oi < 0 ? "none" : kOpNames[oi], root, groupText(g[0]).c_str(),
                          groupText(g[1]).c_str());
              std::fflush(stdout);
            }
            size_t next = o.stepFactor > 1 ? size * o.stepFactor : size + o.stepBytes;
            if (next <= size) break;  // 0 bytes times a factor, or overflow
            size = next;
          }
        }
      }
    }
  }
  return tot;
}

}  // namespace fccl::perf
