/* fccl.h - the whole public C API of fccl, the Fused Collective Communication Library.
 *
 * Names, argument order, result codes and semantics follow NCCL (prefix nccl -> fccl),
 * so porting is a rename. Enum values match NCCL's, so tables indexed by them agree.
 * C99; every function returns fcclResult_t and never throws.
 *
 * Host and device communicators. A communicator created without a CUDA device (the
 * default when the calling thread has no CUDA context) takes host buffers and stream = NULL:
 * the call runs the collective on the calling thread and returns when the result is in the
 * output buffer (inside fcclGroupStart/End: when fcclGroupEnd returns).
 * A communicator bound to a CUDA device (fcclCommInitAll's devlist; fcclCommInitRank on a
 * thread that has a current CUDA device, as after cudaSetDevice; config.device) takes device
 * buffers of that device: collectives are enqueued on `stream` and the call returns at once,
 * as in NCCL. Ranks are threads or processes of one host (processes map each other's buffers
 * through CUDA IPC); several may share one GPU (threads each with a stream of their own: the
 * legacy default stream would serialize them). Not yet on device communicators: ranks on
 * several hosts, fused programs.
 */
#ifndef FCCL_H_
#define FCCL_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FCCL_MAJOR 0
#define FCCL_MINOR 1
#define FCCL_PATCH 0
#define FCCL_SUFFIX ""
/* Same encoding as NCCL_VERSION_CODE: major*10000 + minor*100 + patch. */
#define FCCL_VERSION(X, Y, Z) ((X)*10000 + (Y)*100 + (Z))
#define FCCL_VERSION_CODE FCCL_VERSION(FCCL_MAJOR, FCCL_MINOR, FCCL_PATCH)

#if defined(__GNUC__)
#define FCCL_API __attribute__((visibility("default")))
#else
#define FCCL_API
#endif

/* Binary compatible with cudaStream_t (also a struct CUstream_st*), so a CUDA
 * stream passes without a cast once device buffers are supported. */
typedef struct CUstream_st* fcclStream_t;

typedef struct fcclComm* fcclComm_t;

#define FCCL_UNIQUE_ID_BYTES 128
/* Opaque: the bootstrap root's address plus a random secret. Copy it to every
 * rank (MPI_Bcast, a file, ...) before fcclCommInitRank. */
typedef struct {
  char internal[FCCL_UNIQUE_ID_BYTES];
} fcclUniqueId;

typedef enum {
  fcclSuccess = 0,
  fcclUnhandledCudaError = 1,
  fcclSystemError = 2,
  fcclInternalError = 3,
  fcclInvalidArgument = 4,
  fcclInvalidUsage = 5,
  fcclRemoteError = 6,
  fcclInProgress = 7,
  fcclNumResults = 8
} fcclResult_t;

typedef enum {
  fcclInt8 = 0,
  fcclChar = 0,
  fcclUint8 = 1,
  fcclInt32 = 2,
  fcclInt = 2,
  fcclUint32 = 3,
  fcclInt64 = 4,
  fcclUint64 = 5,
  fcclFloat16 = 6,
  fcclHalf = 6,
  fcclFloat32 = 7,
  fcclFloat = 7,
  fcclFloat64 = 8,
  fcclDouble = 8,
  fcclBfloat16 = 9,
  fcclNumTypes = 10
} fcclDataType_t;

typedef enum {
  fcclSum = 0,
  fcclProd = 1,
  fcclMax = 2,
  fcclMin = 3,
  fcclAvg = 4,
  fcclNumOps = 5, /* ops created by fcclRedOpCreatePreMulSum are >= fcclNumOps */
  fcclMaxRedOp = 0x7fffffff
} fcclRedOp_t;

/* Where the scalar of fcclRedOpCreatePreMulSum lives. fcclScalarHostImmediate:
 * the value is read once at creation. fcclScalarDevice: the pointer is read at
 * each collective (host memory for host buffers). */
