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

// NVRTC's log with each message about a line of src that follows a statement's marker (the
// emitter's "// line N: x = ..." comment, cuda_emit.cc) followed by "  (program line N: x = ...)",
// so a compile error names the program line it came from. Lines without a marker above them are
// left as they are. compileWithNvrtc applies it to the log of a failed compile.
std::string annotateProgramLines(const std::string& src, const std::string& log);

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

// The on-disk cache (FCCL_CACHE_DIR, set by the CUDA backend): a compile missing from memory
// is looked up there before NVRTC runs, and written there after. Files are keyed by 128 bits of
// the whole source (headers included), the architecture and NVRTC's version; the directory must
// be private to this user (fusion/cache/cache_files.h), else the disk is not used and
// nvrtcDiskCacheError() says why. "" (the default) turns it off.
void nvrtcSetDiskCache(const std::string& dir);
std::string nvrtcDiskCacheError();

// Counters of the cache since process start (or the last clear), for tests and FCCL_DEBUG.
struct NvrtcCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;  // compiles actually run (successful or not)
  uint64_t entries = 0;
  uint64_t diskHits = 0;    // images read from the disk cache instead of compiling
  uint64_t diskWrites = 0;  // images written to it
};
NvrtcCacheStats nvrtcCacheStats();
void nvrtcCacheClear();  // drops every entry and zeroes the counters (tests)

}  // namespace fccl::fusion::codegen
