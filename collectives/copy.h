// copy.h - copies for the data path. copyToOutput writes a chunk into the user's output: for
// large collectives it uses non-temporal (streaming) stores, which skip the read-for-ownership
// of every output line (a third of the memory traffic of a 2-rank allreduce) and keep the
// output from evicting the FIFO slots that peers are about to read. Small outputs use memcpy
// so they stay in cache for the caller. Streaming stores need an sfence before the data is
// published to another core; copyToOutput issues it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

namespace fccl {

inline void copyToOutput(void* dst, const void* src, size_t bytes, bool streaming) {
#if defined(__x86_64__)
  if (streaming && bytes >= 1024) {
    char* d = static_cast<char*>(dst);
    const char* s = static_cast<const char*>(src);
    size_t head = (16 - (reinterpret_cast<uintptr_t>(d) & 15)) & 15;
    memcpy(d, s, head);
    d += head;
    s += head;
    bytes -= head;
    size_t body = bytes & ~size_t(63);
    for (size_t i = 0; i < body; i += 64) {
      __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
      __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 16));
      __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 32));
      __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 48));
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + i), a);
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 16), b);
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 32), c);
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 48), e);
    }
    memcpy(d + body, s + body, bytes - body);
    _mm_sfence();
    return;
  }
#else
  (void)streaming;
#endif
  memcpy(dst, src, bytes);
}

}  // namespace fccl