typedef enum {
  fcclScalarDevice = 0,
  fcclScalarHostImmediate = 1
} fcclScalarResidence_t;

/* Communicator options. Initialize with FCCL_CONFIG_INITIALIZER, then set fields. */
typedef struct {
  size_t size;          /* sizeof(fcclConfig_t), set by the initializer */
  unsigned int magic;   /* set by the initializer */
  unsigned int version; /* FCCL_VERSION_CODE, set by the initializer */
  int blocking;         /* 1 (default): init returns when ready; 0: may return fcclInProgress */
  int timeoutMs;        /* every wait gives up after this long (default: FCCL_TIMEOUT, 300 s) */
  const char* commName; /* communicator name shown in log lines and errors (as NCCL 2.23+) */
  int splitShare;       /* accepted for NCCL compatibility; resources are never shared */
  int device;           /* fccl: the CUDA device of the ranks' buffers; -1: host buffers;
                           unset: the calling thread's current CUDA device if it has one */
} fcclConfig_t;

#define FCCL_CONFIG_UNDEF_INT (-2147483647 - 1)
#define FCCL_CONFIG_UNDEF_PTR NULL
#define FCCL_CONFIG_MAGIC 0xcafebeef
#define FCCL_CONFIG_INITIALIZER                                                                    \
  {                                                                                                \
    sizeof(fcclConfig_t), FCCL_CONFIG_MAGIC, FCCL_VERSION_CODE, FCCL_CONFIG_UNDEF_INT,             \
        FCCL_CONFIG_UNDEF_INT, FCCL_CONFIG_UNDEF_PTR, FCCL_CONFIG_UNDEF_INT, FCCL_CONFIG_UNDEF_INT \
  }

#define FCCL_SPLIT_NOCOLOR (-1)

/* Device code compiled at run time (NVRTC: the CUDA backend's kernels) sees the types above
 * only: the functions below are host code. */
#if !defined(__CUDACC_RTC__)

/* ---- Version, errors ---------------------------------------------------------------- */
FCCL_API fcclResult_t fcclGetVersion(int* version);
FCCL_API const char* fcclGetErrorString(fcclResult_t result);
/* The last error of this thread (or of comm, if it recorded one) as a sentence that names
 * what was wrong, where and on which rank. comm may be NULL. Never NULL; "" if none. */
FCCL_API const char* fcclGetLastError(fcclComm_t comm);

/* ---- Communicator lifecycle ------------------------------------------------------------ */
/* Starts a bootstrap root in this process (a thread that lives until every rank has
 * joined or the timeout passes) and returns its address and a fresh secret.
 * FCCL_COMM_ID=host:port fixes the address; then rank 0's fcclCommInitRank starts the root. */
FCCL_API fcclResult_t fcclGetUniqueId(fcclUniqueId* uniqueId);
FCCL_API fcclResult_t fcclCommInitRank(fcclComm_t* comm, int nranks, fcclUniqueId commId, int rank);
FCCL_API fcclResult_t fcclCommInitRankConfig(fcclComm_t* comm, int nranks, fcclUniqueId commId, int rank,
                                             fcclConfig_t* config);
/* ndev ranks as threads of this process: comms[i] is rank i, bound to CUDA device
 * devlist[i] (a device may repeat: several ranks per GPU). devlist NULL: host ranks. */
FCCL_API fcclResult_t fcclCommInitAll(fcclComm_t* comms, int ndev, const int* devlist);
/* Waits for this rank's outstanding work; collectives are synchronous on host
 * buffers, so this only checks for asynchronous errors. */
FCCL_API fcclResult_t fcclCommFinalize(fcclComm_t comm);
/* Frees the communicator. Every rank should call it; it does not wait for peers. */
FCCL_API fcclResult_t fcclCommDestroy(fcclComm_t comm);
/* Safe from any thread: a rank blocked in a collective on comm returns an error
 * promptly; then frees the communicator. */
