// ring_kernel_test.cc - the CUDA backend's collective kernels as NVRTC compiles them at run
// time (fusion/codegen/ring_kernel.h): every collective compiles to machine code for sm_90 and
// sm_80 from the embedded device headers (no GPU needed), for element types and operators
// that cover each width and each reduction functor; names are unique and the launch bounds
// are the header's. The GPU check (tests/gpu/check.sh) compiles every combination.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "fusion/codegen/ring_kernel.h"

namespace fccl::fusion::codegen {
namespace {

constexpr RingColl kAll[] = {RingColl::AllReduce,      RingColl::ReduceScatter, RingColl::AllGather,
                             RingColl::Broadcast,      RingColl::Reduce,        RingColl::ReduceScatterSliced,
                             RingColl::AllGatherSliced};

TEST(RingKernel, NamesAreUniqueAndUnknownTypesHaveNone) {
  std::set<std::string> names;
  for (RingColl c : kAll)
    for (int t = 0; t < fcclNumTypes; ++t)
      for (fcclRedOp_t op : {fcclSum, fcclProd, fcclMax, fcclMin}) {
        const std::string n = ringKernelName({c, fcclDataType_t(t), op});
        EXPECT_FALSE(n.empty());
        EXPECT_TRUE(names.insert(n).second) << n;
      }
  EXPECT_EQ(ringKernelName({RingColl::AllReduce, fcclFloat32, fcclAvg}), "fccl_AllReduce_float_sum");
  EXPECT_EQ(ringKernelName({RingColl::AllReduce, fcclDataType_t(42), fcclSum}), "");
  EXPECT_EQ(ringKernelSource({RingColl::AllReduce, fcclFloat32, fcclRedOp_t(99)}), "");
  std::string log;
  EXPECT_FALSE(compileRingKernel({RingColl::AllReduce, fcclDataType_t(42), fcclSum}, "sm_90", nullptr, &log));
  EXPECT_NE(log.find("no collective kernel"), std::string::npos) << log;
}

TEST(RingKernel, LaunchBoundsAreTheHeaders) {
  std::ifstream in(std::string(FCCL_FUSION_TEST_DIR) + "/../../collectives/device_kernels.cuh");
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_NE(s.str().find("constexpr int kDevThreads = " + std::to_string(kRingKernelThreads) + ";"),
            std::string::npos);
}

#ifdef FCCL_CODEGEN_HAVE_NVRTC
TEST(RingKernel, EveryCollectiveCompilesToMachineCode) {
  const std::pair<fcclDataType_t, fcclRedOp_t> combos[] = {{fcclFloat32, fcclSum},
                                                           {fcclFloat16, fcclMax},
                                                           {fcclBfloat16, fcclProd},
                                                           {fcclInt8, fcclMin},
                                                           {fcclUint64, fcclSum}};
  for (RingColl c : kAll)
    for (auto [type, op] : combos) {
      const RingKernelKey k{c, type, op};
      SCOPED_TRACE(ringKernelName(k));
      std::string image, log;
      ASSERT_TRUE(compileRingKernel(k, "sm_90", &image, &log)) << log << "\n" << ringKernelSource(k);
      EXPECT_EQ(log, "") << "compiled with warnings";
      EXPECT_EQ(image.compare(0, 4,
                              "\x7f"
                              "ELF"),
                0)
          << "a cubin is an ELF image";
    }
  std::string image, log;  // and the other default architecture
  EXPECT_TRUE(compileRingKernel({RingColl::AllReduce, fcclFloat32, fcclSum}, "sm_80", &image, &log)) << log;
}
#endif

}  // namespace
}  // namespace fccl::fusion::codegen
