// no_cuda.cc - src/cuda/device_comm.h in a build without the CUDA toolkit: host communicators
// only. A request for a device says the build lacks CUDA; host checks pass.
#include "src/base/error.h"
#include "src/comm.h"
#include "src/cuda/device_comm.h"
#include "src/program_runtime.h"

namespace fccl {

namespace {
constexpr const char* kNoCuda =
    "this fccl was built without CUDA (configure with the CUDA toolkit, FCCL_CUDA=ON)";
}

int currentDeviceOrHost() { return -1; }
bool cudaLoadedInProcess() { return false; }

fcclResult_t deviceCommSetup(fcclComm* comm, int device) {
  return setError(fcclInvalidUsage, "rank %d: cannot bind the communicator to CUDA device %d: %s", comm->rank,
                  device, kNoCuda);
}
void deviceCommFree(fcclComm*) {}
void deviceCommAbort(fcclComm*) {}
fcclResult_t deviceCommPollError(fcclComm*) { return fcclSuccess; }

fcclResult_t deviceCheckStream(const char* api, const fcclComm* comm, fcclStream_t stream) {
  if (stream != nullptr)
    return setError(fcclInvalidArgument, "%s: rank %d: stream must be NULL on a host communicator (%s)", api,
                    comm->rank, kNoCuda);
  return fcclSuccess;
}
fcclResult_t deviceCheckBuffer(const char*, const fcclComm*, const char*, const void*) { return fcclSuccess; }

// No device communicator exists in this build, so the runtime never reaches these
// (src/cuda/program_device.cc in a CUDA build); they say why if it ever does.
fcclResult_t fusion::Runtime::planDevice() {
  return setError(fcclInvalidUsage, "fcclProgramLaunch: program %s on device buffers: %s",
                  schedule_.program.name.c_str(), kNoCuda);
}
fcclResult_t fusion::Runtime::launchDevice(fcclComm* comm, Storage&, fcclStream_t) {
  return setError(fcclInvalidUsage, "fcclProgramLaunch: rank %d: %s", comm->rank, kNoCuda);
}

fcclResult_t deviceMemAlloc(void** ptr, size_t) {
  if (ptr == nullptr) return setError(fcclInvalidArgument, "fcclMemAlloc: ptr is NULL");
  *ptr = nullptr;
  return setError(fcclInvalidUsage, "fcclMemAlloc: %s", kNoCuda);
}
fcclResult_t deviceMemFree(void* ptr) {
  if (ptr == nullptr) return fcclSuccess;
  return setError(fcclInvalidUsage, "fcclMemFree: %s", kNoCuda);
}

}  // namespace fccl