FCCL_API fcclResult_t fcclCommAbort(fcclComm_t comm);
/* Collective over comm: ranks with the same color form a new communicator, ordered
 * by key then by old rank. color FCCL_SPLIT_NOCOLOR gives *newcomm = NULL. */
FCCL_API fcclResult_t fcclCommSplit(fcclComm_t comm, int color, int key, fcclComm_t* newcomm,
                                    fcclConfig_t* config);
FCCL_API fcclResult_t fcclCommCount(const fcclComm_t comm, int* count);
/* The CUDA device of a device communicator; host communicators report -1. */
FCCL_API fcclResult_t fcclCommCuDevice(const fcclComm_t comm, int* device);
FCCL_API fcclResult_t fcclCommUserRank(const fcclComm_t comm, int* rank);
/* fcclSuccess, fcclInProgress while a non-blocking init runs, or the error that
 * stopped the communicator (a dead peer, a timeout, an abort). */
FCCL_API fcclResult_t fcclCommGetAsyncError(fcclComm_t comm, fcclResult_t* asyncError);

/* Device memory of the calling thread's current CUDA device for communication buffers (as
 * ncclMemAlloc); freed with fcclMemFree. A build or machine without CUDA returns an error. */
FCCL_API fcclResult_t fcclMemAlloc(void** ptr, size_t size);
FCCL_API fcclResult_t fcclMemFree(void* ptr);
/* ---- Launchers ------------------------------------------------------------------------- */
/* Who this process is in a job that a launcher started, read from the launcher's variables:
 * torchrun or fcclrun (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
 * MASTER_PORT), Open MPI's mpirun (OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE) or
 * Slurm's srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), first found in that order. The
 * bootstrap root, which rank 0 hosts: FCCL_COMM_ID when set, else MASTER_ADDR:MASTER_PORT
 * (MASTER_PORT + 1 under torchrun's agent store, which holds MASTER_PORT), else loopback for
 * mpirun on one host and the step's first node for srun, on a port derived from the job id.
 * Every process of a job uses the same FCCL_COMM_SECRET (fcclrun sets a random one). */
typedef struct {
  int rank;
  int nranks;
  int localRank;     /* among this host's processes; -1 when the launcher does not say */
  int localRanks;    /* -1 when the launcher does not say */
  char launcher[16]; /* "env" (torchrun-style: torchrun, fcclrun), "mpirun" or "slurm" */
  char root[272];    /* host:port of the bootstrap root */
} fcclLaunchInfo_t;
/* Before any communicator exists (e.g. to pick a device by localRank). fcclInvalidUsage with a
 * sentence when no launcher is found or its variables are wrong. */
FCCL_API fcclResult_t fcclLaunchInfoFromEnv(fcclLaunchInfo_t* info);
/* fcclCommInitRankConfig with the rank, size and root of fcclLaunchInfoFromEnv; every process
 * of the job calls it. config may be NULL. */
FCCL_API fcclResult_t fcclCommInitFromEnv(fcclComm_t* comm, fcclConfig_t* config);

/* ---- Reduction operators --------------------------------------------------------------- */
/* op(x) = sum over ranks of (scalar * x). scalar has type datatype. */
FCCL_API fcclResult_t fcclRedOpCreatePreMulSum(fcclRedOp_t* op, void* scalar, fcclDataType_t datatype,
                                               fcclScalarResidence_t residence, fcclComm_t comm);
FCCL_API fcclResult_t fcclRedOpDestroy(fcclRedOp_t op, fcclComm_t comm);

/* ---- Collectives (counts are in elements, as in NCCL) --------------------------------- */
/* In place when sendbuff == recvbuff. */
FCCL_API fcclResult_t fcclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                                    fcclDataType_t datatype, fcclRedOp_t op, fcclComm_t comm,
                                    fcclStream_t stream);
/* recvbuff on root only (may be NULL elsewhere). In place when sendbuff == recvbuff. */
FCCL_API fcclResult_t fcclReduce(const void* sendbuff, void* recvbuff, size_t count, fcclDataType_t datatype,
                                 fcclRedOp_t op, int root, fcclComm_t comm, fcclStream_t stream);
