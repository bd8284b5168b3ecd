// device_comm_test.cc - device communicators (src/cuda/device_comm.h) where no GPU is: asking
// for a device fails at init with a sentence naming the device and why (no driver, or a build
// without CUDA) and returns no communicator; host communicators are unchanged next to them
// (config.device = -1, fcclCommCuDevice -1, a stream refused); mixing host and device ranks and
// bad devlists are refused; fcclMemAlloc says why it cannot. Where a CUDA driver loads, the
// tests that expect its absence skip: tests/gpu/api_check runs device communicators on a GPU.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "fccl.h"

namespace {

bool driverPresent() {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h != nullptr) dlclose(h);
  return h != nullptr;
}

#define SKIP_WITH_DRIVER() \
  if (driverPresent())     \
  GTEST_SKIP() << "a CUDA driver loads here: tests/gpu/api_check covers device communicators"

// n ranks as threads, rank r created with config.device = devices[r]; results and last errors.
struct InitResult {
  std::vector<fcclResult_t> res;
  std::vector<std::string> err;
  std::vector<fcclComm_t> comms;
};
InitResult initWithDevices(const std::vector<int>& devices) {
  const int n = int(devices.size());
  InitResult out{std::vector<fcclResult_t>(n), std::vector<std::string>(n), std::vector<fcclComm_t>(n)};
  fcclUniqueId id;
  EXPECT_EQ(fcclGetUniqueId(&id), fcclSuccess);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
      config.device = devices[r];
      config.timeoutMs = 20000;
      out.res[r] = fcclCommInitRankConfig(&out.comms[r], n, id, r, &config);
      out.err[r] = fcclGetLastError(nullptr);
    });
  for (auto& t : threads) t.join();
  return out;
}

TEST(DeviceComm, InitAllOnDevicesFailsNamingTheDeviceAndWhy) {
  SKIP_WITH_DRIVER();
  fcclComm_t comms[2] = {reinterpret_cast<fcclComm_t>(1), reinterpret_cast<fcclComm_t>(1)};
  const int devlist[2] = {0, 0};
  const fcclResult_t r = fcclCommInitAll(comms, 2, devlist);
  EXPECT_NE(r, fcclSuccess);
  const std::string e = fcclGetLastError(nullptr);
  EXPECT_NE(e.find("CUDA device 0"), std::string::npos) << e;
  // Either this build has no CUDA, or the machine has no driver: the sentence says which.
  EXPECT_TRUE(e.find("built without CUDA") != std::string::npos || e.find("CUDA driver") != std::string::npos)
      << e;
  EXPECT_EQ(comms[0], nullptr);
  EXPECT_EQ(comms[1], nullptr);
}

TEST(DeviceComm, BadDevlistIsRefusedBeforeAnyRankStarts) {
  fcclComm_t comms[3] = {};
  const int devlist[3] = {0, -1, 0};
  EXPECT_EQ(fcclCommInitAll(comms, 3, devlist), fcclInvalidArgument);
  const std::string e = fcclGetLastError(nullptr);
  EXPECT_NE(e.find("devlist[1] is -1"), std::string::npos) << e;
}

TEST(DeviceComm, ConfigDeviceMinusOneIsAHostCommunicator) {
  InitResult r = initWithDevices({-1, -1});
  for (int i = 0; i < 2; ++i) ASSERT_EQ(r.res[i], fcclSuccess) << r.err[i];
  int dev = 7;
  EXPECT_EQ(fcclCommCuDevice(r.comms[0], &dev), fcclSuccess);
  EXPECT_EQ(dev, -1);
  // A host communicator takes no stream, and says what it is.
  float x = 1;
  EXPECT_EQ(fcclAllReduce(&x, &x, 1, fcclFloat32, fcclSum, r.comms[0], reinterpret_cast<fcclStream_t>(0x10)),
            fcclInvalidArgument);
  const std::string e = fcclGetLastError(nullptr);
  EXPECT_NE(e.find("stream must be NULL on a host communicator"), std::string::npos) << e;
  // The refused call enqueued nothing: both ranks still run an AllReduce together.
  std::vector<std::thread> threads;
  float v[2] = {1, 2};
  fcclResult_t res[2];
  for (int i = 0; i < 2; ++i)
    threads.emplace_back(
        [&, i] { res[i] = fcclAllReduce(&v[i], &v[i], 1, fcclFloat32, fcclSum, r.comms[i], nullptr); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(res[0], fcclSuccess);
  EXPECT_EQ(res[1], fcclSuccess);
  EXPECT_EQ(v[0], 3.0f);
  EXPECT_EQ(v[1], 3.0f);
  for (fcclComm_t c : r.comms) EXPECT_EQ(fcclCommDestroy(c), fcclSuccess);
}

TEST(DeviceComm, HostAndDeviceRanksDoNotMix) {
  InitResult r = initWithDevices({-1, 0});
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(r.res[i], fcclInvalidUsage) << r.err[i];
    EXPECT_NE(r.err[i].find("rank 0 has no CUDA device but rank 1 is bound to device 0"), std::string::npos)
        << r.err[i];
    EXPECT_EQ(r.comms[i], nullptr);
  }
}

TEST(DeviceComm, ConfigDeviceWithoutDriverFailsAtInit) {
  SKIP_WITH_DRIVER();
  InitResult r = initWithDevices({0});
  EXPECT_NE(r.res[0], fcclSuccess);
  EXPECT_NE(r.err[0].find("cannot bind the communicator to CUDA device 0"), std::string::npos) << r.err[0];
  EXPECT_EQ(r.comms[0], nullptr);
}

TEST(DeviceComm, MemAllocSaysWhyItCannot) {
  SKIP_WITH_DRIVER();
  void* p = reinterpret_cast<void*>(0x1);
  EXPECT_NE(fcclMemAlloc(&p, 1024), fcclSuccess);
  EXPECT_EQ(p, nullptr);
  const std::string e = fcclGetLastError(nullptr);
  EXPECT_NE(e.find("fcclMemAlloc"), std::string::npos) << e;
  EXPECT_EQ(fcclMemFree(nullptr), fcclSuccess);
  EXPECT_EQ(fcclMemAlloc(nullptr, 16), fcclInvalidArgument);
}

}  // namespace
