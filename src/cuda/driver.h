// driver.h - the CUDA driver API, loaded at run time (libcuda.so.1 through src/base/dynlib.h):
// libfccl links no CUDA library, so it loads and runs host communicators on machines without
// a GPU, and a device communicator there fails with a sentence saying why. Only the entry
// points the backend uses, by their versioned names (cuMemAlloc_v2, ...): the legacy default
// stream semantics, as a program built with plain nvcc gets.
#pragma once
#include <cuda.h>

#include <string>

namespace fccl::cuda {

struct Driver {
  decltype(&::cuInit) init;
  decltype(&::cuGetErrorString) getErrorString;
  decltype(&::cuDeviceGet) deviceGet;
  decltype(&::cuDeviceGetCount) deviceGetCount;
  decltype(&::cuDeviceGetAttribute) deviceGetAttribute;
  decltype(&::cuDeviceCanAccessPeer) deviceCanAccessPeer;
  decltype(&::cuDevicePrimaryCtxRetain) primaryCtxRetain;
  decltype(&::cuDevicePrimaryCtxRelease) primaryCtxRelease;
  decltype(&::cuCtxGetCurrent) ctxGetCurrent;
  decltype(&::cuCtxSetCurrent) ctxSetCurrent;
  decltype(&::cuCtxGetDevice) ctxGetDevice;
  decltype(&::cuCtxEnablePeerAccess) ctxEnablePeerAccess;
  decltype(&::cuMemAlloc) memAlloc;
  decltype(&::cuMemFree) memFree;
  decltype(&::cuMemsetD8) memsetD8;
  decltype(&::cuMemcpyHtoD) memcpyHtoD;
  decltype(&::cuMemcpyAsync) memcpyAsync;
  decltype(&::cuMemHostAlloc) memHostAlloc;
  decltype(&::cuMemHostGetDevicePointer) memHostGetDevicePointer;
  decltype(&::cuMemFreeHost) memFreeHost;
  decltype(&::cuPointerGetAttribute) pointerGetAttribute;
  decltype(&::cuStreamGetCtx) streamGetCtx;
  decltype(&::cuStreamSynchronize) streamSynchronize;
  decltype(&::cuModuleLoadData) moduleLoadData;
  decltype(&::cuModuleGetFunction) moduleGetFunction;
  decltype(&::cuLaunchKernel) launchKernel;
  decltype(&::cuEventCreate) eventCreate;
  decltype(&::cuEventRecord) eventRecord;
  decltype(&::cuEventSynchronize) eventSynchronize;
  decltype(&::cuEventDestroy) eventDestroy;
  decltype(&::cuStreamWaitEvent) streamWaitEvent;
  decltype(&::cuDeviceGetUuid) deviceGetUuid;
  decltype(&::cuIpcGetMemHandle) ipcGetMemHandle;
  decltype(&::cuIpcOpenMemHandle) ipcOpenMemHandle;
  decltype(&::cuIpcCloseMemHandle) ipcCloseMemHandle;
  // Virtual memory management (src/cuda/vmm.h); null where the driver lacks them.
  decltype(&::cuMemCreate) memCreate;
  decltype(&::cuMemRelease) memRelease;
  decltype(&::cuMemAddressReserve) memAddressReserve;
  decltype(&::cuMemAddressFree) memAddressFree;
  decltype(&::cuMemMap) memMap;
  decltype(&::cuMemUnmap) memUnmap;
  decltype(&::cuMemSetAccess) memSetAccess;
  decltype(&::cuMemGetAllocationGranularity) memGetAllocationGranularity;
  decltype(&::cuMemExportToShareableHandle) memExportToShareableHandle;
  decltype(&::cuMemImportFromShareableHandle) memImportFromShareableHandle;
};

// The driver, loaded and initialized (cuInit) on first use; null with *why saying what is
// missing (no libcuda.so.1: no NVIDIA driver on this machine; cuInit failing: no usable GPU).
const Driver* driver(std::string* why);
// The driver if this process already loaded it (a program that touched CUDA), else null.
// Never loads it: host communicators call this to ask whether a pointer might be a device's.
const Driver* driverIfLoaded();

// "CUDA_ERROR_OUT_OF_MEMORY: out of memory" for a driver result.
std::string resultText(const Driver& d, CUresult r);

// Makes ctx current on the calling thread for the guard's life, then restores the previous one
// (a user thread's own current device is left as it found it, as NCCL does).
class CtxGuard {
 public:
  CtxGuard(const Driver& d, CUcontext ctx);
  ~CtxGuard();
  CtxGuard(const CtxGuard&) = delete;
  CtxGuard& operator=(const CtxGuard&) = delete;

 private:
  const Driver& d_;
  CUcontext prev_ = nullptr;
  bool switched_ = false;
};

}  // namespace fccl::cuda