/* sendbuff is read on root only. In place when sendbuff == recvbuff. */
FCCL_API fcclResult_t fcclBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                                    fcclDataType_t datatype, int root, fcclComm_t comm, fcclStream_t stream);
/* sendbuff holds nranks*recvcount elements; rank r gets block r reduced.
 * In place when recvbuff == sendbuff + rank*recvcount elements. */
FCCL_API fcclResult_t fcclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                        fcclDataType_t datatype, fcclRedOp_t op, fcclComm_t comm,
                                        fcclStream_t stream);
/* recvbuff holds nranks*sendcount elements, block r from rank r.
 * In place when sendbuff == recvbuff + rank*sendcount elements. */
FCCL_API fcclResult_t fcclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                                    fcclDataType_t datatype, fcclComm_t comm, fcclStream_t stream);
/* Block p of sendbuff (count elements) goes to rank p; block p of recvbuff comes
 * from rank p. Buffers must not overlap. */
FCCL_API fcclResult_t fcclAlltoAll(const void* sendbuff, void* recvbuff, size_t count,
                                   fcclDataType_t datatype, fcclComm_t comm, fcclStream_t stream);
/* Point to point. Outside a group each call completes on its own: a send returns once its data
 * is in the peer's FIFO (up to 1 MiB by default) and otherwise waits for the matching receive;
 * pair them inside fcclGroupStart/End to avoid deadlock. */
FCCL_API fcclResult_t fcclSend(const void* sendbuff, size_t count, fcclDataType_t datatype, int peer,
                               fcclComm_t comm, fcclStream_t stream);
FCCL_API fcclResult_t fcclRecv(void* recvbuff, size_t count, fcclDataType_t datatype, int peer,
                               fcclComm_t comm, fcclStream_t stream);

/* ---- Groups ----------------------------------------------------------------------------- */
/* Calls between Start and End are recorded (per thread, nestable) and run at the
 * outermost fcclGroupEnd: point-to-point operations progress together, then
 * collectives run in call order. Several communicators of one thread may be mixed. */
FCCL_API fcclResult_t fcclGroupStart(void);
FCCL_API fcclResult_t fcclGroupEnd(void);

/* ---- Fused programs ------------------------------------------------------------------------
 * A program is a short text in fccl's IR (see README "Fused programs"): tensors with a dtype,
 * shape and layout (replicated, sliced, local), scalars, collectives and pointwise math. It is
 * created from text, compiled once for a communicator (the passes turn an allreduce followed by
 * pointwise work into a reduce-scatter whose reduced hook runs the work on this rank's slice,
 * then an all-gather of the results), and launched each step with the user's buffers. */
typedef struct fcclProgram* fcclProgram_t;

/* Parses and checks `source`; `name` (a file name, or NULL for "<string>") prefixes every
 * diagnostic as name:line:col. A bad program returns fcclInvalidArgument and still creates
 * *program so fcclProgramGetLog can be read; destroy it either way. */
FCCL_API fcclResult_t fcclProgramCreate(fcclProgram_t* program, const char* source, const char* name);

/* The text of a stock program by name: "sgd", "adam", "adamw", "lamb", "loss_scaling",
 * "clip_global_norm", "bias_dropout_residual", "mixed_precision" (README "Fused programs").
 * They are installed as share/fccl/programs/NAME.fccl and compiled into the library, so no file
 * is read; *text stays valid for the life of the process. Create one with
 * fcclProgramCreate(&p, text, "adam.fccl"). An unknown name is fcclInvalidArgument, and
 * fcclGetLastError lists the known names. */
FCCL_API fcclResult_t fcclProgramGetStock(const char* name, const char** text);

