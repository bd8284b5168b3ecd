// device_state.h - what the CUDA backend keeps per communicator (src/cuda/device_comm.h) and
// its executor; private to src/cuda/.
#pragma once
#include <cuda.h>

#include <cstdint>
#include <string>
#include <vector>

#include "collectives/device_types.h"
#include "src/cuda/driver.h"
#include "src/cuda/vmm.h"

namespace fccl {
class Executor;
}

namespace fccl::cuda {

struct DeviceComm {
  const Driver* d = nullptr;
  int device = -1;
  CUdevice cuDev = 0;
  CUcontext ctx = nullptr;  // the device's primary context (the CUDA runtime's)
  bool retained = false;
  int ccMajor = 0, ccMinor = 0;
  int nchannels = 0;
  size_t slotBytes = 0;
  bool sharesDevice = false;            // another rank of the communicator is on this device
  CUdeviceptr fifo = 0;                 // this rank's receive slots, every channel
  CUdeviceptr counters = 0;             // their tail and head counters
  CUdeviceptr channels = 0;             // dev::DevChannel[nchannels]
  CUdeviceptr p2pChannels = 0;          // dev::DevChannel[nranks]: the point-to-point channel of each peer
  std::vector<CUdeviceptr> imported;    // peers' FIFOs mapped from their processes (legacy CUDA IPC)
  VmmMapping fifoVmm, countersVmm;      // fifo and counters when cuMem allocated them (else zero)
  std::vector<VmmMapping> importedVmm;  // peers' FIFOs imported from their descriptors (cuMem)
  std::vector<char> p2pReachable;       // [peer]: its FIFO is mapped (else no Send/Recv with it)
  volatile int* abortHost = nullptr;    // host-mapped: fcclCommAbort sets it
  dev::DevError* errorHost = nullptr;   // host-mapped: the first failure of a kernel
  CUevent lastWork = nullptr;           // recorded after every launch: destroy waits for it
  CUstream lastStream = nullptr;        // where the last launch went
  bool launched = false;                // lastWork was recorded at least once
  dev::DevComm view{};                  // the ring's
  dev::DevComm p2pView{};               // the point-to-point channels' (indexed by peer)
  const char* lastOp = "none";          // the last operation enqueued, for error sentences
  uint64_t lastSeq = 0;
};

// The executor of device communicators: each plan's collectives as kernels on its stream.
Executor& deviceExecutor();

// Whether this build and machine can build the kernels (NVRTC loads); *why says why not.
bool kernelsAvailable(std::string* why);

}  // namespace fccl::cuda
