// mpi_perf.cc - the reference: the same table, flags, inputs and checks as fccl's perf tools,
// with the collective run by MPI instead of fccl. One rank per MPI process.
//   mpirun -np 2 ./mpi_perf -C allreduce -b 8 -e 256M -f 2
// -C picks the collective (allreduce, reduce_scatter, allgather, broadcast, reduce, alltoall);
// -o stays the reduction op as in nccl-tests. MPI has no half/bfloat16 and no avg/mulsum: those
// combinations are skipped with a message. In place uses MPI_IN_PLACE (reduce_scatter's result
// then sits at offset 0, and the check looks there). An out-of-place broadcast copies send to
// recv on the root first, as NCCL does.
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "common.h"

namespace fccl::perf {
namespace {

struct Named {
  const char* name;
  const Coll* coll;
};
const Named kColls[] = {{"allreduce", &kAllReduce}, {"reduce_scatter", &kReduceScatter},
                        {"allgather", &kAllGather}, {"broadcast", &kBroadcast},
                        {"reduce", &kReduce},       {"alltoall", &kAlltoAll}};

MPI_Datatype mpiType(fcclDataType_t t) {
  switch (t) {
    case fcclInt8:
      return MPI_INT8_T;
    case fcclUint8:
      return MPI_UINT8_T;
    case fcclInt32:
      return MPI_INT32_T;
    case fcclUint32:
      return MPI_UINT32_T;
    case fcclInt64:
      return MPI_INT64_T;
    case fcclUint64:
      return MPI_UINT64_T;
    case fcclFloat:
      return MPI_FLOAT;
    case fcclDouble:
      return MPI_DOUBLE;
    default:
      return MPI_DATATYPE_NULL;
  }
}

MPI_Op mpiOp(int op) {
  switch (op) {
    case 0:
      return MPI_SUM;
    case 1:
      return MPI_PROD;
    case 2:
      return MPI_MAX;
    case 3:
      return MPI_MIN;
    default:
      return MPI_OP_NULL;
  }
}

class MpiRank : public Rank {
 public:
  explicit MpiRank(const Coll* coll) : coll_(coll) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  }

  double reduce(double v, Agg how) override {
    double in = how == Agg::kRank0 && rank != 0 ? 0.0 : v, out = 0;
    MPI_Op op = how == Agg::kMin ? MPI_MIN : how == Agg::kMax ? MPI_MAX : MPI_SUM;
    MPI_Allreduce(&in, &out, 1, MPI_DOUBLE, op, MPI_COMM_WORLD);
    return how == Agg::kAvg ? out / nranks : out;
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }

  std::string unsupported(const Coll& c, fcclDataType_t t, int op) override {
    if (mpiType(t) == MPI_DATATYPE_NULL) return std::string("MPI has no ") + typeName(t) + " datatype";
    if (c.hasOp && mpiOp(op) == MPI_OP_NULL) return std::string("MPI has no ") + kOpNames[op] + " reduction";
    return "";
  }

