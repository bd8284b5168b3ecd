// cudafake_test.cc - device communicators' setup and teardown on the stand-in CUDA driver
// (fake_cuda.cc, found first through LD_LIBRARY_PATH), where no GPU is: ranks as threads share
// pointers; ranks as processes share their FIFOs as cuMem allocations whose descriptors travel
// over the ranks' Unix sockets (each process imports every other process's two allocations), or
// through legacy IPC handles (FCCL_CUMEM_ENABLE=0, or a device without VMM); processes of
// several ranks each do both; 14 processes pass more descriptors than a socket queue holds.
// Every init succeeds, every allocation, mapping and descriptor is
// released at destroy. What kernels do is tests/gpu's (the stand-in runs none).
#include <dirent.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "fake_cuda.h"
#include "fccl.h"

namespace {

using namespace fakecuda;

// The stand-in's counters (the library dlopens the same libcuda.so.1: one copy per process).
int counter(Counter c) {
  static auto fn =
      reinterpret_cast<int (*)(int)>(dlsym(dlopen("libcuda.so.1", RTLD_NOW), "fake_cuda_counter"));
  return fn != nullptr ? fn(int(c)) : -1;
}

bool standInLoaded() { return counter(kLive) >= 0; }

int openFds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n;
}

// Small FIFOs: 2 channels of 4 KiB slots.
void smallFifos() {
  setenv("FCCL_CHUNKSIZE", "4096", 1);
  setenv("FCCL_MAX_NCHANNELS", "2", 1);
}

// In a child: `threads` ranks of this process (ranks first..first+threads-1 of n) join, check
// the counters the sharing path implies, destroy, check everything was released. Exit status 0
// when all held; otherwise the line that failed.
[[noreturn]] void childRanks(const fcclUniqueId& id, int n, int first, int threads, int vmmImports,
                             int ipcOpens) {
  const int fds0 = openFds();
  std::vector<fcclComm_t> comms(size_t(threads), nullptr);
  std::vector<fcclResult_t> res(size_t(threads), fcclInternalError);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
      config.device = 0;
      res[size_t(t)] = fcclCommInitRankConfig(&comms[size_t(t)], n, id, first + t, &config);
      if (res[size_t(t)] != fcclSuccess)
        fprintf(stderr, "rank %d: %s\n", first + t, fcclGetLastError(nullptr));
    });
  for (auto& th : ts) th.join();
  auto check = [](bool ok, int line) {
    if (!ok) {
      fprintf(stderr, "cudafake_test.cc:%d failed (vmm create %d export %d import %d, ipc get %d open %d)\n",
              line, counter(kVmmCreate), counter(kVmmExport), counter(kVmmImport), counter(kIpcGet),
              counter(kIpcOpen));
      _exit(line);
    }
  };
  for (fcclResult_t r : res) check(r == fcclSuccess, __LINE__);
  int dev = -1;
  check(fcclCommCuDevice(comms[0], &dev) == fcclSuccess && dev == 0, __LINE__);
  check(counter(kVmmImport) == vmmImports, __LINE__);
  check(counter(kIpcOpen) == ipcOpens, __LINE__);
  for (fcclComm_t c : comms) check(fcclCommDestroy(c) == fcclSuccess, __LINE__);
  check(counter(kLive) == 0, __LINE__);
  check(openFds() == fds0, __LINE__);
  _exit(0);
}

// `procs` processes of `threads` ranks each; every child must exit 0. The parent forks while it
// is single-threaded, then makes the unique id (whose bootstrap root is a thread) and hands it
// to each child over a pipe, as tests/harness does: a child forked while another thread held a
// lock (the sanitizer allocator's has no fork handler) would deadlock.
void runProcesses(int procs, int threads, int vmmImports, int ipcOpens) {
  std::vector<pid_t> pids;
  std::vector<int> idPipes;
  for (int p = 0; p < procs; ++p) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[1]);
      fcclUniqueId id;
      if (read(fds[0], &id, sizeof(id)) != ssize_t(sizeof(id))) _exit(90);
      childRanks(id, procs * threads, p * threads, threads, vmmImports, ipcOpens);
    }
    close(fds[0]);
    pids.push_back(pid);
    idPipes.push_back(fds[1]);
  }
  fcclUniqueId id;
  ASSERT_EQ(fcclGetUniqueId(&id), fcclSuccess);
  for (int fd : idPipes) {
    EXPECT_EQ(write(fd, &id, sizeof(id)), ssize_t(sizeof(id)));
    close(fd);
  }
  for (size_t p = 0; p < pids.size(); ++p) {
    int status = 0;
    ASSERT_EQ(waitpid(pids[p], &status, 0), pids[p]);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "process " << p << ": "
        << (WIFEXITED(status) ? "failed at line " + std::to_string(WEXITSTATUS(status))
                              : "killed by signal " + std::to_string(WTERMSIG(status)));
  }
}

