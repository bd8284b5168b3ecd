// topo.cc - topology detection (hwloc, or sysconf + /sys) and thread binding.
// Binding uses pthread_{get,set}affinity_np in both builds: it needs no loaded hwloc topology
// kept alive for the process, and OS indices are what hwloc reports and taskset shows anyway.
#include "src/topo.h"
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include "src/base/debug.h"
#include "src/base/error.h"
#ifdef FCCL_HAVE_HWLOC
#include <hwloc.h>
#endif

namespace fccl {
namespace {

// Largest CPU number accepted by topoBindThread; far above any Linux NR_CPUS in use.
constexpr int kMaxCpus = 1 << 16;

// A heap cpu_set_t big enough for `ncpus` CPUs (glibc's fixed cpu_set_t stops at 1024).
class CpuSet {
 public:
  explicit CpuSet(int ncpus) : ncpus_(ncpus), set_(CPU_ALLOC(ncpus)), bytes_(CPU_ALLOC_SIZE(ncpus)) {
    if (set_ != nullptr) CPU_ZERO_S(bytes_, set_);
  }
  ~CpuSet() { CPU_FREE(set_); }
  CpuSet(const CpuSet&) = delete;
  CpuSet& operator=(const CpuSet&) = delete;

  bool ok() const { return set_ != nullptr; }
  cpu_set_t* get() { return set_; }
  size_t bytes() const { return bytes_; }
  void add(int cpu) { CPU_SET_S(cpu, bytes_, set_); }
  std::vector<int> list() const {
    std::vector<int> out;
    for (int c = 0; c < ncpus_; c++)
      if (CPU_ISSET_S(c, bytes_, set_)) out.push_back(c);
    return out;
  }

 private:
  int ncpus_;
  cpu_set_t* set_;
  size_t bytes_;
};

std::string plural(int n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// The calling thread's affinity. The kernel answers EINVAL when the mask is smaller than its
// own CPU count, so grow it until it fits.
fcclResult_t threadCpus(std::vector<int>* out) {
  for (int ncpus = 1024; ncpus <= kMaxCpus; ncpus *= 2) {
    CpuSet set(ncpus);
    if (!set.ok()) return setError(fcclSystemError, "topology: cannot allocate a CPU set of %d CPUs", ncpus);
    int rc = pthread_getaffinity_np(pthread_self(), set.bytes(), set.get());
    if (rc == 0) {
      *out = set.list();
      return fcclSuccess;
    }
    if (rc != EINVAL) return setError(fcclSystemError, "pthread_getaffinity_np failed: %s", strerror(rc));
  }
  return setError(fcclSystemError, "pthread_getaffinity_np failed: more than %d CPUs", kMaxCpus);
}

#ifdef FCCL_HAVE_HWLOC
// Fills the counts and NUMA PU lists from hwloc. Returns false (and the caller falls back to
// sysconf) if hwloc cannot load a topology, e.g. inside an unusual sandbox.
bool detectHwloc(Topology* t) {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) != 0) return false;
  if (hwloc_topology_load(topo) != 0) {
    hwloc_topology_destroy(topo);
    return false;
  }
  t->npackages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
  t->ncores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
  t->npus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  int nnuma = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < nnuma; i++) {
    hwloc_obj_t node = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, i);
    std::vector<int> cpus;
    if (node != nullptr && node->cpuset != nullptr) {
      unsigned id;
      hwloc_bitmap_foreach_begin(id, node->cpuset) cpus.push_back(static_cast<int>(id));
      hwloc_bitmap_foreach_end();
    }
    t->numaCpus.push_back(std::move(cpus));
  }
  if (t->numaCpus.empty()) {
    // No NUMA object reported: one node holding every PU.
    std::vector<int> all;
    for (int i = 0; i < t->npus; i++) {
      hwloc_obj_t pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, i);
      if (pu != nullptr) all.push_back(static_cast<int>(pu->os_index));
    }
    std::sort(all.begin(), all.end());
    t->numaCpus.push_back(std::move(all));
  }
  hwloc_topology_destroy(topo);
  t->fromHwloc = true;
  return t->npus > 0;
}
#endif

// Without hwloc: the online CPUs from /sys (sysconf's count if /sys is unreadable), one NUMA
// node, and SMT unknown, so cores == PUs.
void detectSysconf(Topology* t) {
  std::vector<int> cpus;
  if (FILE* f = fopen("/sys/devices/system/cpu/online", "r")) {
    char line[4096] = "";
    if (fgets(line, sizeof(line), f) != nullptr) {
      line[strcspn(line, "\n")] = '\0';
      if (!topoParseCpuList(line, &cpus)) cpus.clear();
    }
    fclose(f);
  }
  if (cpus.empty()) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < std::max(n, 1L); i++) cpus.push_back(static_cast<int>(i));
  }
  t->npackages = 1;
  t->npus = static_cast<int>(cpus.size());
  t->ncores = t->npus;
  t->numaCpus.assign(1, cpus);
  t->fromHwloc = false;
}

