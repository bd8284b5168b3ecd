// dropout.h - the one definition of dropout's mask: a counter-based hash of (seed, GLOBAL element
// index), so the mask never depends on the rank count, chunking, tiling or backend. Plain
// constexpr integer code with no includes, so the CUDA codegen can paste it into NVRTC sources.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define FCCL_DROPOUT_HD __host__ __device__
#else
#define FCCL_DROPOUT_HD
#endif

namespace fccl::ir {

// SplitMix64's finalizer (Steele, Lea, Flood 2014): a bijection on 64 bits with full avalanche.
FCCL_DROPOUT_HD constexpr unsigned long long dropoutMix(unsigned long long z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// 64 random bits for element `index` (the logical index in the whole tensor) under `seed` (the
// seed scalar's value converted to 64 bits, two's complement for negatives). Mixing the seed
// first keeps seeds s and s+1 from giving shifted copies of one mask.
FCCL_DROPOUT_HD constexpr unsigned long long dropoutHash(unsigned long long seed, unsigned long long index) {
  return dropoutMix(dropoutMix(seed) ^ index);
}

// The drop decision uses the top 24 bits (exact in float on any backend): an element is dropped
// when bits < threshold, threshold = floor(p * 2^24) clamped to [0, 2^24], p as a double.
constexpr unsigned kDropoutBits = 24;
FCCL_DROPOUT_HD constexpr unsigned dropoutThreshold(double p) {
  return p <= 0   ? 0u
         : p >= 1 ? (1u << kDropoutBits)
                  : static_cast<unsigned>(p * static_cast<double>(1u << kDropoutBits));
}
FCCL_DROPOUT_HD constexpr bool dropoutKeep(unsigned long long seed, unsigned long long index,
                                           unsigned threshold) {
  return static_cast<unsigned>(dropoutHash(seed, index) >> (64 - kDropoutBits)) >= threshold;
}

// dropout(x, p, seed)[i] = keep ? x[i] / (1 - p) : 0   (and 0 everywhere when p >= 1).
FCCL_DROPOUT_HD constexpr double dropoutApply(double x, double p, unsigned long long seed,
                                              unsigned long long index) {
  return p < 1 && dropoutKeep(seed, index, dropoutThreshold(p)) ? x / (1 - p) : 0.0;
}

static_assert(dropoutThreshold(0.0) == 0 && dropoutThreshold(1.0) == (1u << 24));
static_assert(dropoutHash(1, 0) != dropoutHash(2, 0) && dropoutHash(1, 0) != dropoutHash(1, 1));

}  // namespace fccl::ir
