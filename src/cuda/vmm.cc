// vmm.cc - see vmm.h.
#include "src/cuda/vmm.h"

#include <cstdint>

namespace fccl::cuda {

namespace {

CUmemAllocationProp propFor(int ordinal) {
  CUmemAllocationProp p{};
  p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  p.location.id = ordinal;
  p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  return p;
}

}  // namespace

CUresult vmmGrantAccess(const Driver& d, int ordinal, CUdeviceptr ptr, size_t size) {
  CUmemAccessDesc access{};
  access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  access.location.id = ordinal;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  return d.memSetAccess(ptr, size, &access, 1);
}

namespace {

// Reserves an address range for m.handle, maps it and lets device `ordinal` read and write.
CUresult mapHandle(const Driver& d, int ordinal, VmmMapping* m) {
  CUresult r = d.memAddressReserve(&m->ptr, m->size, 0, 0, 0);
  if (r != CUDA_SUCCESS) return m->ptr = 0, r;
  r = d.memMap(m->ptr, m->size, 0, m->handle, 0);
  if (r != CUDA_SUCCESS) {
    d.memAddressFree(m->ptr, m->size);
    m->ptr = 0;
    return r;
  }
  r = vmmGrantAccess(d, ordinal, m->ptr, m->size);
  if (r != CUDA_SUCCESS) {
    d.memUnmap(m->ptr, m->size);
    d.memAddressFree(m->ptr, m->size);
    m->ptr = 0;
  }
  return r;
}

}  // namespace

bool vmmSupported(const Driver& d, CUdevice dev, std::string* why) {
  if (d.memCreate == nullptr) {
    *why = "the CUDA driver has no virtual memory management entry points";
    return false;
  }
  int vmm = 0, fd = 0;
  if (d.deviceGetAttribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev) !=
          CUDA_SUCCESS ||
      vmm == 0) {
    *why = "the device does not support virtual memory management";
    return false;
  }
  if (d.deviceGetAttribute(&fd, CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED, dev) !=
          CUDA_SUCCESS ||
      fd == 0) {
    *why = "the device cannot export allocations as POSIX file descriptors";
    return false;
  }
  return true;
}

CUresult vmmAlloc(const Driver& d, int ordinal, size_t bytes, VmmMapping* out) {
  *out = VmmMapping{};
  const CUmemAllocationProp prop = propFor(ordinal);
  size_t gran = 0;
  CUresult r = d.memGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
  if (r != CUDA_SUCCESS) return r;
  if (gran == 0) gran = size_t(2) << 20;
  out->size = (bytes + gran - 1) / gran * gran;
  r = d.memCreate(&out->handle, out->size, &prop, 0);
  if (r != CUDA_SUCCESS) return *out = VmmMapping{}, r;
  r = mapHandle(d, ordinal, out);
  if (r != CUDA_SUCCESS) {
    d.memRelease(out->handle);
    *out = VmmMapping{};
  }
  return r;
}

CUresult vmmExport(const Driver& d, const VmmMapping& m, int* fd) {
  *fd = -1;
  return d.memExportToShareableHandle(fd, m.handle, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
}

CUresult vmmImport(const Driver& d, int ordinal, int fd, size_t size, VmmMapping* out) {
  *out = VmmMapping{};
  out->size = size;
  CUresult r =
      d.memImportFromShareableHandle(&out->handle, reinterpret_cast<void*>(static_cast<uintptr_t>(fd)),
                                     CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
  if (r != CUDA_SUCCESS) return *out = VmmMapping{}, r;
  r = mapHandle(d, ordinal, out);
  if (r != CUDA_SUCCESS) {
    d.memRelease(out->handle);
    *out = VmmMapping{};
  }
  return r;
}

void vmmFree(const Driver& d, VmmMapping* m) {
  if (m->ptr != 0) {
    d.memUnmap(m->ptr, m->size);
    d.memAddressFree(m->ptr, m->size);
  }
  if (m->handle != 0) d.memRelease(m->handle);
  *m = VmmMapping{};
}

}  // namespace fccl::cuda