#define FCCL_PROGRAM_OPTIONS_MAGIC 0x70726f67u
typedef struct {
  size_t size;          /* sizeof(fcclProgramOptions_t), set by the initializer */
  unsigned int magic;   /* FCCL_PROGRAM_OPTIONS_MAGIC */
  const char* schedule; /* NULL, "" or "default": the default pipeline ("split,reorder,fuse,
                           overlap"); "none": run as written, unfused; or a comma list of passes */
} fcclProgramOptions_t;
#define FCCL_PROGRAM_OPTIONS_INITIALIZER \
  { sizeof(fcclProgramOptions_t), FCCL_PROGRAM_OPTIONS_MAGIC, NULL }

/* Runs the passes and prepares execution on comm's ranks (options may be NULL). Local: no
 * communication. A program is compiled for one communicator at a time. */
FCCL_API fcclResult_t fcclProgramCompile(fcclProgram_t program, fcclComm_t comm,
                                         const fcclProgramOptions_t* options);
/* The diagnostics of the last create/compile, one per line ("" when none). Valid until the
 * next call on program. */
FCCL_API fcclResult_t fcclProgramGetLog(fcclProgram_t program, const char** log);
/* The IR as printed after stage `stage`: "parse", "check", a pass name of the compiled
 * pipeline, or "schedule" (the lowered steps). Valid until the next call on program. */
FCCL_API fcclResult_t fcclProgramDump(fcclProgram_t program, const char* stage, const char** text);

/* Binds a declared tensor: data points at its first stored element and count is the LOGICAL
 * element count (symbols such as N are taken from it). A sliced tensor stores only this rank's
 * range (fcclProgramSliceRange), so data points at that range's first element. */
typedef struct {
  const char* name;
  void* data;
  size_t count;
} fcclTensorBinding_t;
typedef struct {
  const char* name;
  double value; /* converted to the scalar's declared type */
} fcclScalarBinding_t;

/* Runs the compiled program on this rank. Every rank of the communicator calls it with its own
 * buffers. Every declared tensor is bound exactly once, and so is every scalar input: `scalar`
 * declarations and `inout` scalars (state such as a loss scale: the value going in). Scalar
 * results - `out` and `inout` scalars, in declaration order - are written to scalarResults[i]
 * (NULL when the caller does not want them). On a host communicator stream must be NULL; on a
 * device communicator the tensors are device buffers and the program's kernels are enqueued on
 * stream (completion is stream-ordered, as for collectives; scalar results are computed on the
 * host and written before the call returns). Device communicators run programs whose steps are
 * pointwise, plain collectives and single-pass fused allreduces (sgd, adam, adamw,
 * mixed_precision, bias_dropout_residual); others fail with fcclInvalidUsage naming the step
 * (whole-tensor reductions: lamb, clip_global_norm, loss_scaling). Inside fcclGroupStart/End
 * the launch runs at the outermost fcclGroupEnd, in call order with the group's other calls on
 * comm (the binding arrays are copied; the program, the buffers and scalarResults must stay
 * valid until then, and errors in the bindings are reported by fcclGroupEnd). */
FCCL_API fcclResult_t fcclProgramLaunch(fcclProgram_t program, const fcclTensorBinding_t* tensors,
                                        int ntensors, const fcclScalarBinding_t* scalars, int nscalars,
                                        double* scalarResults, fcclComm_t comm, fcclStream_t stream);
/* The range [*begin, *end) of a sliced tensor of `count` logical elements that rank `rank` of
 * comm owns: S = ceil(count/nranks), begin = min(count, rank*S), end = min(count, (rank+1)*S). */
FCCL_API fcclResult_t fcclSliceRange(fcclComm_t comm, int rank, size_t count, size_t* begin, size_t* end);
FCCL_API fcclResult_t fcclProgramDestroy(fcclProgram_t program);

/* ---- Overlap: consuming an input while it is produced --------------------------------------
 * A ready tracker records which elements [0, count) of a buffer its producer has finished.
 * fcclAllReduceOverlap reads each chunk of its input only once the tracker covers it, so a
 * producer (a matmul written tile by tile, on another thread) and the allreduce run together. */
