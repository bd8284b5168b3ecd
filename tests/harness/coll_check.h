// coll_check.h - one collective call with inputs whose result is known exactly (nccl-tests
// style: every value derives from (seed, rank, index)), and its verification: the output
// against a reference computed here without communication, guard bytes around every buffer,
// inputs unchanged for out-of-place calls, nothing written where the API says a buffer is
// not used (Reduce's recvbuff off root, blocks of an in-place ReduceScatter other than the
// rank's own). Every rank must build the same CollCase.
//
// Inputs by op: sum/avg/premulsum: small integers (-2..2, unsigned 0..4) so sums over 8 ranks
// are exact in every type; prod: 1 or 2 (integer products wrap like the type); max/min and
// the copy collectives: values over the whole range (integers) or wide random floats.
// Floats compare exactly except avg and premulsum: |got - ref| <= tol * max(1, |ref|) with
// tol 1e-2 bfloat16, 1e-3 float16, 1e-6 float32, 1e-12 float64 (ref in float64).
#pragma once
#include <string>

#include "buffers.h"
#include "fccl.h"

namespace fccltest {

enum class Coll {
  AllReduce,
  Reduce,
  Broadcast,
  ReduceScatter,
  AllGather,
  AlltoAll,
  SendRecv
};
constexpr int kNumColls = 7;
const char* collName(Coll coll);
bool collReduces(Coll coll);
bool collHasRoot(Coll coll);
bool collSupportsInPlace(Coll coll);  // AlltoAll: buffers must not overlap; SendRecv: n/a

struct CollCase {
  Coll coll = Coll::AllReduce;
  fcclDataType_t dt = fcclFloat32;
  fcclRedOp_t op = fcclSum;
  size_t count = 0;  // NCCL's count: per rank block for ReduceScatter/AllGather/AlltoAll
  bool inPlace = false;
  int root = 0;
  size_t byteOffset = 0;         // every user pointer this many bytes past 64-byte alignment
  bool nullNonRootRecv = false;  // Reduce: ranks other than root pass recvbuff = NULL
  uint64_t seed = 1;
  bool preMul = false;        // op came from fcclRedOpCreatePreMulSum with preMulScalar
  double preMulScalar = 1.0;  // the scalar as the type holds it
  std::string describe(int nranks) const;
};

double avgTolerance(fcclDataType_t dt);

// Buffers of one rank for one case: allocated and filled on construction.
class CollRun {
 public:
  CollRun(const CollCase& c, int rank, int nranks);
  // The fccl call(s) of this rank; SendRecv issues fcclSend to rank+1 and fcclRecv from
  // rank-1 and must be inside a group (runCollCase makes one).
  fcclResult_t issue(fcclComm_t comm);
  // Records a failure (non-fatal, with the case's description) for each problem found.
  bool verify();
  const void* sendPtr() const { return sendPtr_; }
  void* recvPtr() const { return recvPtr_; }

 private:
  size_t sendElems() const;
  size_t recvElems() const;
  bool checkGuards(const GuardedBuf& b, const char* which);
  bool checkBytesEqual(const char* got, const char* want, size_t bytes, const char* what);
  bool checkOutput(const char* out, size_t n, size_t firstIndex);

  CollCase c_;
  int rank_, n_;
  size_t esz_;
  GuardedBuf send_, recv_;
  std::unique_ptr<char[]> sendCopy_;  // input as written, for "unchanged" checks
  const void* sendPtr_ = nullptr;
  void* recvPtr_ = nullptr;
};

// Runs c (a group around SendRecv), then verifies. Returns false if the call itself failed
// (recorded as a failure; the ranks may then be out of step), true otherwise.
bool runCollCase(const CollCase& c, fcclComm_t comm, int rank, int nranks);

// Writes input element idx of `rank` for case c at base[i].
void genInput(const CollCase& c, int rank, size_t idx, void* base, size_t i);

}  // namespace fccltest
