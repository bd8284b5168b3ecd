// device_comm.h - a communicator's device side (the CUDA backend): the device it is bound to,
// its ring FIFOs in device memory (one per channel, dev::DevChannel), the abort flag and error
// word in host-mapped memory, and the executor that enqueues its plans on the caller's stream
// as kernels generated for NVRTC (fusion/codegen/ring_kernel.h).
// Peers: ranks of one host. Threads of this process (on the same GPU or on GPUs with peer
// access) use each other's FIFO pointers as exchanged through the bootstrap; other processes map
// them through CUDA IPC (legacy handles, exchanged through the bootstrap as well). Processes
// sharing one GPU take turns on it unless MPS runs: init warns.
// Built without the CUDA toolkit, every entry point fails with a sentence (src/cuda/no_cuda.cc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "collectives/coll.h"

#include "fccl.h"

struct fcclComm;

namespace fccl {

class Executor;

// The device the calling thread would bind a new communicator to: its current CUDA device if
// it has a CUDA context (the program called cudaSetDevice or used CUDA), else -1 (host ranks).
int currentDeviceOrHost();

// Binds comm to `device` (>= 0) after its bootstrap: FIFOs, channels, flags; sets
// comm->executor. Fails naming the device and the reason (no driver, another process's peer).
fcclResult_t deviceCommSetup(fcclComm* comm, int device);
// Frees what deviceCommSetup made, after the stream work using it finished.
void deviceCommFree(fcclComm* comm);
// fcclCommAbort: the kernels of this rank stop waiting (the host-mapped abort flag).
void deviceCommAbort(fcclComm* comm);
// fcclCommGetAsyncError: a kernel's failure (timeout, abort) recorded on the communicator with a
// sentence naming the operation and the peer, once its stream reached it; fcclSuccess if none.
fcclResult_t deviceCommPollError(fcclComm* comm);

// Whether this process has loaded the CUDA driver (then a pointer may be a device's): host
// communicators ask once, at init, so their calls pay nothing in programs without CUDA.
bool cudaLoadedInProcess();

// Argument checks of a call on comm (host or device communicator): buffers where its ranks
// can read them, a stream of its device. `what` names the buffer ("sendbuff").
fcclResult_t deviceCheckStream(const char* api, const fcclComm* comm, fcclStream_t stream);
fcclResult_t deviceCheckBuffer(const char* api, const fcclComm* comm, const char* what, const void* p);

// fcclProgramLaunch on a device communicator (src/cuda/program_device.cc): kernels generated for a
// program's steps (fusion/codegen/device_program.h), compiled with NVRTC the first time `name`
// is needed in the device's context, launched on `stream` in order with this rank's other
// kernels. hookArgs: the packed FcclHookArgs (the kernel's first argument).
// A Pointwise step's kernel over logical elements [begin, end); with `reduced`, a Fused step's
// one-rank kernel, whose reduced chunk is `reduced` (element begin at reduced[0]).
fcclResult_t deviceLaunchHookKernel(fcclComm* comm, fcclStream_t stream, const std::string& name,
                                    const std::string& source, std::vector<uint64_t>& hookArgs,
                                    const void* reduced, int64_t begin, int64_t end);
// A Fused step's ring: the allreduce of t (send, recv, count, type, op, avgDivisor, stream) by
// the generated kernel `name`, whose reduced hook runs the step.
fcclResult_t deviceLaunchFusedRing(fcclComm* comm, const CollTask& t, const std::string& name,
                                   const std::string& source, std::vector<uint64_t>& hookArgs);

// fcclMemAlloc / fcclMemFree: device memory of the current device.
fcclResult_t deviceMemAlloc(void** ptr, size_t size);
fcclResult_t deviceMemFree(void* ptr);

}  // namespace fccl