typedef struct fcclReady* fcclReady_t;

/* A tracker of `count` elements, none of them ready. */
FCCL_API fcclResult_t fcclReadyCreate(fcclReady_t* ready, size_t count);
/* Elements [begin, end) are ready (end <= count). Any thread, any order, overlapping marks
 * allowed. Release semantics: what the caller wrote to them before the mark is what the
 * collective reads; the producer must not write them again until the collective returns. */
FCCL_API fcclResult_t fcclReadyMark(fcclReady_t ready, size_t begin, size_t end);
/* Nothing ready again, for the next step. Not while a collective waits on ready. */
FCCL_API fcclResult_t fcclReadyReset(fcclReady_t ready);
FCCL_API fcclResult_t fcclReadyDestroy(fcclReady_t ready);

/* fcclAllReduce (same arguments, same result, bit for bit, as fcclAllReduce run on the ring)
 * whose ring reads each chunk of sendbuff only once sendReady (tracking at least count
 * elements) covers it. Rank r's ring consumes its input in the order chunk o of every slice
 * (fcclSliceRange) in turn, o = 0, 1, ...: a producer marking in that order overlaps best.
 * Waiting for a mark is bounded by the communicator's timeout (fcclSystemError naming the
 * chunk) and ends on fcclCommAbort. Always the ring algorithm, whatever the size. */
FCCL_API fcclResult_t fcclAllReduceOverlap(const void* sendbuff, void* recvbuff, size_t count,
                                           fcclDataType_t datatype, fcclRedOp_t op, fcclReady_t sendReady,
                                           fcclComm_t comm, fcclStream_t stream);

/* ---- Pipeline parallel: an allreduce sent to the next stage, sliced ------------------------
 * Stage s's tensor-parallel group (tpComm, n ranks) allreduces a layer output that each of its
 * ranks then hands to the same tensor-parallel rank of stage s+1 over the pipeline
 * communicator ppComm. Fused (CoCoNeT), the boundary carries the result once instead of n
 * times: the sending stage reduce-scatters in tpComm, each rank sends only its slice
 * (fcclSliceRange of tpComm: S = ceil(count/n)) to `peer`, and the receiving stage's ranks
 * all-gather the slices in their own tpComm. Every rank of both tpComms takes part; the two
 * tpComms must have the same size, and peer must hold the same tpComm rank as the caller.
 * Each sending rank sends its peer a 40-byte header (count, datatype, tpComm size and rank)
 * and then its slice; the receiver checks the header, so a mismatch in count, datatype, tp
 * size or tp rank is fcclInvalidUsage naming both sides' values (the receiver still takes the
 * sender's slice off ppComm, so both communicators stay usable). A receiving rank that fails
 * does not join the all-gather: tpComm peers that passed the check give up at the timeout.
 * Not group-aware: calling either inside fcclGroupStart/End is fcclInvalidUsage. */

/* Sending stage: sendbuff holds this rank's count-element allreduce input. The reduced slice
 * lives only in library scratch for the duration of the call: nothing of the result is kept
 * on the sending stage (call fcclAllReduce if it needs the result too). Avg divides by the
 * tpComm size. */
FCCL_API fcclResult_t fcclAllReduceSendSliced(const void* sendbuff, size_t count, fcclDataType_t datatype,
                                              fcclRedOp_t op, int peer, fcclComm_t tpComm, fcclComm_t ppComm,
                                              fcclStream_t stream);
/* Receiving stage: recvbuff receives all count elements of the sending stage's allreduce
 * result (count and datatype as the sender's). */
FCCL_API fcclResult_t fcclRecvAllGather(void* recvbuff, size_t count, fcclDataType_t datatype, int peer,
                                        fcclComm_t tpComm, fcclComm_t ppComm, fcclStream_t stream);

#endif /* !__CUDACC_RTC__ */

#ifdef __cplusplus
}
#endif
#endif /* FCCL_H_ */