#define NEED_STAND_IN() \
  if (!standInLoaded()) GTEST_SKIP() << "the stand-in libcuda.so.1 is not first on LD_LIBRARY_PATH"

TEST(CudaFake, ThreadsShareTheirPointers) {
  NEED_STAND_IN();
  smallFifos();
  const int fds0 = openFds();
  fcclComm_t comms[3];
  const int devs[3] = {0, 0, 0};
  ASSERT_EQ(fcclCommInitAll(comms, 3, devs), fcclSuccess) << fcclGetLastError(nullptr);
  EXPECT_EQ(counter(kVmmCreate), 0) << "one process: plain allocations";
  EXPECT_EQ(counter(kIpcOpen), 0);
  for (fcclComm_t c : comms) EXPECT_EQ(fcclCommDestroy(c), fcclSuccess);
  EXPECT_EQ(counter(kLive), 0) << "every allocation released";
  EXPECT_EQ(openFds(), fds0);
}

// Each of 3 processes (one rank each) imports the fifo and counters of the 2 others.
TEST(CudaFake, ProcessesShareCuMemDescriptors) {
  NEED_STAND_IN();
  smallFifos();
  runProcesses(3, 1, 4, 0);
}

TEST(CudaFake, ProcessesFallBackToLegacyIpcWhenAsked) {
  NEED_STAND_IN();
  smallFifos();
  setenv("FCCL_CUMEM_ENABLE", "0", 1);
  runProcesses(3, 1, 0, 4);
}

TEST(CudaFake, ProcessesFallBackToLegacyIpcWithoutVmm) {
  NEED_STAND_IN();
  smallFifos();
  setenv("FAKE_CUDA_NO_VMM", "1", 1);
  runProcesses(2, 1, 0, 2);
}

// 2 processes of 2 ranks: each rank imports the 2 allocations of each rank of the other process
// (4 ranks' worth per process: 8), and shares pointers with its sibling thread.
TEST(CudaFake, ProcessesOfSeveralRanks) {
  NEED_STAND_IN();
  smallFifos();
  runProcesses(2, 2, 8, 0);
}

// 14 processes: each receives 13 descriptor messages, more than a datagram queue holds (10), so
// processes that all sent before receiving would block on each other (fd_pass.h exchange).
TEST(CudaFake, FourteenProcessesExchangeDescriptors) {
  NEED_STAND_IN();
  smallFifos();
  runProcesses(14, 1, 26, 0);
}

// The calling thread's current context, as cudaSetDevice would make it (the stand-in's own
// cuCtxSetCurrent: this test has no CUDA runtime).
void setCurrentDevice0() {
  void* h = dlopen("libcuda.so.1", RTLD_NOW);
  auto retain = reinterpret_cast<int (*)(void**, int)>(dlsym(h, "cuDevicePrimaryCtxRetain"));
  auto setCurrent = reinterpret_cast<int (*)(void*)>(dlsym(h, "cuCtxSetCurrent"));
  void* ctx = nullptr;
  ASSERT_EQ(retain(&ctx, 0), 0);
  ASSERT_EQ(setCurrent(ctx), 0);
}

