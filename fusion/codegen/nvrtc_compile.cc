// nvrtc_compile.cc - NVRTC driver and the one process-wide mutable object of the codegen: the
// compile cache (mutex-protected; hash of arch + source -> PTX). The source itself is kept in
// each entry and compared on lookup, so a 64-bit hash collision costs a compile, never wrong PTX.
#include "fusion/codegen/nvrtc_compile.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

#ifdef FCCL_HAVE_NVRTC
#include <nvrtc.h>
#endif

namespace fccl::fusion::codegen {

namespace {

struct Entry {
  std::string arch;
  std::string src;
  std::string ptx;
  std::string log;
};

// The cache: compiles are 0.1-1 s each, so every program x arch is compiled once per process.
// Function-local static so there is no static-initialization-order question.
struct Cache {
  std::mutex mu;
  std::unordered_map<uint64_t, Entry> entries;
  NvrtcCacheStats stats;
};
Cache& cache() {
  static Cache c;
  return c;
}

#ifdef FCCL_HAVE_NVRTC
bool lookup(uint64_t key, const std::string& src, const std::string& arch, std::string* ptx,
            std::string* log) {
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  auto it = c.entries.find(key);
  if (it == c.entries.end() || it->second.arch != arch || it->second.src != src) return false;
  ++c.stats.hits;
  if (ptx) *ptx = it->second.ptx;
  if (log) *log = it->second.log;
  return true;
}

// -I options for CUDA's headers (cuda_fp16.h and what it includes: nv/target, vector_types.h).
// FCCL_CUDA_INCLUDE_DIRS is CMake's CUDAToolkit_INCLUDE_DIRS, ';'-separated.
std::vector<std::string> includeOptions() {
  std::vector<std::string> out;
  const std::string dirs = FCCL_CUDA_INCLUDE_DIRS;
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(';', start), dirs.size());
    if (end > start) out.push_back("-I" + dirs.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// One NVRTC compile; the log is returned whether or not it succeeded. A real architecture
// ("sm_90") gives machine code (cubin), a virtual one ("compute_90") PTX.
bool compileNow(const std::string& src, const std::string& name, const std::string& arch,
                const std::vector<NvrtcHeader>& headers, std::string* ptx, std::string* log) {
  nvrtcProgram prog = nullptr;
  std::vector<const char*> texts, names;
  for (const NvrtcHeader& h : headers) {
    texts.push_back(h.text.c_str());
    names.push_back(h.name.c_str());
  }
  nvrtcResult r = nvrtcCreateProgram(&prog, src.c_str(), (name + ".cu").c_str(),
                                     static_cast<int>(headers.size()), texts.data(), names.data());
  if (r != NVRTC_SUCCESS) {
    *log = std::string("nvrtcCreateProgram: ") + nvrtcGetErrorString(r);
    return false;
  }
  std::vector<std::string> opts = {"-std=c++17", "--gpu-architecture=" + arch};
  for (std::string& inc : includeOptions()) opts.push_back(std::move(inc));
  std::vector<const char*> argv;
  for (const std::string& o : opts) argv.push_back(o.c_str());
  const nvrtcResult cr = nvrtcCompileProgram(prog, static_cast<int>(argv.size()), argv.data());
  size_t logSize = 0;
  if (nvrtcGetProgramLogSize(prog, &logSize) == NVRTC_SUCCESS && logSize > 1) {
    log->assign(logSize, '\0');
    nvrtcGetProgramLog(prog, log->data());
    log->resize(logSize - 1);  // drop the terminating NUL
  }
  bool ok = cr == NVRTC_SUCCESS;
  if (!ok && log->empty()) *log = std::string("nvrtcCompileProgram: ") + nvrtcGetErrorString(cr);
  if (ok && arch.rfind("sm_", 0) == 0) {
    size_t size = 0;
    ok = nvrtcGetCUBINSize(prog, &size) == NVRTC_SUCCESS;
    if (ok) {
      ptx->assign(size, '\0');
      ok = nvrtcGetCUBIN(prog, ptx->data()) == NVRTC_SUCCESS;
    }
    if (!ok) *log += "nvrtcGetCUBIN failed\n";
  } else if (ok) {
    size_t ptxSize = 0;
    ok = nvrtcGetPTXSize(prog, &ptxSize) == NVRTC_SUCCESS;
    if (ok) {
      ptx->assign(ptxSize, '\0');
      ok = nvrtcGetPTX(prog, ptx->data()) == NVRTC_SUCCESS;
      if (ptxSize > 0) ptx->resize(ptxSize - 1);
    }
    if (!ok) *log += "nvrtcGetPTX failed\n";
  }
  nvrtcDestroyProgram(&prog);
  return ok;
}
#endif

}  // namespace

uint64_t nvrtcCacheKey(const std::string& src, const std::string& arch) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  auto mix = [&h](const std::string& s) {
    for (unsigned char ch : s) {
      h ^= ch;
      h *= 1099511628211ull;
    }
  };
  mix(arch);
  mix(std::string(1, '\0'));  // "ab"+"c" and "a"+"bc" must differ
  mix(src);
  return h;
}

bool haveNvrtc() {
#ifdef FCCL_HAVE_NVRTC
  return true;
#else
  return false;
#endif
}

bool compileWithNvrtc(const std::string& src, const std::string& name, const std::string& arch,
                      std::string* ptx, std::string* log) {
  return compileWithNvrtc(src, name, arch, {}, ptx, log);
}

bool compileWithNvrtc(const std::string& src, const std::string& name, const std::string& arch,
                      const std::vector<NvrtcHeader>& headers, std::string* ptx, std::string* log) {
  std::string localPtx, localLog;
  if (!ptx) ptx = &localPtx;
  if (!log) log = &localLog;
  ptx->clear();
  log->clear();
#ifndef FCCL_HAVE_NVRTC
  (void)src, (void)name, (void)arch, (void)headers;
  *log = "built without NVRTC: the CUDA toolkit was not found when fccl was configured";
  return false;
#else
  // The headers are part of what is compiled: they go into the key and the comparison.
  std::string whole = src;
  for (const NvrtcHeader& h : headers) whole += std::string(1, '\0') + h.name + std::string(1, '\0') + h.text;
  const uint64_t key = nvrtcCacheKey(whole, arch);
  if (lookup(key, whole, arch, ptx, log)) return true;
  // Compile outside the lock: a slow compile must not serialize unrelated ones. Two threads
  // racing on the same source both compile; the second insert is a no-op.
  const bool ok = compileNow(src, name, arch, headers, ptx, log);
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  ++c.stats.misses;
  if (ok) c.entries.try_emplace(key, Entry{arch, whole, *ptx, *log});
  return ok;
#endif
}

NvrtcCacheStats nvrtcCacheStats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  NvrtcCacheStats s = c.stats;
  s.entries = c.entries.size();
  return s;
}

void nvrtcCacheClear() {
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  c.entries.clear();
  c.stats = {};
}

}  // namespace fccl::fusion::codegen
