// cpu_jit.cc - CpuJitKernel (cpu_jit.h): the on-disk cache, the compiler run and the loader.
// Cache layout: <dir>/fccl-<key>.cc (the unit, kept for inspection) and fccl-<key>.so; files
// appear only by rename(2) of a finished temporary, so a reader never sees a partial file and
// concurrent compilers of one kernel (ranks as threads or as processes) all end with a good .so
// whichever rename lands last. The one piece of process-wide mutable state is the registry of
// loaded libraries below (see loadedLibraries()).
#include "fusion/jit/cpu_jit.h"

#include "fusion/cache/cache_files.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

extern char** environ;

namespace fccl::fusion::jit {

using cache::ownFile;
using cache::privateDir;
using cache::readSome;
using cache::uniqueSuffix;
using cache::writeAtomically;

// run() hands Bindings' arrays to the unit as they are: the layouts must agree.
static_assert(sizeof(JitTensor) == sizeof(TensorBinding) &&
              offsetof(JitTensor, data) == offsetof(TensorBinding, data) &&
              offsetof(JitTensor, base) == offsetof(TensorBinding, base) &&
              sizeof(long long) == sizeof(int64_t) && std::is_standard_layout_v<TensorBinding>);

namespace {

using Clock = std::chrono::steady_clock;

// The process-wide cache of loaded libraries, keyed by .so path. Handles stay open for the life
// of the process (kernels hold raw function pointers into them; nothing is ever dlclosed). An
// entry's mutex serializes compiling/loading one kernel, so threads of one process that compile
// the same program at once run the compiler once and the rest wait and share the handle, while
// different kernels still compile in parallel.
struct Loaded {
  std::mutex mu;
  void* handle = nullptr;
  JitRunFn run = nullptr;
  JitScalarsFn scalars = nullptr;
  JitRunRingFn runRing = nullptr;  // only in units emitted with a RingFusion
};
struct Libraries {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Loaded>> byPath;
};
Libraries& loadedLibraries() {
  static Libraries* libs = new Libraries();  // never destroyed: handles outlive static dtors
  return *libs;
}

std::string sysError(const std::string& what) { return what + ": " + std::strerror(errno); }

uint64_t fnv1a(const std::string& s, uint64_t h) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// What -march=native depends on: the CPU's signature and feature words. A cache directory shared
// between hosts (an NFS home) then never hands one CPU's code to another.
std::string cpuKey() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  // Appended number by number (not "x" + to_string: GCC 12's false -Wrestrict, PR 105651).
  std::string k = "x86";
  auto add = [&k](unsigned x) {
    k += ':';
    k += std::to_string(x);
  };
  if (__get_cpuid(0, &a, &b, &c, &d)) add(a), add(b), add(c), add(d);
  if (__get_cpuid(1, &a, &b, &c, &d)) add(a), add(c), add(d);
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) add(b), add(c), add(d);
  return k;
#else
  return "generic";
#endif
}

// Runs argv (no shell: paths from the environment are arguments, never parsed) with stdout and
// stderr into `logPath`; kills it after timeoutMs. true when it exited with status 0.
bool runCompiler(const std::vector<std::string>& args, const std::string& logPath, int timeoutMs,
                 std::string* error) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    *error = "cannot run the compiler '" + args[0] + "' (set FCCL_JIT_CXX): " + std::strerror(rc);
    unlink(logPath.c_str());
    return false;
  }
  // Poll rather than block: waitpid has no timeout. 2 ms granularity against ~1 s compiles.
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  int status = 0;
  for (;;) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      *error = sysError("waitpid on the compiler");
      unlink(logPath.c_str());
      return false;
    }
    if (Clock::now() > deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      *error = "the compiler '" + args[0] + "' ran longer than " + std::to_string(timeoutMs) + " ms; killed";
      unlink(logPath.c_str());
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const std::string log = readSome(logPath, 8192);
  unlink(logPath.c_str());
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  std::string cmd;
  for (const std::string& a : args) cmd += (cmd.empty() ? "" : " ") + a;
  *error = "compiler failed (" +
           (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                              : "signal " + std::to_string(WTERMSIG(status))) +
           "): " + cmd + "\n" + log;
  return false;
}

bool load(const std::string& so, Loaded* out, std::string* error) {
  void* h = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) return *error = std::string("dlopen failed: ") + dlerror(), false;
  auto run = reinterpret_cast<JitRunFn>(dlsym(h, kJitRunSymbol));
  auto scalars = reinterpret_cast<JitScalarsFn>(dlsym(h, kJitScalarsSymbol));
  if (!run || !scalars) {
    *error = "'" + so + "' lacks " + kJitRunSymbol + " / " + kJitScalarsSymbol;
    dlclose(h);
    return false;
  }
  out->handle = h;
  out->run = run;
  out->scalars = scalars;
  out->runRing = reinterpret_cast<JitRunRingFn>(dlsym(h, kJitRunRingSymbol));
  return true;
}

