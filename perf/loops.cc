// loops.cc - see loops.h. Compiled with the JIT's flags (perf/CMakeLists.txt); plain loops over
// __restrict pointers that GCC vectorizes, as the JIT's own loops are.
#include "loops.h"

#include <cmath>
#include <cstdint>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace fccl::perf {

namespace {

// The gradient as the statements see it: fccl's avg divides in float32.
template <bool kDivide>
inline float grad(const float* __restrict g, size_t i, float div) {
  if constexpr (kDivide)
    return g[i] / div;
  else
    return g[i];
}

template <bool kDivide>
void sgdLoop(const float* __restrict g, float* __restrict w, float* __restrict buf, size_t n, float div,
             const OptimParams& p) {
  const float keep = 1.0f - p.dampening;
  for (size_t i = 0; i < n; ++i) {
    const float gs = grad<kDivide>(g, i, div) + p.weightDecay * w[i];
    const float b = p.momentum * buf[i] + keep * gs;
    buf[i] = b;
    const float d = p.nesterov ? gs + p.momentum * b : b;
    w[i] = w[i] - p.lr * d;
  }
}

template <bool kDivide>
void adamwLoop(const float* __restrict g, float* __restrict w, float* __restrict m, float* __restrict v,
               size_t n, float div, const OptimParams& p) {
  const float c1 = 1.0f - std::pow(p.beta1, float(p.step)), c2 = 1.0f - std::pow(p.beta2, float(p.step));
  const float k1 = 1.0f - p.beta1, k2 = 1.0f - p.beta2;
  for (size_t i = 0; i < n; ++i) {
    const float gs = grad<kDivide>(g, i, div);
    const float mi = p.beta1 * m[i] + k1 * gs;
    const float vi = p.beta2 * v[i] + k2 * gs * gs;
    m[i] = mi;
    v[i] = vi;
    const float mhat = mi / c1, vhat = vi / c2;
    w[i] = w[i] - p.lr * (mhat / (std::sqrt(vhat) + p.eps) + p.weightDecay * w[i]);
  }
}

template <bool kDivide>
void lambLoop(const float* __restrict g, const float* __restrict w, float* __restrict m, float* __restrict v,
              float* __restrict u, size_t n, float div, const OptimParams& p) {
  const float c1 = 1.0f - std::pow(p.beta1, float(p.step)), c2 = 1.0f - std::pow(p.beta2, float(p.step));
  const float k1 = 1.0f - p.beta1, k2 = 1.0f - p.beta2;
  for (size_t i = 0; i < n; ++i) {
    const float gs = grad<kDivide>(g, i, div);
    const float mi = p.beta1 * m[i] + k1 * gs;
    const float vi = p.beta2 * v[i] + k2 * gs * gs;
    m[i] = mi;
    v[i] = vi;
    u[i] = (mi / c1) / (std::sqrt(vi / c2) + p.eps) + p.weightDecay * w[i];
  }
}

// Squares of a[0, n) added into 8 float64 lanes (independent chains, so the loop vectorizes).
void addSquares(const float* __restrict a, size_t n, double* __restrict lanes) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) lanes[j] += double(a[i + j]) * double(a[i + j]);
  for (; i < n; ++i) lanes[0] += double(a[i]) * double(a[i]);
}

}  // namespace

void sgdUpdate(const float* g, float* w, float* buf, size_t n, int gdiv, const OptimParams& p) {
  if (gdiv > 1)
    sgdLoop<true>(g, w, buf, n, float(gdiv), p);
  else
    sgdLoop<false>(g, w, buf, n, 1.0f, p);
}

void adamUpdate(const float* __restrict gsum, float* __restrict w, float* __restrict m, float* __restrict v,
                size_t n, int nranks, const OptimParams& p) {
  const float nr = float(nranks);
  const float c1 = 1.0f - std::pow(p.beta1, float(p.step)), c2 = 1.0f - std::pow(p.beta2, float(p.step));
  const float k1 = 1.0f - p.beta1, k2 = 1.0f - p.beta2;
  for (size_t i = 0; i < n; ++i) {
    const float gs = gsum[i] / nr;
    const float mi = p.beta1 * m[i] + k1 * gs;
    const float vi = p.beta2 * v[i] + k2 * gs * gs;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] - p.lr * (mi / c1) / (std::sqrt(vi / c2) + p.eps);
  }
}

void adamwUpdate(const float* g, float* w, float* m, float* v, size_t n, int gdiv, const OptimParams& p) {
  if (gdiv > 1)
    adamwLoop<true>(g, w, m, v, n, float(gdiv), p);
  else
    adamwLoop<false>(g, w, m, v, n, 1.0f, p);
}

