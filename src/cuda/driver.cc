// driver.cc - see driver.h.
#include "src/cuda/driver.h"

#include <dlfcn.h>

#include "src/base/dynlib.h"

namespace fccl::cuda {

namespace {

struct Loaded {
  Driver d{};
  std::string why;  // non-empty: unusable
};

Loaded load() {
  Loaded l;
  void* h = dynOpen({"libcuda.so.1", "libcuda.so"}, &l.why);
  if (h == nullptr) {
    l.why = "cannot load the CUDA driver (" + l.why + "): no NVIDIA driver on this machine";
    return l;
  }
  Driver& d = l.d;
  std::string missing;
  bool ok = dynSym(h, "cuInit", &d.init, &missing);
  ok &= dynSym(h, "cuGetErrorString", &d.getErrorString, &missing);
  ok &= dynSym(h, "cuDeviceGet", &d.deviceGet, &missing);
  ok &= dynSym(h, "cuDeviceGetCount", &d.deviceGetCount, &missing);
  ok &= dynSym(h, "cuDeviceGetAttribute", &d.deviceGetAttribute, &missing);
  ok &= dynSym(h, "cuDeviceCanAccessPeer", &d.deviceCanAccessPeer, &missing);
  ok &= dynSym(h, "cuDevicePrimaryCtxRetain", &d.primaryCtxRetain, &missing);
  ok &= dynSym(h, "cuDevicePrimaryCtxRelease_v2", &d.primaryCtxRelease, &missing);
  ok &= dynSym(h, "cuCtxGetCurrent", &d.ctxGetCurrent, &missing);
  ok &= dynSym(h, "cuCtxSetCurrent", &d.ctxSetCurrent, &missing);
  ok &= dynSym(h, "cuCtxGetDevice", &d.ctxGetDevice, &missing);
  ok &= dynSym(h, "cuCtxEnablePeerAccess", &d.ctxEnablePeerAccess, &missing);
  ok &= dynSym(h, "cuMemAlloc_v2", &d.memAlloc, &missing);
  ok &= dynSym(h, "cuMemFree_v2", &d.memFree, &missing);
  ok &= dynSym(h, "cuMemsetD8_v2", &d.memsetD8, &missing);
  ok &= dynSym(h, "cuMemcpyHtoD_v2", &d.memcpyHtoD, &missing);
  ok &= dynSym(h, "cuMemcpyAsync", &d.memcpyAsync, &missing);
  ok &= dynSym(h, "cuMemHostAlloc", &d.memHostAlloc, &missing);
  ok &= dynSym(h, "cuMemHostGetDevicePointer_v2", &d.memHostGetDevicePointer, &missing);
  ok &= dynSym(h, "cuMemFreeHost", &d.memFreeHost, &missing);
  ok &= dynSym(h, "cuPointerGetAttribute", &d.pointerGetAttribute, &missing);
  ok &= dynSym(h, "cuStreamGetCtx", &d.streamGetCtx, &missing);
  ok &= dynSym(h, "cuStreamSynchronize", &d.streamSynchronize, &missing);
  ok &= dynSym(h, "cuModuleLoadData", &d.moduleLoadData, &missing);
  ok &= dynSym(h, "cuModuleGetFunction", &d.moduleGetFunction, &missing);
  ok &= dynSym(h, "cuLaunchKernel", &d.launchKernel, &missing);
  ok &= dynSym(h, "cuEventCreate", &d.eventCreate, &missing);
  ok &= dynSym(h, "cuEventRecord", &d.eventRecord, &missing);
  ok &= dynSym(h, "cuEventSynchronize", &d.eventSynchronize, &missing);
  ok &= dynSym(h, "cuEventDestroy_v2", &d.eventDestroy, &missing);
  ok &= dynSym(h, "cuStreamWaitEvent", &d.streamWaitEvent, &missing);
  ok &= dynSym(h, "cuDeviceGetUuid_v2", &d.deviceGetUuid, &missing);
  ok &= dynSym(h, "cuIpcGetMemHandle", &d.ipcGetMemHandle, &missing);
  ok &= dynSym(h, "cuIpcOpenMemHandle_v2", &d.ipcOpenMemHandle, &missing);
  ok &= dynSym(h, "cuIpcCloseMemHandle", &d.ipcCloseMemHandle, &missing);
  if (!ok) {
    l.why = "the CUDA driver is too old for fccl (" + missing + ")";
    return l;
  }
  // Optional: without them processes share FIFOs through legacy CUDA IPC handles.
  std::string optional;
  bool vmm = dynSym(h, "cuMemCreate", &d.memCreate, &optional);
  vmm &= dynSym(h, "cuMemRelease", &d.memRelease, &optional);
  vmm &= dynSym(h, "cuMemAddressReserve", &d.memAddressReserve, &optional);
  vmm &= dynSym(h, "cuMemAddressFree", &d.memAddressFree, &optional);
  vmm &= dynSym(h, "cuMemMap", &d.memMap, &optional);
  vmm &= dynSym(h, "cuMemUnmap", &d.memUnmap, &optional);
  vmm &= dynSym(h, "cuMemSetAccess", &d.memSetAccess, &optional);
  vmm &= dynSym(h, "cuMemGetAllocationGranularity", &d.memGetAllocationGranularity, &optional);
  vmm &= dynSym(h, "cuMemExportToShareableHandle", &d.memExportToShareableHandle, &optional);
  vmm &= dynSym(h, "cuMemImportFromShareableHandle", &d.memImportFromShareableHandle, &optional);
  if (!vmm) d.memCreate = nullptr;  // vmm.h asks this one
  const CUresult r = d.init(0);
  if (r != CUDA_SUCCESS) l.why = "cuInit failed: " + resultText(d, r) + " (no usable GPU?)";
  return l;
}

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

}  // namespace

const Driver* driver(std::string* why) {
  const Loaded& l = loaded();
  if (!l.why.empty()) {
    if (why != nullptr) *why = l.why;
    return nullptr;
  }
  return &l.d;
}

const Driver* driverIfLoaded() {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (h == nullptr) return nullptr;
  dlclose(h);  // drops only the reference RTLD_NOLOAD took
  return driver(nullptr);
}

std::string resultText(const Driver& d, CUresult r) {
  const char* text = nullptr;
  if (d.getErrorString == nullptr || d.getErrorString(r, &text) != CUDA_SUCCESS || text == nullptr)
    return "CUDA error " + std::to_string(int(r));
  return std::string(text) + " (CUDA error " + std::to_string(int(r)) + ")";
}

CtxGuard::CtxGuard(const Driver& d, CUcontext ctx) : d_(d) {
  if (d_.ctxGetCurrent(&prev_) != CUDA_SUCCESS) prev_ = nullptr;
  if (prev_ != ctx) switched_ = d_.ctxSetCurrent(ctx) == CUDA_SUCCESS;
}

CtxGuard::~CtxGuard() {
  if (switched_) d_.ctxSetCurrent(prev_);
}

}  // namespace fccl::cuda