// A Bindings' arrays as the emitted entries take them (cpu_emit.h JitArgs).
JitArgs argsOf(const Bindings& b) {
  return JitArgs{reinterpret_cast<const JitTensor*>(b.tensors.data()),
                 static_cast<long long>(b.tensors.size()),
                 b.scalars.data(),
                 static_cast<long long>(b.scalars.size()),
                 b.rank,
                 b.nranks};
}

std::string hex(uint64_t x) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

}  // namespace

const std::vector<std::string>& CpuJitKernel::flags() {
  static const std::vector<std::string> f = {"-O3",   "-march=native", "-fno-math-errno", "-ffp-contract=off",
                                             "-fPIC", "-shared"};
  return f;
}

bool CpuJitKernel::compile(const ir::Program& p, const std::vector<int32_t>& stmts, std::string* error) {
  lowered::PointwiseForm f;
  if (!lowered::buildForm(p, stmts, {}, &f, error)) {
    *this = CpuJitKernel(std::move(opts_));
    return false;
  }
  return compile(f, error);
}

bool CpuJitKernel::compile(const lowered::PointwiseForm& f, std::string* error) {
  return compile(f, RingFusion{}, error);
}

bool CpuJitKernel::compile(const lowered::PointwiseForm& f, const RingFusion& ring, std::string* error) {
  const auto t0 = Clock::now();
  *this = CpuJitKernel(std::move(opts_));
  std::string scratch;
  if (!error) error = &scratch;
  EmittedUnit unit;
  if (!emitCpuUnit(f, ring, &unit, error)) return false;
  if (opts_.compiler.empty()) return *error = "no compiler configured (FCCL_JIT_CXX is empty)", false;
  if (!privateDir(opts_.cacheDir, error)) return false;

  // The key: everything that changes the bytes of the .so.
  std::string keyText = unit.source + '\0' + opts_.compiler + '\0' + cpuKey();
  for (const std::string& f : flags()) keyText += '\0' + f;
  const std::string stem = opts_.cacheDir + "/fccl-" + hex(fnv1a(keyText, 14695981039346656037ull)) +
                           hex(fnv1a(keyText, 0x84222325cbf29ce4ull));
  const std::string so = stem + ".so";

  std::shared_ptr<Loaded> lib;
  {
    Libraries& libs = loadedLibraries();
    std::lock_guard<std::mutex> g(libs.mu);
    std::shared_ptr<Loaded>& e = libs.byPath[so];
    if (!e) e = std::make_shared<Loaded>();
    lib = e;
  }
  std::lock_guard<std::mutex> g(lib->mu);
  bool hit = lib->handle != nullptr;
  if (!hit && ownFile(so)) {
    std::string ignored;  // a bad cached file is rebuilt below
    hit = load(so, lib.get(), &ignored);
  }
  if (!hit) {
    const std::string cc = stem + ".cc";
    if (!writeAtomically(cc, unit.source, error)) return false;
    const std::string tmp = so + uniqueSuffix();
    std::vector<std::string> args = {opts_.compiler};
    args.insert(args.end(), flags().begin(), flags().end());
    args.insert(args.end(), {"-o", tmp, cc});
    if (!runCompiler(args, stem + ".log" + uniqueSuffix(), opts_.timeoutMs, error)) {
      unlink(tmp.c_str());
      return false;
    }
    if (rename(tmp.c_str(), so.c_str()) != 0) {
      *error = sysError("cannot rename '" + tmp + "' to '" + so + "'");
      unlink(tmp.c_str());
      return false;
    }
    if (!load(so, lib.get(), error)) return false;
  }
  if (unit.hasRing && lib->runRing == nullptr)
    return *error = "'" + so + "' lacks " + kJitRunRingSymbol, false;
  run_ = lib->run;
  scalars_ = lib->scalars;
  runRing_ = unit.hasRing ? lib->runRing : nullptr;
  maxScalarVar_ = unit.maxScalarVar;
  hasScalarResults_ = unit.hasScalarResults;
  cacheHit_ = hit;
  library_ = so;
  seconds_ = std::chrono::duration<double>(Clock::now() - t0).count();
  return true;
}

void CpuJitKernel::run(int64_t begin, int64_t end, const Bindings& b) const {
  if (end <= begin) return;
  const JitArgs a = argsOf(b);
  run_(&a, begin, end);
}

void CpuJitKernel::runRing(int64_t begin, int64_t end, const Bindings& b, const void* own, void* forward,
                           int divisor) const {
  if (end <= begin) return;
  const JitArgs a = argsOf(b);
  runRing_(&a, begin, end, own, forward, divisor);
}

void CpuJitKernel::runScalars(const Bindings& b, std::vector<double>* scalars) const {
  if (!hasScalarResults_) return;
  // Resize first: `scalars` may be b.scalars itself (the runtime passes it), and the unit writes
  // results only after it has read every input.
  if (scalars->size() <= static_cast<size_t>(maxScalarVar_))
    scalars->resize(static_cast<size_t>(maxScalarVar_) + 1);
  const JitArgs a = argsOf(b);
  scalars_(&a, scalars->data());
}

}  // namespace fccl::fusion::jit
