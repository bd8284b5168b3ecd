// pointwise_sqrt.cc - the tile VM's sqrt and 1/sqrt kernels on x86. std::sqrt cannot vectorize
// while it may set errno (the library is not built with -fno-math-errno), so these use the IEEE
// sqrt instructions directly: the same results (correctly rounded, NaN for negative inputs).
#include "fusion/exec/pointwise_scalar.h"

#if FCCL_PW_X86
#include <immintrin.h>

namespace fccl::fusion::pw {

namespace {

template <bool Recip>
__attribute__((target("avx2"))) void sqrtF32Avx2(void* o, const void* a, const void*, const void*, int n,
                                                 int64_t) {
  float* out = static_cast<float*>(o);
  const float* x = static_cast<const float*>(a);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 s = _mm256_sqrt_ps(_mm256_loadu_ps(x + i));
    if (Recip) s = _mm256_div_ps(_mm256_set1_ps(1.0f), s);
    _mm256_storeu_ps(out + i, s);
  }
  for (; i < n; ++i) {
    const float s = _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x[i])));
    out[i] = Recip ? 1.0f / s : s;
  }
}
template <bool Recip>
void sqrtF32Sse(void* o, const void* a, const void*, const void*, int n, int64_t) {
  float* out = static_cast<float*>(o);
  const float* x = static_cast<const float*>(a);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    __m128 s = _mm_sqrt_ps(_mm_loadu_ps(x + i));
    if (Recip) s = _mm_div_ps(_mm_set1_ps(1.0f), s);
    _mm_storeu_ps(out + i, s);
  }
  for (; i < n; ++i) {
    const float s = _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x[i])));
    out[i] = Recip ? 1.0f / s : s;
  }
}
template <bool Recip>
__attribute__((target("avx2"))) void sqrtF64Avx2(void* o, const void* a, const void*, const void*, int n,
                                                 int64_t) {
  double* out = static_cast<double*>(o);
  const double* x = static_cast<const double*>(a);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256d s = _mm256_sqrt_pd(_mm256_loadu_pd(x + i));
    if (Recip) s = _mm256_div_pd(_mm256_set1_pd(1.0), s);
    _mm256_storeu_pd(out + i, s);
  }
  for (; i < n; ++i) {
    const __m128d v = _mm_set_sd(x[i]);
    const double s = _mm_cvtsd_f64(_mm_sqrt_sd(v, v));
    out[i] = Recip ? 1.0 / s : s;
  }
}
template <bool Recip>
void sqrtF64Sse(void* o, const void* a, const void*, const void*, int n, int64_t) {
  double* out = static_cast<double*>(o);
  const double* x = static_cast<const double*>(a);
  int i = 0;
  for (; i + 2 <= n; i += 2) {
    __m128d s = _mm_sqrt_pd(_mm_loadu_pd(x + i));
    if (Recip) s = _mm_div_pd(_mm_set1_pd(1.0), s);
    _mm_storeu_pd(out + i, s);
  }
  for (; i < n; ++i) {
    const __m128d v = _mm_set_sd(x[i]);
    const double s = _mm_cvtsd_f64(_mm_sqrt_sd(v, v));
    out[i] = Recip ? 1.0 / s : s;
  }
}
bool haveAvx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

}  // namespace

Kernel sqrtKernelX86(CT t, bool recip) {
  if (t == CT::F32)
    return haveAvx2() ? (recip ? &sqrtF32Avx2<true> : &sqrtF32Avx2<false>)
                      : (recip ? &sqrtF32Sse<true> : &sqrtF32Sse<false>);
  return haveAvx2() ? (recip ? &sqrtF64Avx2<true> : &sqrtF64Avx2<false>)
                    : (recip ? &sqrtF64Sse<true> : &sqrtF64Sse<false>);
}

}  // namespace fccl::fusion::pw
#endif  // FCCL_PW_X86
