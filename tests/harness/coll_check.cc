// coll_check.cc - inputs, references and verification for one collective call; see
// coll_check.h for the input scheme and tolerances.
#include "coll_check.h"

#include <cmath>
#include <cstring>

#include "dtypes.h"
#include "harness.h"

namespace fccltest {

const char* collName(Coll coll) {
  static const char* names[kNumColls] = {"AllReduce", "Reduce",   "Broadcast", "ReduceScatter",
                                         "AllGather", "AlltoAll", "SendRecv"};
  return names[(int)coll];
}
bool collReduces(Coll c) { return c == Coll::AllReduce || c == Coll::Reduce || c == Coll::ReduceScatter; }
bool collHasRoot(Coll c) { return c == Coll::Reduce || c == Coll::Broadcast; }
bool collSupportsInPlace(Coll c) { return c != Coll::AlltoAll && c != Coll::SendRecv; }

double avgTolerance(fcclDataType_t dt) {
  switch (dt) {
    case fcclBfloat16:
      return 1e-2;
    case fcclFloat16:
      return 1e-3;
    case fcclFloat32:
      return 1e-6;
    case fcclFloat64:
      return 1e-12;
    default:
      return 0;
  }
}

std::string CollCase::describe(int nranks) const {
  std::string s = strf("%s %s", collName(coll), dtypeInfo(dt).name);
  if (collReduces(coll)) s += strf(" %s", preMul ? strf("premulsum(%g)", preMulScalar).c_str() : opName(op));
  s += strf(" count=%zu %s nranks=%d", count, inPlace ? "in-place" : "out-of-place", nranks);
  if (collHasRoot(coll)) s += strf(" root=%d", root);
  if (byteOffset) s += strf(" byteOffset=%zu", byteOffset);
  if (nullNonRootRecv) s += " (recvbuff NULL off root)";
  return s;
}

// ---- Inputs ---------------------------------------------------------------------------
static uint64_t mix(uint64_t seed, int rank, size_t idx) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + (uint64_t)(rank + 1) * 0xD1B54A32D192ED03ull +
               (uint64_t)idx * 0x94D049BB133111EBull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void genInput(const CollCase& c, int rank, size_t idx, void* base, size_t i) {
  const DtypeInfo& info = dtypeInfo(c.dt);
  uint64_t m = mix(c.seed, rank, idx);
  bool wide = !collReduces(c.coll) || (!c.preMul && (c.op == fcclMax || c.op == fcclMin));
  if (wide) {
    if (info.isFloat)
      storeDouble(c.dt, base, i, (double)((int64_t)(m % 2000001) - 1000000) / 64.0);
    else
      storeInt(c.dt, base, i, m);
    return;
  }
  int64_t v;
  if (!c.preMul && c.op == fcclProd)
    v = (m % 3 == 0) ? 2 : 1;
  else
    v = (int64_t)(m % 5) - (info.isSigned ? 2 : 0);  // unsigned: 0..4, else -2..2
  if (info.isFloat)
    storeDouble(c.dt, base, i, (double)v);
  else
    storeInt(c.dt, base, i, (uint64_t)v);
}

// ---- References -----------------------------------------------------------------------
namespace {
struct Want {
  bool exactBits;  // integers and copies: compare the type's bits
  uint64_t bits;
  double value;
  double tol;  // floats: 0 = exact
};

Want copyRef(const CollCase& c, int rank, size_t idx) {
  uint64_t tmp = 0;
  genInput(c, rank, idx, &tmp, 0);
  return Want{true, loadBits(c.dt, &tmp, 0), 0, 0};
}

Want reduceRef(const CollCase& c, int nranks, size_t idx) {
  const DtypeInfo& info = dtypeInfo(c.dt);
  if (!info.isFloat) {
    uint64_t acc = 0;
    int64_t exact = 0;
    for (int r = 0; r < nranks; ++r) {
      uint64_t tmp = 0;
      genInput(c, r, idx, &tmp, 0);
      int64_t v = loadInt(c.dt, &tmp, 0);
      uint64_t u = loadBits(c.dt, &tmp, 0);
      if (c.preMul) {
        acc += (uint64_t)(int64_t)c.preMulScalar * (uint64_t)v;
        continue;
      }
      switch (c.op) {
        case fcclSum:
          acc += (uint64_t)v;
          break;
        case fcclProd:
          acc = (r == 0 ? 1 : acc) * (uint64_t)v;
          break;
        case fcclMax:
          if (r == 0 || (info.isSigned ? v > (int64_t)acc : u > acc)) acc = info.isSigned ? (uint64_t)v : u;
          break;
        case fcclMin:
          if (r == 0 || (info.isSigned ? v < (int64_t)acc : u < acc)) acc = info.isSigned ? (uint64_t)v : u;
          break;
        default:
          exact += v;
          break;  // avg
      }
    }
    if (!c.preMul && c.op == fcclAvg) acc = (uint64_t)(exact / nranks);  // truncates toward zero
    return Want{true, maskBits(c.dt, acc), 0, 0};
  }
  double acc = 0;
  for (int r = 0; r < nranks; ++r) {
    uint64_t tmp = 0;
    genInput(c, r, idx, &tmp, 0);
    double v = loadDouble(c.dt, &tmp, 0);
    if (c.preMul) {
      acc += c.preMulScalar * v;
      continue;
    }
    switch (c.op) {
      case fcclSum:
      case fcclAvg:
        acc += v;
        break;
      case fcclProd:
        acc = (r == 0 ? 1 : acc) * v;
        break;
      case fcclMax:
        acc = (r == 0 || v > acc) ? v : acc;
        break;
      case fcclMin:
        acc = (r == 0 || v < acc) ? v : acc;
        break;
      default:
        break;
    }
  }
  if (c.preMul) return Want{false, 0, acc, avgTolerance(c.dt)};
  if (c.op == fcclAvg) return Want{false, 0, acc / nranks, avgTolerance(c.dt)};
  return Want{false, 0, acc, 0};
}
}  // namespace

// ---- CollRun --------------------------------------------------------------------------
size_t CollRun::sendElems() const {
  switch (c_.coll) {
    case Coll::ReduceScatter:
    case Coll::AlltoAll:
      return c_.count * n_;
    default:
      return c_.count;
  }
}
size_t CollRun::recvElems() const {
  switch (c_.coll) {
    case Coll::AllGather:
    case Coll::AlltoAll:
      return c_.count * n_;
    default:
      return c_.count;
  }
}

CollRun::CollRun(const CollCase& c, int rank, int nranks)
    : c_(c), rank_(rank), n_(nranks), esz_(dtypeInfo(c.dt).size) {
  if (!collSupportsInPlace(c_.coll)) c_.inPlace = false;
  size_t sN = sendElems(), rN = recvElems(), off = c_.byteOffset;
  if (!c_.inPlace) {
    send_ = GuardedBuf(sN * esz_, off);
    for (size_t i = 0; i < sN; ++i) genInput(c_, rank_, i, send_.data(), i);
    recv_ = GuardedBuf(rN * esz_, off);
    recv_.fill(kUnwrittenByte);
    sendPtr_ = send_.data();
    recvPtr_ = recv_.data();
    if (c_.coll == Coll::Reduce && rank_ != c_.root && c_.nullNonRootRecv) recvPtr_ = nullptr;
    sendCopy_.reset(new char[sN * esz_ + 1]);
    memcpy(sendCopy_.get(), send_.data(), sN * esz_);
    return;
  }
  size_t bufElems = c_.coll == Coll::AllGather ? rN : sN;
  recv_ = GuardedBuf(bufElems * esz_, off);
  char* buf = recv_.data();
  sendPtr_ = buf;
  recvPtr_ = buf;
  switch (c_.coll) {
    case Coll::Broadcast:
      if (rank_ == c_.root)
        for (size_t i = 0; i < sN; ++i) genInput(c_, rank_, i, buf, i);
      else
        recv_.fill(kUnwrittenByte);
      break;
    case Coll::AllGather:
      recv_.fill(kUnwrittenByte);
      sendPtr_ = buf + rank_ * c_.count * esz_;
      for (size_t i = 0; i < c_.count; ++i) genInput(c_, rank_, i, buf + rank_ * c_.count * esz_, i);
      break;
    case Coll::ReduceScatter:
      recvPtr_ = buf + rank_ * c_.count * esz_;
      for (size_t i = 0; i < sN; ++i) genInput(c_, rank_, i, buf, i);
      break;
    default:  // AllReduce, Reduce
      for (size_t i = 0; i < sN; ++i) genInput(c_, rank_, i, buf, i);
      break;
  }
  sendCopy_.reset(new char[bufElems * esz_ + 1]);
  memcpy(sendCopy_.get(), buf, bufElems * esz_);
}

fcclResult_t CollRun::issue(fcclComm_t comm) {
  const size_t n = c_.count;
  switch (c_.coll) {
    case Coll::AllReduce:
      return fcclAllReduce(sendPtr_, recvPtr_, n, c_.dt, c_.op, comm, nullptr);
    case Coll::Reduce:
      return fcclReduce(sendPtr_, recvPtr_, n, c_.dt, c_.op, c_.root, comm, nullptr);
    case Coll::Broadcast:
      return fcclBroadcast(sendPtr_, recvPtr_, n, c_.dt, c_.root, comm, nullptr);
    case Coll::ReduceScatter:
      return fcclReduceScatter(sendPtr_, recvPtr_, n, c_.dt, c_.op, comm, nullptr);
    case Coll::AllGather:
      return fcclAllGather(sendPtr_, recvPtr_, n, c_.dt, comm, nullptr);
    case Coll::AlltoAll:
      return fcclAlltoAll(sendPtr_, recvPtr_, n, c_.dt, comm, nullptr);
    case Coll::SendRecv: {
      fcclResult_t r = fcclSend(sendPtr_, n, c_.dt, (rank_ + 1) % n_, comm, nullptr);
      if (r != fcclSuccess) return r;
      return fcclRecv(recvPtr_, n, c_.dt, (rank_ - 1 + n_) % n_, comm, nullptr);
    }
  }
  return fcclInternalError;
}

bool CollRun::checkGuards(const GuardedBuf& b, const char* which) {
  long bad = 0;
  if (b.guardsIntact(&bad)) return true;
  recordFailure(__FILE__, __LINE__,
                strf("%s: wrote outside %s (byte offset %ld from its start, %zu bytes long)",
                     c_.describe(n_).c_str(), which, bad, b.bytes()));
  return false;
}

bool CollRun::checkBytesEqual(const char* got, const char* want, size_t bytes, const char* what) {
  if (memcmp(got, want, bytes) == 0) return true;
  size_t i = 0;
  while (got[i] == want[i]) ++i;
  recordFailure(
      __FILE__, __LINE__,
      strf("%s: %s (first differing element %zu: %s, was %s)", c_.describe(n_).c_str(), what, i / esz_,
           showElement(c_.dt, got, i / esz_).c_str(), showElement(c_.dt, want, i / esz_).c_str()));
  return false;
}

// out[0..n) must equal the reference at output indices firstIndex + [0, n).
bool CollRun::checkOutput(const char* out, size_t n, size_t firstIndex) {
  size_t wrong = 0, firstWrong = 0;
  Want firstWant{};
  for (size_t k = 0; k < n; ++k) {
    size_t i = firstIndex + k;
    Want w;
    size_t cnt = c_.count;
    switch (c_.coll) {
      case Coll::AllReduce:
      case Coll::Reduce:
        w = reduceRef(c_, n_, i);
        break;
      case Coll::ReduceScatter:
        w = reduceRef(c_, n_, rank_ * cnt + i);
        break;
      case Coll::Broadcast:
        w = copyRef(c_, c_.root, i);
        break;
      case Coll::AllGather:
        w = copyRef(c_, (int)(i / cnt), i % cnt);
        break;
      case Coll::AlltoAll:
        w = copyRef(c_, (int)(i / cnt), rank_ * cnt + i % cnt);
        break;
      case Coll::SendRecv:
        w = copyRef(c_, (rank_ - 1 + n_) % n_, i);
        break;
    }
    bool ok;
    if (w.exactBits) {
      ok = maskBits(c_.dt, loadBits(c_.dt, out, k)) == w.bits;
    } else {
      double got = loadDouble(c_.dt, out, k);
      ok =
          w.tol == 0 ? got == w.value : std::fabs(got - w.value) <= w.tol * std::max(1.0, std::fabs(w.value));
    }
    if (!ok && wrong++ == 0) {
      firstWrong = k;
      firstWant = w;
    }
  }
  if (wrong == 0) return true;
  std::string want;
  if (firstWant.exactBits) {
    uint64_t tmp = firstWant.bits;
    want = showElement(c_.dt, &tmp, 0);
  } else {
    want = strf("%.17g (tol %g)", firstWant.value, firstWant.tol);
  }
  recordFailure(__FILE__, __LINE__,
                strf("%s: %zu of %zu output elements wrong; first at output index %zu: got %s, want %s",
                     c_.describe(n_).c_str(), wrong, n, firstIndex + firstWrong,
                     showElement(c_.dt, out, firstWrong).c_str(), want.c_str()));
  return false;
}

bool CollRun::verify() {
  bool ok = checkGuards(send_, "sendbuff");
  ok = checkGuards(recv_, c_.inPlace ? "the in-place buffer" : "recvbuff") && ok;
  size_t sN = sendElems(), rN = recvElems();
  if (!c_.inPlace) {
    ok =
        checkBytesEqual(send_.data(), sendCopy_.get(), sN * esz_, "out-of-place call changed sendbuff") && ok;
    if (c_.coll == Coll::Reduce && rank_ != c_.root) {
      if (recvPtr_) {
        std::unique_ptr<char[]> pattern(new char[rN * esz_ + 1]);
        memset(pattern.get(), kUnwrittenByte, rN * esz_);
        ok = checkBytesEqual(recv_.data(), pattern.get(), rN * esz_, "Reduce wrote recvbuff off root") && ok;
      }
      return ok;
    }
    return checkOutput(recv_.data(), rN, 0) && ok;
  }
  switch (c_.coll) {
    case Coll::Reduce:
      if (rank_ != c_.root)
        return checkBytesEqual(recv_.data(), sendCopy_.get(), sN * esz_,
                               "in-place Reduce changed the buffer off root") &&
               ok;
      return checkOutput(recv_.data(), rN, 0) && ok;
    case Coll::ReduceScatter: {
      size_t blk = c_.count * esz_;
      ok = checkBytesEqual(recv_.data(), sendCopy_.get(), rank_ * blk,
                           "in-place ReduceScatter changed blocks before the rank's own") &&
           ok;
      size_t after = (rank_ + 1) * blk;
      ok = checkBytesEqual(recv_.data() + after, sendCopy_.get() + after, sN * esz_ - after,
                           "in-place ReduceScatter changed blocks after the rank's own") &&
           ok;
      return checkOutput(static_cast<char*>(recvPtr_), rN, 0) && ok;
    }
    default:
      return checkOutput(recv_.data(), rN, 0) && ok;
  }
}

bool runCollCase(const CollCase& c, fcclComm_t comm, int rank, int nranks) {
  noteProgress(c.describe(nranks));
  CollRun run(c, rank, nranks);
  fcclResult_t res;
  if (c.coll == Coll::SendRecv) {
    res = fcclGroupStart();
    if (res == fcclSuccess) {
      fcclResult_t issued = run.issue(comm);
      res = fcclGroupEnd();
      if (issued != fcclSuccess) res = issued;
    }
  } else {
    res = run.issue(comm);
  }
  if (res != fcclSuccess) {
    recordFailure(__FILE__, __LINE__,
                  strf("%s: returned ", c.describe(nranks).c_str()) + describeResult(res, comm));
    return false;
  }
  run.verify();
  return true;
}

}  // namespace fccltest