  void* run(const Coll& c, const void* send, void* recv, size_t count, fcclDataType_t t, int op, int root,
            bool inPlace, std::string* err) override {
    if (count > (size_t)INT32_MAX) {
      *err = "count " + std::to_string(count) + " is too large for MPI's int counts";
      return nullptr;
    }
    int n = (int)count, rc = MPI_SUCCESS;
    MPI_Datatype dt = mpiType(t);
    void* result = recv;
    const void* in = inPlace ? MPI_IN_PLACE : send;
    if (&c == &kAllReduce) {
      rc = MPI_Allreduce(in, recv, n, dt, mpiOp(op), MPI_COMM_WORLD);
    } else if (&c == &kReduceScatter) {
      // In place, MPI reads the whole input from recvbuf's start and leaves the block there.
      void* base = inPlace ? const_cast<void*>(send) : recv;
      rc = MPI_Reduce_scatter_block(in, base, n, dt, mpiOp(op), MPI_COMM_WORLD);
      result = base;
    } else if (&c == &kAllGather) {
      rc = inPlace ? MPI_Allgather(MPI_IN_PLACE, 0, dt, recv, n, dt, MPI_COMM_WORLD)
                   : MPI_Allgather(send, n, dt, recv, n, dt, MPI_COMM_WORLD);
    } else if (&c == &kBroadcast) {
      if (!inPlace && rank == root) std::memcpy(recv, send, count * typeSize(t));
      rc = MPI_Bcast(recv, n, dt, root, MPI_COMM_WORLD);
    } else if (&c == &kReduce) {
      if (inPlace && rank != root)
        rc = MPI_Reduce(send, nullptr, n, dt, mpiOp(op), root, MPI_COMM_WORLD);
      else
        rc = MPI_Reduce(in, recv, n, dt, mpiOp(op), root, MPI_COMM_WORLD);
    } else if (&c == &kAlltoAll) {
      rc = MPI_Alltoall(send, n, dt, recv, n, dt, MPI_COMM_WORLD);
    } else {
      *err = "no MPI version of this collective";
      return nullptr;
    }
    if (rc != MPI_SUCCESS) {
      char msg[MPI_MAX_ERROR_STRING];
      int len = 0;
      MPI_Error_string(rc, msg, &len);
      *err = std::string("MPI error: ") + msg;
      return nullptr;
    }
    return result;
  }

  [[noreturn]] void fatal(const std::string& msg) override {
    std::fflush(stdout);
    std::fprintf(stderr, "%s: rank %d: %s\n", hostName().c_str(), rank, msg.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 2);
    _exit(2);
  }

 private:
  const Coll* coll_;
};

int mpiMain(int argc, char** argv) {
  Options o;
  static const Choice kCollChoices[] = {{"allreduce", 0}, {"reduce_scatter", 1}, {"allgather", 2},
                                        {"broadcast", 3}, {"reduce", 4},         {"alltoall", 5},
                                        {nullptr, 0}};
  Tool tool{
      "mpi_perf",
      "gbeifnmwNpcodrzyTa",
      {{'C', "collective", "<name>", "the collective MPI runs", choiceAt(&Options::choice, kCollChoices)}},
      "Launch: mpirun -np N mpi_perf ... (one rank per process).\n"};
  int rc = parseOptions(argc, argv, tool, &o);
  if (rc >= 0) return rc;
  const Coll* coll = kColls[o.choice].coll;
  MPI_Init(&argc, &argv);
  MpiRank me(coll);
  std::string program = std::string("mpi_perf -C ") + kColls[o.choice].name;
  char lib[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(lib, &len);
  std::string libLine = lib;
  if (size_t nl = libLine.find_first_of("\n,"); nl != std::string::npos) libLine.resize(nl);

  if (me.rank == 0) {
    printHeader(o, program.c_str(), FCCL_VERSION_CODE, 1);
    std::printf("# MPI library: %s\n#\n", libLine.c_str());
  }
  constexpr int kLine = 160;
  char line[kLine] = {0};
  std::string mine = deviceLine(me.rank, 0, -1, "[host] CPU (MPI)");
  std::strncpy(line, mine.c_str(), kLine - 1);
  std::string all(kLine * me.nranks, '\0');
  MPI_Gather(line, kLine, MPI_CHAR, all.data(), kLine, MPI_CHAR, 0, MPI_COMM_WORLD);
  if (me.rank == 0) {
    printDevicesTitle();
    for (int i = 0; i < me.nranks; i++) std::fputs(all.data() + i * kLine, stdout);
    printColumnHeader();
  }
  Totals tot = runBenchmark(o, *coll, me);
  if (me.rank == 0) printFooter(tot, program.c_str());
  MPI_Finalize();
  return tot.wrong ? 1 : 0;
}

}  // namespace
}  // namespace fccl::perf

int main(int argc, char** argv) { return fccl::perf::mpiMain(argc, argv); }
