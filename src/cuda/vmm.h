// vmm.h - device memory that the other processes of the host can map: CUDA's virtual memory
// management (cuMemCreate with a POSIX file descriptor handle, reserved and mapped in this
// process), exported as a descriptor that src/base/fd_pass.h carries to a peer, which imports
// and maps it. The way NCCL shares its buffers since 2.19 (NCCL_CUMEM_ENABLE); the legacy
// cuIpc handles stay the fallback (FCCL_CUMEM_ENABLE=0, or a driver or device without it).
#pragma once
#include <cuda.h>

#include <string>

#include "src/cuda/driver.h"

namespace fccl::cuda {

struct VmmMapping {
  CUmemGenericAllocationHandle handle = 0;
  CUdeviceptr ptr = 0;
  size_t size = 0;  // the mapping's bytes: a multiple of the allocation granularity
};

// Whether the driver and `dev` export allocations as POSIX descriptors; *why when not.
bool vmmSupported(const Driver& d, CUdevice dev, std::string* why);
// `bytes` (rounded up to the granularity) on device `ordinal`, mapped read-write for it.
CUresult vmmAlloc(const Driver& d, int ordinal, size_t bytes, VmmMapping* out);
// A descriptor of m's allocation; the caller closes it once sent.
CUresult vmmExport(const Driver& d, const VmmMapping& m, int* fd);
// A peer's allocation of `size` bytes from its descriptor, mapped read-write for device
// `ordinal` of this process. The caller still closes fd.
CUresult vmmImport(const Driver& d, int ordinal, int fd, size_t size, VmmMapping* out);
// Lets device `ordinal` read and write [ptr, ptr + size) of a mapping of this process (a rank
// of this process on another GPU uses its peer's cuMem FIFOs so).
CUresult vmmGrantAccess(const Driver& d, int ordinal, CUdeviceptr ptr, size_t size);
// Unmaps and releases (owned or imported alike); a zero mapping is left alone.
void vmmFree(const Driver& d, VmmMapping* m);

}  // namespace fccl::cuda