void lambPass1(const float* g, const float* w, float* m, float* v, float* u, size_t n, int gdiv,
               const OptimParams& p, double* wsq, double* usq) {
  // Blocks small enough that the norms re-read w and u from L1, not from memory.
  constexpr size_t kBlock = 2048;
  double wl[8] = {0}, ul[8] = {0};
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t len = n - b < kBlock ? n - b : kBlock;
    if (gdiv > 1)
      lambLoop<true>(g + b, w + b, m + b, v + b, u + b, len, float(gdiv), p);
    else
      lambLoop<false>(g + b, w + b, m + b, v + b, u + b, len, 1.0f, p);
    addSquares(w + b, len, wl);
    addSquares(u + b, len, ul);
  }
  for (int j = 0; j < 8; ++j) {
    *wsq += wl[j];
    *usq += ul[j];
  }
}

void lambPass2(float* __restrict w, const float* __restrict u, size_t n, float lrTrust) {
  for (size_t i = 0; i < n; ++i) w[i] = w[i] - lrTrust * u[i];
}

float lambTrust(double wsq, double usq) {
  const float wn = float(std::sqrt(wsq)), un = float(std::sqrt(usq));
  return wn > 0 && un > 0 ? wn / un : 1.0f;
}

double readAll(const float* a, size_t n) {
#if defined(__x86_64__)
  // Four independent sums: IEEE addition does not reassociate, so a plain loop would be a
  // latency-bound chain instead of a bandwidth test.
  __m128 s0 = _mm_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm_add_ps(s0, _mm_loadu_ps(a + i));
    s1 = _mm_add_ps(s1, _mm_loadu_ps(a + i + 4));
    s2 = _mm_add_ps(s2, _mm_loadu_ps(a + i + 8));
    s3 = _mm_add_ps(s3, _mm_loadu_ps(a + i + 12));
  }
  float lanes[4];
  _mm_storeu_ps(lanes, _mm_add_ps(_mm_add_ps(s0, s1), _mm_add_ps(s2, s3)));
  double s = double(lanes[0]) + lanes[1] + lanes[2] + lanes[3];
  for (; i < n; ++i) s += a[i];
  return s;
#else
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += a[i];
  return s;
#endif
}

namespace {

// Elements before dst reaches 16-byte alignment (at most 3 when dst is float-aligned).
size_t headTo16(const float* dst, size_t n) {
  size_t h = ((16 - (reinterpret_cast<uintptr_t>(dst) & 15)) & 15) / sizeof(float);
  return h < n ? h : n;
}

}  // namespace

void copyStreaming(float* __restrict dst, const float* __restrict src, size_t n) {
  size_t i = 0;
#if defined(__x86_64__)
  for (const size_t h = headTo16(dst, n); i < h; ++i) dst[i] = src[i];
  for (; i + 16 <= n; i += 16) {
    _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
    _mm_stream_ps(dst + i + 4, _mm_loadu_ps(src + i + 4));
    _mm_stream_ps(dst + i + 8, _mm_loadu_ps(src + i + 8));
    _mm_stream_ps(dst + i + 12, _mm_loadu_ps(src + i + 12));
  }
  _mm_sfence();
#endif
  for (; i < n; ++i) dst[i] = src[i];
}

void copyCached(float* __restrict dst, const float* __restrict src, size_t n) {
  size_t i = 0;
#if defined(__x86_64__)
  // Intrinsics, so the compiler cannot turn the loop into memcpy (which streams large copies).
  for (; i + 16 <= n; i += 16) {
    _mm_storeu_ps(dst + i, _mm_loadu_ps(src + i));
    _mm_storeu_ps(dst + i + 4, _mm_loadu_ps(src + i + 4));
    _mm_storeu_ps(dst + i + 8, _mm_loadu_ps(src + i + 8));
    _mm_storeu_ps(dst + i + 12, _mm_loadu_ps(src + i + 12));
  }
#endif
  for (; i < n; ++i) dst[i] = src[i];
}

void triadStreaming(float* __restrict dst, const float* __restrict a, const float* __restrict b, size_t n) {
  size_t i = 0;
#if defined(__x86_64__)
  for (const size_t h = headTo16(dst, n); i < h; ++i) dst[i] = a[i] + b[i];
  for (; i + 8 <= n; i += 8) {
    _mm_stream_ps(dst + i, _mm_add_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i)));
    _mm_stream_ps(dst + i + 4, _mm_add_ps(_mm_loadu_ps(a + i + 4), _mm_loadu_ps(b + i + 4)));
  }
  _mm_sfence();
#endif
  for (; i < n; ++i) dst[i] = a[i] + b[i];
}

void updateInPlace(const float* __restrict g, float* __restrict a, float* __restrict b, float* __restrict c,
                   size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float x = g[i];
    a[i] = 0.5f * a[i] + x;
    b[i] = 0.5f * b[i] + x;
    c[i] = c[i] - 0.25f * x;
  }
}

}  // namespace fccl::perf