TEST(CudaFake, MemAllocNeedsACurrentDeviceAndFrees) {
  NEED_STAND_IN();
  void* p = nullptr;
  EXPECT_EQ(fcclMemAlloc(&p, 4096), fcclInvalidUsage);
  EXPECT_NE(std::string(fcclGetLastError(nullptr)).find("no current CUDA device"), std::string::npos);
  setCurrentDevice0();
  ASSERT_EQ(fcclMemAlloc(&p, 4096), fcclSuccess) << fcclGetLastError(nullptr);
  ASSERT_NE(p, nullptr);
  int host = 0;
  EXPECT_EQ(fcclMemFree(&host), fcclInvalidArgument) << "not memory from fcclMemAlloc";
  EXPECT_EQ(fcclMemFree(p), fcclSuccess);
  EXPECT_EQ(counter(kLive), 0);
}

// Two ranks as threads on device 0, and a group of one AllReduce per rank.
fcclResult_t groupAllReduce(fcclComm_t* comms, void* const* send, void* const* recv, size_t count) {
  fcclGroupStart();
  for (int r = 0; r < 2; ++r)
    fcclAllReduce(send[r], recv[r], count, fcclFloat32, fcclSum, comms[r],
                  reinterpret_cast<fcclStream_t>(0x10));
  return fcclGroupEnd();
}

TEST(CudaFake, HostBuffersOnADeviceCommunicatorAreRefusedByName) {
  NEED_STAND_IN();
  smallFifos();
  setCurrentDevice0();
  fcclComm_t comms[2];
  const int devs[2] = {0, 0};
  ASSERT_EQ(fcclCommInitAll(comms, 2, devs), fcclSuccess) << fcclGetLastError(nullptr);
  std::vector<float> host(64);
  void* dev = nullptr;
  ASSERT_EQ(fcclMemAlloc(&dev, 64 * sizeof(float)), fcclSuccess);
  EXPECT_EQ(fcclAllReduce(host.data(), dev, 64, fcclFloat32, fcclSum, comms[0],
                          reinterpret_cast<fcclStream_t>(0x10)),
            fcclInvalidArgument);
  EXPECT_NE(std::string(fcclGetLastError(nullptr)).find("sendbuff"), std::string::npos)
      << fcclGetLastError(nullptr);
  EXPECT_EQ(fcclAllReduce(dev, host.data(), 64, fcclFloat32, fcclSum, comms[0],
                          reinterpret_cast<fcclStream_t>(0x10)),
            fcclInvalidArgument);
  EXPECT_NE(std::string(fcclGetLastError(nullptr)).find("recvbuff"), std::string::npos)
      << fcclGetLastError(nullptr);
  EXPECT_EQ(fcclMemFree(dev), fcclSuccess);
  for (fcclComm_t c : comms) EXPECT_EQ(fcclCommDestroy(c), fcclSuccess);
  EXPECT_EQ(counter(kLive), 0);
}

// Valid device buffers: the kernel is generated and compiled with NVRTC for sm_90 (real), then
// cannot load on the stand-in: the group fails with the sentence, nothing hangs, destroy works.
TEST(CudaFake, AKernelThatCannotLoadFailsTheCallCleanly) {
  NEED_STAND_IN();
  smallFifos();
  setCurrentDevice0();
  fcclComm_t comms[2];
  const int devs[2] = {0, 0};
  ASSERT_EQ(fcclCommInitAll(comms, 2, devs), fcclSuccess) << fcclGetLastError(nullptr);
  void* send[2];
  void* recv[2];
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(fcclMemAlloc(&send[r], 1024), fcclSuccess);
    ASSERT_EQ(fcclMemAlloc(&recv[r], 1024), fcclSuccess);
  }
  const fcclResult_t r = groupAllReduce(comms, send, recv, 256);
  const std::string why = fcclGetLastError(nullptr);
  if (why.find("NVRTC") != std::string::npos && why.find("lacks") != std::string::npos)
    GTEST_SKIP() << "no NVRTC here: " << why;
  EXPECT_EQ(r, fcclUnhandledCudaError) << why;
  EXPECT_NE(why.find("loading kernel fccl_AllReduce_float_sum_ll"), std::string::npos) << why;
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(fcclMemFree(send[k]), fcclSuccess);
    EXPECT_EQ(fcclMemFree(recv[k]), fcclSuccess);
  }
  for (fcclComm_t c : comms) EXPECT_EQ(fcclCommDestroy(c), fcclSuccess);
  EXPECT_EQ(counter(kLive), 0);
}

}  // namespace
