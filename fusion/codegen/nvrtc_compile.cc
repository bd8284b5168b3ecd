// nvrtc_compile.cc - NVRTC driver and the one process-wide mutable object of the codegen: the
// compile cache (mutex-protected; hash of arch + source -> PTX). The source itself is kept in
// each entry and compared on lookup, so a 64-bit hash collision costs a compile, never wrong PTX.
#include "fusion/codegen/nvrtc_compile.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <vector>

#ifdef FCCL_HAVE_NVRTC
#include <nvrtc.h>

#include "src/base/dynlib.h"
#endif
#include "fusion/cache/cache_files.h"

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
  std::string diskDir;    // "" = no disk cache
  std::string diskError;  // why the disk cache is not used
};
Cache& cache() {
  static Cache c;
  return c;
}

#ifdef FCCL_HAVE_NVRTC
// NVRTC, loaded when first needed (src/base/dynlib.h): libfccl does not link it, so it loads on
// machines without the CUDA toolkit and says why a compile cannot run there.
struct Nvrtc {
  decltype(&::nvrtcCreateProgram) createProgram;
  decltype(&::nvrtcCompileProgram) compileProgram;
  decltype(&::nvrtcGetProgramLogSize) getProgramLogSize;
  decltype(&::nvrtcGetProgramLog) getProgramLog;
  decltype(&::nvrtcGetPTXSize) getPTXSize;
  decltype(&::nvrtcGetPTX) getPTX;
  decltype(&::nvrtcGetCUBINSize) getCUBINSize;
  decltype(&::nvrtcGetCUBIN) getCUBIN;
  decltype(&::nvrtcDestroyProgram) destroyProgram;
  decltype(&::nvrtcGetErrorString) getErrorString;
  decltype(&::nvrtcVersion) version;
  std::string why;  // non-empty: NVRTC could not be loaded
};

const Nvrtc& nvrtc() {
  static const Nvrtc lib = [] {
    Nvrtc n{};
#ifndef FCCL_NVRTC_LIBRARY
#define FCCL_NVRTC_LIBRARY "libnvrtc.so"
#endif
    void* h = dynOpen({"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", FCCL_NVRTC_LIBRARY}, &n.why);
    if (h == nullptr) {
      n.why = "cannot load NVRTC (" + n.why + ")";
      return n;
    }
    bool ok = dynSym(h, "nvrtcCreateProgram", &n.createProgram, &n.why);
    ok &= dynSym(h, "nvrtcCompileProgram", &n.compileProgram, &n.why);
    ok &= dynSym(h, "nvrtcGetProgramLogSize", &n.getProgramLogSize, &n.why);
    ok &= dynSym(h, "nvrtcGetProgramLog", &n.getProgramLog, &n.why);
    ok &= dynSym(h, "nvrtcGetPTXSize", &n.getPTXSize, &n.why);
    ok &= dynSym(h, "nvrtcGetPTX", &n.getPTX, &n.why);
    ok &= dynSym(h, "nvrtcGetCUBINSize", &n.getCUBINSize, &n.why);
    ok &= dynSym(h, "nvrtcGetCUBIN", &n.getCUBIN, &n.why);
    ok &= dynSym(h, "nvrtcDestroyProgram", &n.destroyProgram, &n.why);
    ok &= dynSym(h, "nvrtcGetErrorString", &n.getErrorString, &n.why);
    ok &= dynSym(h, "nvrtcVersion", &n.version, &n.why);
    if (!ok) n.why = "the loaded NVRTC lacks a function (" + n.why + ")";
    return n;
  }();
  return lib;
}

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

uint64_t fnv1a(const std::string& s, uint64_t h) {
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

std::string hex(uint64_t v) {
  char buf[17];
  snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)v);
  return buf;
}

// The disk cache's file for `whole` (source and headers) on arch, or "" when the disk is off or
// unusable. 128 bits of key: a collision would load the wrong code, unlike in memory where the
// source is compared.
std::string diskPath(const std::string& whole, const std::string& arch) {
  Cache& c = cache();
  std::string dir;
  {
    std::lock_guard<std::mutex> g(c.mu);
    dir = c.diskDir;
  }
  if (dir.empty()) return "";
  std::string error;
  if (!cache::privateDir(dir, &error)) {
    std::lock_guard<std::mutex> g(c.mu);
    c.diskError = error;
    return "";
  }
  int major = 0, minor = 0;
  nvrtc().version(&major, &minor);
  const std::string keyText =
      whole + '\0' + arch + '\0' + std::to_string(major) + "." + std::to_string(minor);
  return dir + "/nvrtc-" + hex(fnv1a(keyText, 14695981039346656037ull)) +
         hex(fnv1a(keyText, 0x84222325cbf29ce4ull)) + "-" + arch +
         (arch.rfind("sm_", 0) == 0 ? ".cubin" : ".ptx");
}

