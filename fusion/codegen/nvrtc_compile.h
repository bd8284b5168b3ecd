// nvrtc_compile.h - CUDA C++ -> PTX with NVRTC (no GPU needed), behind a process-wide cache
// keyed by a hash of (source, arch). Built without the CUDA toolkit (FCCL_HAVE_NVRTC unset),
// compileWithNvrtc always fails with "built without NVRTC"; emission still works.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fccl::fusion::codegen {

// Compiles `src` (one self-contained translation unit; only CUDA's own headers are on the
// include path) for `arch`, e.g. "compute_90", with -std=c++17. `name` names the program in
// NVRTC's messages. Returns true with the PTX in *ptx (may be null) and NVRTC's log in *log
// (may be null; empty when there were no warnings). A cached result is returned without
// compiling; failures are not cached, so their log is always the compiler's.
// Thread-safe; concurrent compiles of different sources run in parallel.
bool compileWithNvrtc(const std::string& src, const std::string& name, const std::string& arch,
                      std::string* ptx, std::string* log);

// An in-memory header a source includes by this exact name (quotes or angle brackets).
struct NvrtcHeader {
  std::string name;
  std::string text;
};
// The same with in-memory headers; arch "sm_90" (a real architecture) gives machine code (a
// cubin) in *image, "compute_90" PTX. Cached like the above (the headers are part of the key).
bool compileWithNvrtc(const std::string& src, const std::string& name, const std::string& arch,
                      const std::vector<NvrtcHeader>& headers, std::string* image, std::string* log);

// Whether this build can compile at all (FCCL_HAVE_NVRTC).
bool haveNvrtc();

// The cache key: 64-bit FNV-1a over arch, a separator and the source. Exposed for tests and for
// the runtime's module cache, which keys loaded modules the same way.
uint64_t nvrtcCacheKey(const std::string& src, const std::string& arch);

// Counters of the cache since process start (or the last clear), for tests and FCCL_DEBUG.
struct NvrtcCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;  // compiles actually run (successful or not)
  uint64_t entries = 0;
};
NvrtcCacheStats nvrtcCacheStats();
void nvrtcCacheClear();  // drops every entry and zeroes the counters (tests)

}  // namespace fccl::fusion::codegen
