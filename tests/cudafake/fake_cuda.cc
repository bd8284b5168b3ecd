// fake_cuda.cc - a stand-in libcuda.so.1 for machines without a GPU: the driver entry points the
// CUDA backend loads (src/cuda/driver.cc), over host memory, so that device communicators' setup
// and teardown run for real in the ordinary test suite - the FIFO layout, the exchange between
// ranks, cuMem descriptors passed between processes (memfd-backed allocations: what a peer maps
// is the owner's memory) and legacy IPC handles (the owner's memfd reopened through /proc), peer
// access, destroy, pointer attributes (the argument checks), fcclMemAlloc. Kernels cannot run:
// module loads and launches fail with CUDA_ERROR_NOT_SUPPORTED. One "GPU", device 0, sm_90, 132 SMs;
// FAKE_CUDA_NO_VMM=1 reports no virtual memory management. fake_cuda_counters() lets a test see which paths
// ran.
#include <cuda.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "fake_cuda.h"

namespace {

using namespace fakecuda;

struct Region {
  int fd;
  size_t size;
};

std::mutex g_mu;
std::map<uintptr_t, Region> g_alloc;  // cuMemAlloc'd and IPC-opened regions: address -> memfd
std::map<uintptr_t, size_t> g_host;   // cuMemHostAlloc'd
thread_local CUcontext t_current = nullptr;
char g_ctx;  // the primary context's identity
std::atomic<int> g_counters[kCounters];

// IPC handle contents: the owner's pid and memfd, and the size.
struct IpcBlob {
  int32_t pid, fd;
  uint64_t size;
};

void* mapFd(int fd, size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return p == MAP_FAILED ? nullptr : p;
}

}  // namespace

