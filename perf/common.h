// common.h - the harness behind the nccl-tests-style perf tools (all_reduce_perf, ..., mpi_perf).
// One Coll struct per collective (counts, inputs, expected result, busbw factor, the fccl call)
// plugs into one driver that owns options, timing, in-place/out-of-place, checking and the
// table, which is printed in nccl-tests 2.19 format so its scripts and plots keep working.
// Invariants: every value fed to a reduction is a small integer chosen so that the result is
// exact and order-independent for every dtype; expected values never come from the library.
#ifndef FCCL_PERF_COMMON_H_
#define FCCL_PERF_COMMON_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fccl.h"
#include "options.h"

namespace fccl::perf {

// ---- Types and ops, named as nccl-tests names them ----------------------------------------
constexpr int kNumTypes = 10;
extern const fcclDataType_t kTypes[kNumTypes];  // int8 ... double, bfloat16 (nccl-tests order)
extern const char* const kTypeNames[kNumTypes];
constexpr int kNumOps = 6;
// sum prod max min avg mulsum (nccl-tests order); mulsum is fcclRedOpCreatePreMulSum.
constexpr int kOpMulSum = 5;
extern const char* const kOpNames[kNumOps];
size_t typeSize(fcclDataType_t t);
const char* typeName(fcclDataType_t t);

// ---- One collective ---------------------------------------------------------------------------
// Element counts for one size, as nccl-tests' getCollByteCount: in place, the input starts at
// recvbuf + sendInplaceOffset*rank and the result at recvbuf + recvInplaceOffset*rank.
struct Counts {
  size_t send = 0, recv = 0, param = 0, sendInplaceOffset = 0, recvInplaceOffset = 0;
};
enum class InPlace {
  kChecked,
  kTimedOnly,
  kNotRun
};

// What a collective's init sees: which rank, which data, where the buffers are.
struct DataCtx {
  fcclDataType_t type;
  int op;  // index in kOpNames; 0 for collectives without an op
  int root, rank, nranks;
  uint64_t seed;
  Counts c;
  bool inPlace;
  void* input;     // where this rank's input goes (send.count elements)
  void* recvbuf;   // whole receive buffer, zeroed before init
  void* expected;  // recv.count elements to fill
};

struct Coll {
  const char* name;  // "all_reduce_perf": the program name in the header and footer
  bool hasOp, hasRoot;
  InPlace inPlace;
  void (*counts)(size_t count, size_t eltSize, int nranks, Counts* c);
  void (*init)(const DataCtx& d);
  // algbw = algBytes(count of the row, elt, nranks) / time; busbw = algbw * busFactor.
  double (*algFactor)(int nranks);  // bytes moved per paramcount byte, as nccl-tests
  double (*busFactor)(int nranks);
  fcclResult_t (*run)(const void* send, void* recv, size_t count, fcclDataType_t type, fcclRedOp_t op,
                      int root, fcclComm_t comm);
};
extern const Coll kAllReduce, kReduceScatter, kAllGather, kBroadcast, kReduce, kAlltoAll, kSendRecv;

// ---- Exact inputs and references --------------------------------------------------------------
uint64_t mix(uint64_t seed, uint64_t rank, uint64_t index);
// Input of a reduction: element index [first, first+count) of rank's contribution.
void fillReduceInput(fcclDataType_t t, int op, uint64_t seed, int rank, int nranks, void* buf, size_t count,
                     size_t first);
// The reduction of all ranks' fillReduceInput, computed here.
void fillReduceExpected(fcclDataType_t t, int op, uint64_t seed, int nranks, void* buf, size_t count,
                        size_t first);
// A non-reduced pattern (gather, broadcast, alltoall, sendrecv), exact in every dtype.
void fillPattern(fcclDataType_t t, uint64_t seed, void* buf, size_t count, size_t first);
// The PreMulSum scalar of a rank (1 or 2: exact), stored as dtype t in out[8].
void mulSumScalar(fcclDataType_t t, int rank, void* out);
// Number of elements of got that differ from want (avg on float types: within a tolerance).
int64_t countWrong(fcclDataType_t t, int op, int nranks, const void* got, const void* want, size_t count);

// ---- Ranks, aggregation and the driver --------------------------------------------------------
enum class Agg {
  kRank0 = 0,
  kAvg = 1,
  kMin = 2,
  kMax = 3,
  kSum = 4
};

// What the driver needs from a launch mode; one object per rank (thread).
class Rank {
 public:
  virtual ~Rank() = default;
  int rank = 0, nranks = 1;
  // Combines v over every rank of the job; every rank gets the result.
  virtual double reduce(double v, Agg how) = 0;
  virtual void barrier() { reduce(0.0, Agg::kSum); }
  // Runs coll once; returns where the result lives (normally recv), nullptr after an error
  // (then *err holds a sentence). in-place calls get send == recv + offset as fccl documents.
  virtual void* run(const Coll& coll, const void* send, void* recv, size_t count, fcclDataType_t type, int op,
                    int root, bool inPlace, std::string* err) = 0;
  virtual void groupStart() {}
  virtual void groupEnd() {}
  // Empty when the dtype/op runs; else why not (printed once, the combination is skipped).
  virtual std::string unsupported(const Coll&, fcclDataType_t, int /*op*/) { return ""; }
  // Prints the message and ends the whole job (all ranks, all processes).
  [[noreturn]] virtual void fatal(const std::string& msg);
};

struct Totals {
  int64_t wrong = 0;  // summed over ranks and sizes
  double bwSum = 0;
  int bwCount = 0;
};
// The whole benchmark for one rank: every dtype, op, root and size. Rank 0 prints the rows.
// Returns the totals (the same on every rank).
Totals runBenchmark(const Options& o, const Coll& coll, Rank& r);

// Output, nccl-tests layout. Everything prints only where isPrinter() is true.
void printHeader(const Options& o, const char* program, int versionCode, int nThreads);
void printDevicesTitle();
std::string deviceLine(int rank, int group, int device, const char* what);
void printColumnHeader();
void printFooter(const Totals& t, const char* program);
std::string hostName();

// torchrun-style launch: true when RANK and WORLD_SIZE are set; then *rank and *size hold them
// and FCCL_COMM_ID is MASTER_ADDR:MASTER_PORT (unless already set) so that every process's
// fcclGetUniqueId returns the same id and rank 0 hosts the root, as NCCL_COMM_ID does. On bad
// values returns true with *error set.
bool torchrunEnv(int* rank, int* size, std::string* error);

}  // namespace fccl::perf

#endif  // FCCL_PERF_COMMON_H_
