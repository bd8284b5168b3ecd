// ring_kernel_test.cc - the CUDA backend's collective kernels as NVRTC compiles them at run
// time (fusion/codegen/ring_kernel.h): every collective compiles to machine code for sm_90 and
// sm_80 from the embedded device headers (no GPU needed), for element types and operators
// that cover each width and each reduction functor; names are unique. The GPU check (tests/gpu/check.sh)
// compiles every combination.
#include <gtest/gtest.h>

#include <set>
#include <utility>
#include <vector>

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
      for (fcclRedOp_t op : {fcclSum, fcclProd, fcclMax, fcclMin, fcclAvg}) {
        const std::string n = ringKernelName({c, fcclDataType_t(t), op});
        EXPECT_FALSE(n.empty());
        EXPECT_TRUE(names.insert(n).second) << n;
      }
  EXPECT_EQ(ringKernelName({RingColl::AllReduce, fcclFloat32, fcclAvg}), "fccl_AllReduce_float_avg");
  // Avg is the sum kernel with the divide hook, whose divisor comes with the launch.
  EXPECT_NE(ringKernelSource({RingColl::AllReduce, fcclFloat32, fcclAvg})
                .find("DevDivideHook hook{args.avgDivisor}"),
            std::string::npos);
  EXPECT_EQ(ringKernelName({RingColl::AllReduce, fcclDataType_t(42), fcclSum}), "");
  EXPECT_EQ(ringKernelSource({RingColl::AllReduce, fcclFloat32, fcclRedOp_t(99)}), "");
  EXPECT_EQ(ringKernelName({RingColl::ReduceScatter, fcclFloat16, fcclSum, true}),
            "fccl_ReduceScatter_half_premulsum");
  std::string log;
  EXPECT_FALSE(compileRingKernel({RingColl::AllReduce, fcclDataType_t(42), fcclSum}, "sm_90", nullptr, &log));
  EXPECT_NE(log.find("no collective kernel"), std::string::npos) << log;
}

#ifdef FCCL_CODEGEN_HAVE_NVRTC
bool isCubin(const std::string& image) {
  return image.compare(0, 4,
                       "\x7f"
                       "ELF") == 0;
}

// A compile takes 0.3-1 s on the CI machine: every collective with two element types, and the
// AllReduce (the richest body) with every width and reduction functor, the divide hook included.
TEST(RingKernel, EveryCollectiveCompilesToMachineCode) {
  std::vector<RingKernelKey> keys;
  for (RingColl c : kAll) {
    keys.push_back({c, fcclFloat32, fcclSum});
    keys.push_back({c, fcclBfloat16, fcclAvg});
  }
  for (auto [type, op] : {std::pair{fcclFloat16, fcclMax},
                          {fcclBfloat16, fcclProd},
                          {fcclInt8, fcclMin},
                          {fcclUint64, fcclSum},
                          {fcclFloat16, fcclAvg},
                          {fcclInt32, fcclAvg}})
    keys.push_back({RingColl::AllReduce, type, op});
  for (const RingKernelKey& k : keys) {
    SCOPED_TRACE(ringKernelName(k));
    std::string image, log;
    ASSERT_TRUE(compileRingKernel(k, "sm_90", &image, &log)) << log << "\n" << ringKernelSource(k);
    EXPECT_EQ(log, "") << "compiled with warnings";
    EXPECT_TRUE(isCubin(image)) << "a cubin is an ELF image";
  }
  std::string image, log;  // and the other default architecture
  EXPECT_TRUE(compileRingKernel({RingColl::AllReduce, fcclFloat32, fcclSum}, "sm_80", &image, &log)) << log;
}

// PreMulSum for several element widths; one kernel reads the scalar from device memory or from
// its arguments.
TEST(RingKernel, PreMulSumKernelsCompile) {
  for (const RingKernelKey& k : {RingKernelKey{RingColl::AllReduce, fcclFloat32, fcclSum, true},
                                 RingKernelKey{RingColl::ReduceScatter, fcclFloat16, fcclSum, true},
                                 RingKernelKey{RingColl::Reduce, fcclBfloat16, fcclSum, true},
                                 RingKernelKey{RingColl::AllReduce, fcclInt8, fcclSum, true},
                                 RingKernelKey{RingColl::AllReduce, fcclUint64, fcclSum, true}}) {
    SCOPED_TRACE(ringKernelName(k));
    std::string image, log;
    ASSERT_TRUE(compileRingKernel(k, "sm_90", &image, &log)) << log << "\n" << ringKernelSource(k);
    EXPECT_EQ(log, "") << "compiled with warnings";
  }
}

// The low-latency protocol's kernels: every collective, and the element widths and hooks
// (Avg's divide, PreMulSum's load) whose packing into 8-byte lines differs.
TEST(RingKernel, LowLatencyKernelsCompile) {
  std::vector<RingKernelKey> keys;
  for (RingColl c : kAll) keys.push_back({c, fcclFloat32, fcclSum});
  for (auto [type, op] : {std::pair{fcclFloat16, fcclAvg},
                          {fcclBfloat16, fcclMax},
                          {fcclInt8, fcclProd},
                          {fcclFloat64, fcclMin},
                          {fcclInt32, fcclAvg}})
    keys.push_back({RingColl::AllReduce, type, op});
  keys.push_back({RingColl::AllReduce, fcclFloat16, fcclSum, true});
  for (RingKernelKey& k : keys) {
    k.proto = dev::DevProto::LL;
    SCOPED_TRACE(ringKernelName(k));
    EXPECT_NE(ringKernelName(k).find("_ll"), std::string::npos);
    std::string image, log;
    ASSERT_TRUE(compileRingKernel(k, "sm_90", &image, &log)) << log << "\n" << ringKernelSource(k);
    EXPECT_EQ(log, "") << "compiled with warnings";
    EXPECT_TRUE(isCubin(image));
  }
}

TEST(RingKernel, PointToPointKernelCompilesToMachineCode) {
  std::string image, log;
  ASSERT_TRUE(compileP2pKernel("sm_90", &image, &log)) << log << "\n" << p2pKernelSource();
  EXPECT_EQ(log, "") << "compiled with warnings";
  EXPECT_TRUE(isCubin(image));
}
#endif

}  // namespace
}  // namespace fccl::fusion::codegen