extern "C" {

int fake_cuda_counter(int which) { return which >= 0 && which < kCounters ? g_counters[which].load() : -1; }

CUresult cuInit(unsigned int) { return CUDA_SUCCESS; }
// NVRTC looks for the loaded driver's private tables (and crashes on a driver without the entry
// point); it copes with being told there are none.
CUresult cuGetExportTable(const void** table, const CUuuid*) {
  *table = nullptr;
  return CUDA_ERROR_NOT_SUPPORTED;
}
CUresult cuDriverGetVersion(int* v) {
  *v = 13000;
  return CUDA_SUCCESS;
}
CUresult cuGetErrorString(CUresult r, const char** s) {
  *s = r == CUDA_SUCCESS ? "no error" : "fake CUDA driver error";
  return CUDA_SUCCESS;
}
CUresult cuDeviceGet(CUdevice* d, int ordinal) {
  if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
  *d = 0;
  return CUDA_SUCCESS;
}
CUresult cuDeviceGetCount(int* n) {
  *n = 1;
  return CUDA_SUCCESS;
}
CUresult cuDeviceGetAttribute(int* v, CUdevice_attribute a, CUdevice) {
  const bool vmm = getenv("FAKE_CUDA_NO_VMM") == nullptr;
  switch (a) {
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
      *v = 132;
      break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
      *v = 9;
      break;
    case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED:
      *v = vmm ? 1 : 0;
      break;
    default:
      *v = 0;
  }
  return CUDA_SUCCESS;
}
CUresult cuDeviceCanAccessPeer(int* can, CUdevice, CUdevice) {
  *can = 1;
  return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRetain(CUcontext* c, CUdevice) {
  *c = reinterpret_cast<CUcontext>(&g_ctx);
  return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice) { return CUDA_SUCCESS; }
CUresult cuCtxGetCurrent(CUcontext* c) {
  *c = t_current;
  return CUDA_SUCCESS;
}
CUresult cuCtxSetCurrent(CUcontext c) {
  t_current = c;
  return CUDA_SUCCESS;
}
CUresult cuCtxGetDevice(CUdevice* d) {
  if (t_current == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *d = 0;
  return CUDA_SUCCESS;
}
CUresult cuCtxEnablePeerAccess(CUcontext, unsigned int) { return CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED; }

// Device memory: a memfd mapping, so that legacy IPC can hand it to another process.
CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
  const int fd = memfd_create("fake_cuda", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, off_t(bytes)) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
  void* m = mapFd(fd, bytes);
  if (m == nullptr) return close(fd), CUDA_ERROR_OUT_OF_MEMORY;
  std::lock_guard<std::mutex> g(g_mu);
  g_alloc[uintptr_t(m)] = Region{fd, bytes};
  *p = CUdeviceptr(uintptr_t(m));
  ++g_counters[kLive];
  return CUDA_SUCCESS;
}
CUresult cuMemFree_v2(CUdeviceptr p) {
  std::lock_guard<std::mutex> g(g_mu);
  auto it = g_alloc.find(uintptr_t(p));
  if (it == g_alloc.end()) return CUDA_ERROR_INVALID_VALUE;
  munmap(reinterpret_cast<void*>(p), it->second.size);
  close(it->second.fd);
  g_alloc.erase(it);
  --g_counters[kLive];
  return CUDA_SUCCESS;
}
CUresult cuMemsetD8_v2(CUdeviceptr p, unsigned char v, size_t n) {
  memset(reinterpret_cast<void*>(p), v, n);
  return CUDA_SUCCESS;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
  memcpy(reinterpret_cast<void*>(dst), src, n);
  return CUDA_SUCCESS;
}
CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream) {
  memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
  return CUDA_SUCCESS;
}
CUresult cuMemHostAlloc(void** p, size_t bytes, unsigned int) {
  *p = calloc(1, bytes);
  if (*p == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
  std::lock_guard<std::mutex> g(g_mu);
  g_host[uintptr_t(*p)] = bytes;
  ++g_counters[kLive];
  return CUDA_SUCCESS;
}
CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr* d, void* p, unsigned int) {
  *d = CUdeviceptr(uintptr_t(p));
  return CUDA_SUCCESS;
}
CUresult cuMemFreeHost(void* p) {
  std::lock_guard<std::mutex> g(g_mu);
  if (g_host.erase(uintptr_t(p)) == 0) return CUDA_ERROR_INVALID_VALUE;
  free(p);
  --g_counters[kLive];
  return CUDA_SUCCESS;
}
// Attributes of device memory (any address inside a cuMemAlloc'd or IPC-opened region); other
// memory is unknown to CUDA, as ordinary host memory is to the real driver.
CUresult cuPointerGetAttribute(void* out, CUpointer_attribute a, CUdeviceptr p) {
  std::lock_guard<std::mutex> g(g_mu);
  auto it = g_alloc.upper_bound(uintptr_t(p));
  if (it == g_alloc.begin()) return CUDA_ERROR_INVALID_VALUE;
  --it;
  if (uintptr_t(p) >= it->first + it->second.size) return CUDA_ERROR_INVALID_VALUE;
  switch (a) {
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
      *static_cast<unsigned int*>(out) = CU_MEMORYTYPE_DEVICE;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
      *static_cast<int*>(out) = 0;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_CONTEXT:
      *static_cast<CUcontext*>(out) = reinterpret_cast<CUcontext>(&g_ctx);
      return CUDA_SUCCESS;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}
CUresult cuStreamGetCtx(CUstream, CUcontext* c) {
  *c = reinterpret_cast<CUcontext>(&g_ctx);
  return CUDA_SUCCESS;
}
CUresult cuStreamSynchronize(CUstream) { return CUDA_SUCCESS; }
CUresult cuModuleLoadData(CUmodule*, const void*) { return CUDA_ERROR_NOT_SUPPORTED; }
CUresult cuModuleGetFunction(CUfunction*, CUmodule, const char*) { return CUDA_ERROR_NOT_SUPPORTED; }
CUresult cuLaunchKernel(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                        CUstream, void**, void**) {
  return CUDA_ERROR_NOT_SUPPORTED;
}
CUresult cuEventCreate(CUevent* e, unsigned int) {
  *e = reinterpret_cast<CUevent>(new char);
  return CUDA_SUCCESS;
}
CUresult cuEventRecord(CUevent, CUstream) { return CUDA_SUCCESS; }
CUresult cuEventSynchronize(CUevent) { return CUDA_SUCCESS; }
CUresult cuEventDestroy_v2(CUevent e) {
  delete reinterpret_cast<char*>(e);
  return CUDA_SUCCESS;
}
CUresult cuStreamWaitEvent(CUstream, CUevent, unsigned int) { return CUDA_SUCCESS; }
CUresult cuDeviceGetUuid_v2(CUuuid* u, CUdevice) {
  memset(u, 0x5a, sizeof(*u));
  return CUDA_SUCCESS;
}

// Legacy IPC: the handle names the owner's memfd; the opener reopens it through /proc.
CUresult cuIpcGetMemHandle(CUipcMemHandle* h, CUdeviceptr p) {
  std::lock_guard<std::mutex> g(g_mu);
  auto it = g_alloc.find(uintptr_t(p));
  if (it == g_alloc.end()) return CUDA_ERROR_INVALID_VALUE;
  memset(h, 0, sizeof(*h));
  const IpcBlob b{int32_t(getpid()), it->second.fd, it->second.size};
  memcpy(h->reserved, &b, sizeof(b));
  ++g_counters[kIpcGet];
  return CUDA_SUCCESS;
}
CUresult cuIpcOpenMemHandle_v2(CUdeviceptr* p, CUipcMemHandle h, unsigned int) {
  IpcBlob b;
  memcpy(&b, h.reserved, sizeof(b));
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/fd/%d", b.pid, b.fd);
  const int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return CUDA_ERROR_INVALID_HANDLE;
  void* m = mapFd(fd, b.size);
  if (m == nullptr) return close(fd), CUDA_ERROR_OUT_OF_MEMORY;
  std::lock_guard<std::mutex> g(g_mu);
  g_alloc[uintptr_t(m)] = Region{fd, b.size};
  *p = CUdeviceptr(uintptr_t(m));
  ++g_counters[kIpcOpen];
  ++g_counters[kLive];
  return CUDA_SUCCESS;
}
CUresult cuIpcCloseMemHandle(CUdeviceptr p) { return cuMemFree_v2(p); }

// Virtual memory management: a handle is a memfd, an address range an mmap reservation.
CUresult cuMemCreate(CUmemGenericAllocationHandle* h, size_t size, const CUmemAllocationProp* prop,
                     unsigned long long) {
  if (prop->requestedHandleTypes != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR || size % (2u << 20) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  const int fd = memfd_create("fake_cuda_vmm", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, off_t(size)) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
  *h = CUmemGenericAllocationHandle(fd);
  ++g_counters[kVmmCreate];
  ++g_counters[kLive];
  return CUDA_SUCCESS;
}
CUresult cuMemRelease(CUmemGenericAllocationHandle h) {
  --g_counters[kLive];
  return close(int(h)) == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
CUresult cuMemAddressReserve(CUdeviceptr* p, size_t size, size_t, CUdeviceptr, unsigned long long) {
  void* m = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
  *p = CUdeviceptr(uintptr_t(m));
  ++g_counters[kLive];
  return CUDA_SUCCESS;
}
CUresult cuMemAddressFree(CUdeviceptr p, size_t size) {
  --g_counters[kLive];
  return munmap(reinterpret_cast<void*>(p), size) == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
CUresult cuMemMap(CUdeviceptr p, size_t size, size_t offset, CUmemGenericAllocationHandle h,
                  unsigned long long) {
  void* m = mmap(reinterpret_cast<void*>(p), size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, int(h),
                 off_t(offset));
  if (m == MAP_FAILED) return CUDA_ERROR_INVALID_VALUE;
  ++g_counters[kLive];
  return CUDA_SUCCESS;
}
CUresult cuMemUnmap(CUdeviceptr p, size_t size) {
  // Back to a bare reservation, as the driver leaves it.
  void* m = mmap(reinterpret_cast<void*>(p), size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  --g_counters[kLive];
  return m == MAP_FAILED ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}
CUresult cuMemSetAccess(CUdeviceptr, size_t, const CUmemAccessDesc* d, size_t count) {
  return count == 1 && d->location.type == CU_MEM_LOCATION_TYPE_DEVICE && d->location.id == 0 &&
                 d->flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE
             ? CUDA_SUCCESS
             : CUDA_ERROR_INVALID_VALUE;
}
CUresult cuMemGetAllocationGranularity(size_t* g, const CUmemAllocationProp*,
                                       CUmemAllocationGranularity_flags) {
  *g = 2u << 20;
  return CUDA_SUCCESS;
}
CUresult cuMemExportToShareableHandle(void* out, CUmemGenericAllocationHandle h, CUmemAllocationHandleType t,
                                      unsigned long long) {
  if (t != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) return CUDA_ERROR_INVALID_VALUE;
  const int fd = fcntl(int(h), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return CUDA_ERROR_INVALID_HANDLE;
  *static_cast<int*>(out) = fd;
  ++g_counters[kVmmExport];
  return CUDA_SUCCESS;
}
CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle* h, void* os,
                                        CUmemAllocationHandleType t) {
  if (t != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) return CUDA_ERROR_INVALID_VALUE;
  const int fd = fcntl(int(uintptr_t(os)), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return CUDA_ERROR_INVALID_HANDLE;
  *h = CUmemGenericAllocationHandle(fd);
  ++g_counters[kVmmImport];
  ++g_counters[kLive];
  return CUDA_SUCCESS;
}

}  // extern "C"