struct Detected {
  fcclResult_t result = fcclSuccess;
  std::string error;  // the sentence, re-recorded for every caller of a failed detection
  Topology topo;
};

const Detected& detected() {
  static Detected d;
  static std::once_flag once;
  std::call_once(once, [] {
    Topology& t = d.topo;
    bool done = false;
#ifdef FCCL_HAVE_HWLOC
    done = detectHwloc(&t);
    if (!done) {
      t = Topology();
      FCCL_INFO(kLogInit, "topology: hwloc could not load the topology; using sysconf");
    }
#endif
    if (!done) detectSysconf(&t);
    // Guarantee the documented invariants whatever the source reported.
    t.npus = std::max(t.npus, 1);
    t.ncores = std::clamp(t.ncores, 1, t.npus);
    t.npackages = std::max(t.npackages, 1);
    t.nnuma = static_cast<int>(t.numaCpus.size());
    if (threadCpus(&t.processCpus) != fcclSuccess) {
      d.result = fcclSystemError;
      d.error = lastError();
      return;
    }
    t.summary = "topology: " + plural(t.npackages, "package", "packages") + ", " +
                plural(t.nnuma, "NUMA node", "NUMA nodes") + ", " + plural(t.ncores, "core", "cores") + ", " +
                plural(t.npus, "PU", "PUs") + "; this process bound to " +
                (t.processCpus.size() == 1 ? "PU " : "PUs ") + topoFormatCpuList(t.processCpus) +
                (t.fromHwloc ? "" : " (no hwloc: SMT unknown)");
    FCCL_INFO(kLogInit, "%s", t.summary.c_str());
  });
  return d;
}

}  // namespace

fcclResult_t topoDetect(Topology* out) {
  if (out == nullptr) return setError(fcclInvalidArgument, "topoDetect: out is NULL");
  const Detected& d = detected();
  if (d.result != fcclSuccess) return setError(d.result, "%s", d.error.c_str());
  *out = d.topo;
  return fcclSuccess;
}

fcclResult_t topoGetThreadCpus(std::vector<int>* cpus) {
  if (cpus == nullptr) return setError(fcclInvalidArgument, "topoGetThreadCpus: cpus is NULL");
  return threadCpus(cpus);
}

fcclResult_t topoBindThread(const std::vector<int>& cpus) {
  if (cpus.empty()) return setError(fcclInvalidArgument, "topoBindThread: empty CPU set");
  int maxCpu = 0;
  for (int c : cpus) {
    if (c < 0 || c >= kMaxCpus)
      return setError(fcclInvalidArgument, "topoBindThread: CPU %d out of range [0, %d)", c, kMaxCpus);
    maxCpu = std::max(maxCpu, c);
  }
  CpuSet set(std::max(maxCpu + 1, 1024));
  if (!set.ok()) return setError(fcclSystemError, "topoBindThread: cannot allocate a CPU set");
  for (int c : cpus) set.add(c);
  int rc = pthread_setaffinity_np(pthread_self(), set.bytes(), set.get());
  if (rc != 0) {
    return setError(fcclSystemError, "topoBindThread: binding to PUs %s failed: %s",
                    topoFormatCpuList(cpus).c_str(), strerror(rc));
  }
  return fcclSuccess;
}

std::string topoFormatCpuList(std::vector<int> cpus) {
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) j++;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) {
      out += '-';  // two appends: `"-" + to_string()` trips GCC 12's false -Wrestrict at -O3
      out += std::to_string(cpus[j]);
    }
    i = j + 1;
  }
  return out;
}

bool topoParseCpuList(const char* text, std::vector<int>* cpus) {
  if (text == nullptr || cpus == nullptr || *text == '\0') return false;
  std::vector<int> out;
  const char* p = text;
  auto number = [&p](long* v) {
    if (*p < '0' || *p > '9') return false;
    char* end = nullptr;
    errno = 0;
    *v = strtol(p, &end, 10);
    if (errno != 0 || *v >= kMaxCpus) return false;
    p = end;
    return true;
  };
  while (true) {
    long lo = 0, hi = 0;
    if (!number(&lo)) return false;
    hi = lo;
    if (*p == '-') {
      p++;
      if (!number(&hi) || hi < lo) return false;
    }
    for (long c = lo; c <= hi; c++) out.push_back(static_cast<int>(c));
    if (*p == '\0') break;
    if (*p != ',') return false;
    p++;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  *cpus = std::move(out);
  return true;
}

}  // namespace fccl