bool readWhole(const std::string& path, std::string* out) {
  if (!cache::ownFile(path)) return false;
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  *out = s.str();
  return !out->empty();  // files appear whole (rename), so a non-empty one is what we wrote
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
  const Nvrtc& n = nvrtc();
  if (!n.why.empty()) {
    *log = n.why;
    return false;
  }
  nvrtcProgram prog = nullptr;
  std::vector<const char*> texts, names;
  for (const NvrtcHeader& h : headers) {
    texts.push_back(h.text.c_str());
    names.push_back(h.name.c_str());
  }
  nvrtcResult r = n.createProgram(&prog, src.c_str(), (name + ".cu").c_str(),
                                  static_cast<int>(headers.size()), texts.data(), names.data());
  if (r != NVRTC_SUCCESS) {
    *log = std::string("nvrtcCreateProgram: ") + n.getErrorString(r);
    return false;
  }
  std::vector<std::string> opts = {"-std=c++17", "--gpu-architecture=" + arch};
  for (std::string& inc : includeOptions()) opts.push_back(std::move(inc));
  std::vector<const char*> argv;
  for (const std::string& o : opts) argv.push_back(o.c_str());
  const nvrtcResult cr = n.compileProgram(prog, static_cast<int>(argv.size()), argv.data());
  size_t logSize = 0;
  if (n.getProgramLogSize(prog, &logSize) == NVRTC_SUCCESS && logSize > 1) {
    log->assign(logSize, '\0');
    n.getProgramLog(prog, log->data());
    log->resize(logSize - 1);  // drop the terminating NUL
  }
  bool ok = cr == NVRTC_SUCCESS;
  if (!ok && log->empty()) *log = std::string("nvrtcCompileProgram: ") + n.getErrorString(cr);
  if (ok && arch.rfind("sm_", 0) == 0) {
    size_t size = 0;
    ok = n.getCUBINSize(prog, &size) == NVRTC_SUCCESS;
    if (ok) {
      ptx->assign(size, '\0');
      ok = n.getCUBIN(prog, ptx->data()) == NVRTC_SUCCESS;
    }
    if (!ok) *log += "nvrtcGetCUBIN failed\n";
  } else if (ok) {
    size_t ptxSize = 0;
    ok = n.getPTXSize(prog, &ptxSize) == NVRTC_SUCCESS;
    if (ok) {
      ptx->assign(ptxSize, '\0');
      ok = n.getPTX(prog, ptx->data()) == NVRTC_SUCCESS;
      if (ptxSize > 0) ptx->resize(ptxSize - 1);
    }
    if (!ok) *log += "nvrtcGetPTX failed\n";
  }
  n.destroyProgram(&prog);
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
  return nvrtc().why.empty();
#else
  return false;
#endif
}

std::string annotateProgramLines(const std::string& src, const std::string& log) {
  // For each line of src, the marker text of the nearest statement marker at or above it.
  std::vector<std::string> marker(1, "");  // 1-based
  std::string current;
  for (size_t at = 0; at <= src.size();) {
    size_t end = src.find('\n', at);
    if (end == std::string::npos) end = src.size();
    const std::string line = src.substr(at, end - at);
    const size_t m = line.find("// line ");
    if (m != std::string::npos && line.find(':', m) != std::string::npos) current = line.substr(m + 3);
    marker.push_back(current);
    at = end + 1;
  }
  std::string out;
  for (size_t at = 0; at < log.size();) {
    size_t end = log.find('\n', at);
    if (end == std::string::npos) end = log.size();
    const std::string line = log.substr(at, end - at);
    out += line;
    // NVRTC: "name(123): error: ..."
    const size_t open = line.find('('), close = line.find("): ");
    if (open != std::string::npos && close != std::string::npos && close > open + 1) {
      const std::string digits = line.substr(open + 1, close - open - 1);
      const bool number = digits.size() <= 9 && digits.find_first_not_of("0123456789") == std::string::npos;
      const size_t n = number ? std::stoul(digits) : 0;
      if (n > 0 && n < marker.size() && !marker[n].empty()) out += "\n  (program " + marker[n] + ")";
    }
    if (end < log.size()) out += "\n";
    at = end + 1;
  }
  return out;
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
  Cache& c = cache();
  const std::string path = haveNvrtc() ? diskPath(whole, arch) : "";
  if (!path.empty() && readWhole(path, ptx)) {
    std::lock_guard<std::mutex> g(c.mu);
    ++c.stats.diskHits;
    c.entries.try_emplace(key, Entry{arch, whole, *ptx, ""});
    return true;
  }
  // Compile outside the lock: a slow compile must not serialize unrelated ones. Two threads
  // racing on the same source both compile; the second insert is a no-op.
  const bool ok = compileNow(src, name, arch, headers, ptx, log);
  if (!ok) *log = annotateProgramLines(src, *log);
  std::string diskError;
  const bool written = ok && !path.empty() && cache::writeAtomically(path, *ptx, &diskError);
  std::lock_guard<std::mutex> g(c.mu);
  ++c.stats.misses;
  c.stats.diskWrites += written;
  if (!diskError.empty()) c.diskError = diskError;
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

void nvrtcSetDiskCache(const std::string& dir) {
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  c.diskDir = dir;
  c.diskError.clear();
}

std::string nvrtcDiskCacheError() {
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  return c.diskError;
}

void nvrtcCacheClear() {
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  c.entries.clear();
  c.stats = {};
}

}  // namespace fccl::fusion::codegen
