// env.cc - the table of every FCCL_* variable (name, default, doc, accepted values) and the one
// snapshot read from it. Parsing is strict for every kind, text included: a bad value prints a
// warning naming the variable, the value and what is accepted, and keeps the default. Warnings go straight to
// stderr because the log sink itself is configured from this snapshot. The launchers' variables
// (RANK, OMPI_COMM_WORLD_RANK, SLURM_PROCID, ...) are read here too, as raw text (LauncherEnv).
#include "src/base/env.h"
#include <strings.h>
#include <unistd.h>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <vector>
#include "src/base/debug.h"

namespace fccl {

bool parseInt64(const char* text, int64_t* out) {
  // Decimal only, optional '-', nothing else: "010" is ten, " 12" / "+12" / "0x10" are rejected.
  if (text == nullptr || *text == '\0') return false;
  if (!(isdigit(static_cast<unsigned char>(text[0])) ||
        (text[0] == '-' && isdigit(static_cast<unsigned char>(text[1])))))
    return false;
  errno = 0;
  char* end = nullptr;
  long long v = strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') return false;
  *out = v;
  return true;
}

bool parseBool(const char* text, bool* out) {
  if (text == nullptr) return false;
  static const char* kTrue[] = {"1", "true", "yes", "on"};
  static const char* kFalse[] = {"0", "false", "no", "off"};
  for (const char* t : kTrue)
    if (strcasecmp(text, t) == 0) return *out = true, true;
  for (const char* f : kFalse)
    if (strcasecmp(text, f) == 0) return *out = false, true;
  return false;
}

namespace {

enum class Kind {
  String,   // any text
  Int,      // a decimal integer >= 0
  Bool,     // parseBool's spellings
  Seconds,  // a decimal integer of seconds > 0, stored in ms
  Choice,   // one of `accepted` ("a|b|c"), case-insensitive; stored as spelled there
  Check     // text that `check` accepts (and may rewrite); `accepted` describes it
};

struct Var {
  const char* name;
  Kind kind;
  const char* def;
  const char* doc;
  void* field;
  const char* accepted = nullptr;  // Choice: the alternatives; Check: what is accepted, in words
  bool (*check)(std::string* value) = nullptr;
  const char* defMeaning = nullptr;  // what an empty default means, for warnings
  int64_t lo = 0, hi = INT64_MAX;    // Int: the accepted range
};

bool choose(const char* alternatives, std::string* value) {
  std::string list = alternatives;
  for (size_t start = 0; start <= list.size();) {
    size_t bar = list.find('|', start);
    if (bar == std::string::npos) bar = list.size();
    std::string alt = list.substr(start, bar - start);
    if (strcasecmp(alt.c_str(), value->c_str()) == 0) {
      *value = alt;
      return true;
    }
    start = bar + 1;
  }
  return false;
}

std::string listed(const char* alternatives) {
  std::string s = alternatives;
  for (size_t at = s.find('|'); at != std::string::npos; at = s.find('|', at)) s.replace(at, 1, ", ");
  return s;
}

// FCCL_DEBUG_SUBSYS: the log's own parser (debug.cc) decides; stored as given.
bool checkSubsys(std::string* value) {
  uint64_t mask = 0;
  return logParseSubsys(*value, &mask);
}

// FCCL_COMM_ID: host:port or [v6]:port, port 1..65535 (the host is resolved when used).
bool checkHostPort(std::string* value) {
  const std::string& t = *value;
  size_t colon = t.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= t.size()) return false;
  std::string host = t.substr(0, colon), port = t.substr(colon + 1);
  if (host[0] == '[' && (host.size() < 3 || host.back() != ']')) return false;
  if (host[0] != '[' && host.find(':') != std::string::npos) return false;  // a bare IPv6 address
  int64_t p = 0;
  return parseInt64(port.c_str(), &p) && p >= 1 && p <= 65535 && isdigit(static_cast<unsigned char>(port[0]));
}

// FCCL_SOCKET_IFNAME: [^][=]name[,name...], names of 1..15 characters without blanks.
bool checkIfnames(std::string* value) {
  std::string s = *value;
  if (!s.empty() && s[0] == '^') s.erase(0, 1);
  if (!s.empty() && s[0] == '=') s.erase(0, 1);
  if (s.empty()) return false;
  for (size_t start = 0; start <= s.size();) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    const size_t len = comma - start;
    if (len == 0 || len > 15) return false;
    for (size_t i = start; i < comma; ++i)
      if (isspace(static_cast<unsigned char>(s[i])) || s[i] == '/') return false;
    start = comma + 1;
  }
  return true;
}

// FCCL_SHM_PREFIX: a POSIX shm name part: 1..32 of [A-Za-z0-9._-].
bool checkShmPrefix(std::string* value) {
  if (value->empty() || value->size() > 32) return false;
  for (char c : *value)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

// FCCL_HOSTID: 1..63 printable characters without blanks.
bool checkHostId(std::string* value) {
  if (value->empty() || value->size() > 63) return false;
  for (char c : *value)
    if (!isgraph(static_cast<unsigned char>(c))) return false;
  return true;
}

bool checkAbsolutePath(std::string* value) { return !value->empty() && (*value)[0] == '/'; }
bool checkNonEmpty(std::string* value) { return !value->empty(); }

std::string describeDefault(const Var& v) {
  if (v.def[0] == '\0') return v.defMeaning ? v.defMeaning : "(unset)";
  return v.def;
}

std::string acceptedText(const Var& v) {
  switch (v.kind) {
    case Kind::Int:
      if (v.lo != 0 || v.hi != INT64_MAX)
        return "a decimal integer from " + std::to_string(v.lo) + " to " + std::to_string(v.hi);
      return "a decimal integer >= 0";
    case Kind::Seconds:
      return "a whole number of seconds > 0";
    case Kind::Bool:
      return "1, true, yes, on, 0, false, no, off";
    case Kind::Choice:
      return listed(v.accepted);
    default:
      return v.accepted ? v.accepted : "any text";
  }
}

}  // namespace

Env readEnvFrom(const std::function<const char*(const char*)>& get, std::vector<std::string>* setLines,
                std::vector<std::string>* warnings) {
  Env e;
  const Var vars[] = {
      {"FCCL_DEBUG", Kind::Choice, "WARN", "log level: NONE, VERSION, WARN, INFO, TRACE", &e.debug,
       "NONE|VERSION|WARN|INFO|TRACE"},
      {"FCCL_DEBUG_SUBSYS", Kind::Check, "",
       "subsystems to log: INIT,COLL,P2P,SHM,NET,BOOTSTRAP,TUNING,ENV,FUSION,ALL; ^ negates", &e.debugSubsys,
       "a comma list of INIT, COLL, P2P, SHM, NET, BOOTSTRAP, TUNING, ENV, FUSION, ALL, optionally after ^",
       checkSubsys, "all subsystems"},
      {"FCCL_DEBUG_FILE", Kind::Check, "", "write the log to this file (%h host, %p pid) instead of stderr",
       &e.debugFile, "a file name", checkNonEmpty, "stderr"},
      {"FCCL_TIMEOUT", Kind::Seconds, "300",
       "seconds any wait may last before it fails with an error naming the peer", &e.timeoutMs},
      {"FCCL_ALGO", Kind::Choice, "",
       "force the algorithm: ring, direct or hier (two-level AllReduce across hosts; default: the "
       "tuner's cost model picks)",
       &e.algo, "ring|direct|hier", nullptr, "(unset: the tuner picks by size)"},
      {"FCCL_CUMEM_ENABLE", Kind::Bool, "1",
       "share device FIFOs with the ranks of other processes as cuMem allocations passed as file "
       "descriptors (0: legacy CUDA IPC handles)",
       &e.cumemEnable},
      {"FCCL_PROTO", Kind::Choice, "",
       "protocol of collectives on device buffers: Simple (bandwidth: FIFO slots and step counters) or LL "
       "(low latency: a flag stored with every 8 bytes)",
       &e.proto, "Simple|LL", nullptr, "(unset: LL up to 64 KiB, Simple above)"},
      {"FCCL_CHUNKSIZE", Kind::Int, "0", "bytes per pipeline chunk / FIFO slot (default: tuned)",
       &e.chunkSize},
      {"FCCL_DIRECT_MAX_BYTES", Kind::Int, "0",
       "largest per-rank message for the direct (latency) algorithm (default: tuned)", &e.directMaxBytes},
      {"FCCL_MAX_NCHANNELS", Kind::Int, "0",
       "channels (CTAs) of a device communicator's kernels, at most 32 (default: an SM pair each, at most "
       "32)",
       &e.maxNchannels},
      {"FCCL_COMM_ID", Kind::Check, "",
       "host:port of the bootstrap root; rank 0 hosts it (like NCCL_COMM_ID)", &e.commId,
       "host:port or [IPv6 address]:port, port 1..65535", checkHostPort,
       "(unset: fcclGetUniqueId picks the root's address)"},
      {"FCCL_SOCKET_IFNAME", Kind::Check, "",
       "interfaces for bootstrap and socket-transport sockets: eth0 (prefix), ^docker (exclude), =lo "
       "(exact), "
       "^=lo (exclude exactly); unset: the root's subnet, else not loopback/docker/virbr first",
       &e.socketIfname, "[^][=]name[,name...], names of 1 to 15 characters", checkIfnames,
       "(unset: any interface)"},
      {"FCCL_SOCKET_FAMILY", Kind::Choice, "",
       "AF_INET or AF_INET6 to restrict the address family of every socket", &e.socketFamily,
       "AF_INET|AF_INET6", nullptr, "(unset: any family)"},
      {"FCCL_SOCKET_NTHREADS", Kind::Int, "1",
       "helper threads per communicator moving the socket transport's data (as NCCL_SOCKET_NTHREADS)",
       &e.socketNthreads, nullptr, nullptr, nullptr, 1, 16},
      {"FCCL_NSOCKS_PERTHREAD", Kind::Int, "2",
       "sockets per peer and direction each socket helper thread drives (as NCCL_NSOCKS_PERTHREAD); "
       "a message is cut into tasks of at least 64 KiB spread over them",
       &e.nsocksPerThread, nullptr, nullptr, nullptr, 1, 64},
      {"FCCL_HOSTID", Kind::Check, "",
       "this host's identity: ranks with the same one share memory (default: hostname and boot id)",
       &e.hostId, "1 to 63 printable characters without blanks", checkHostId,
       "(unset: hostname and boot id)"},
      {"FCCL_SHM_DISABLE", Kind::Bool, "0",
       "never use shared memory between ranks: ranks of one host talk through the socket transport",
       &e.shmDisable},
      {"FCCL_NET", Kind::Choice, "auto",
       "transport between hosts: socket (TCP), ucx (UCX, when built with libucx-dev; RDMA fabrics) or "
       "auto (ucx between hosts that both have an active RDMA port, else socket)",
       &e.net, "socket|ucx|auto"},
      {"FCCL_COMM_SECRET", Kind::String, "",
       "shared secret of the bootstrap when FCCL_COMM_ID fixes the root", &e.commSecret},
      {"FCCL_SPIN_COUNT", Kind::Int, "2000", "busy polls before a wait starts yielding the core",
       &e.spinCount},
      {"FCCL_SET_AFFINITY", Kind::Bool, "0", "pin each rank's thread to the cores hwloc reports near it",
       &e.setAffinity},
      {"FCCL_SHM_PREFIX", Kind::Check, "fccl", "name prefix of POSIX shared-memory segments", &e.shmDir,
       "1 to 32 of A-Z a-z 0-9 . _ -", checkShmPrefix},
      {"FCCL_OVERLAP", Kind::Choice, "auto",
       "auto|1|0: run a fused program's producer step on a helper thread while the collective "
       "consumes its chunks (auto: only when the host has a spare core per rank)",
       &e.overlap, "auto|1|0"},
      {"FCCL_JIT", Kind::Bool, "1",
       "compile pointwise/fused program steps to native code with the system compiler", &e.jit},
      {"FCCL_JIT_CXX", Kind::Check, "c++", "C++ compiler the JIT runs (a path or a name on PATH)", &e.jitCxx,
       "a compiler's path or name", checkNonEmpty},
      {"FCCL_JIT_CACHE", Kind::Check, "",
       "JIT cache directory (default $XDG_CACHE_HOME/fccl-jit, $HOME/.cache/fccl-jit, /tmp/fccl-jit-<uid>)",
       &e.jitCache, "an absolute path", checkAbsolutePath,
       "(unset: $XDG_CACHE_HOME/fccl-jit, $HOME/.cache/fccl-jit or /tmp/fccl-jit-<uid>)"},
      {"FCCL_CACHE_DIR", Kind::Check, "",
       "cache directory of the CUDA kernels NVRTC compiles (default $XDG_CACHE_HOME/fccl-cuda, "
       "$HOME/.cache/fccl-cuda, /tmp/fccl-cuda-<uid>)",
       &e.cacheDir, "an absolute path", checkAbsolutePath,
       "(unset: $XDG_CACHE_HOME/fccl-cuda, $HOME/.cache/fccl-cuda or /tmp/fccl-cuda-<uid>)"},
      {"FCCL_FAULT_INJECT", Kind::String, "",
       "testing: faults to inject, kind:rank:op[:ms] comma list; kinds kill, delay, close (src/fault.h)",
       &e.faultInject},
  };
  for (const Var& v : vars) {
    const char* value = get(v.name);
    // An empty text value is no value (`FCCL_ALGO= cmd` unsets it in the shell's way).
    if (value != nullptr && *value == '\0' && v.kind != Kind::Int && v.kind != Kind::Seconds &&
        v.kind != Kind::Bool)
      value = nullptr;
    bool set = value != nullptr;
    const char* text = set ? value : v.def;
    bool ok = true;
    switch (v.kind) {
      case Kind::String:
        *static_cast<std::string*>(v.field) = text;
        break;
      case Kind::Choice:
      case Kind::Check: {
        std::string s = text;
        // The empty default means "unset"; a value that is set must be valid.
        ok = !set || (v.kind == Kind::Choice ? choose(v.accepted, &s) : v.check(&s));
        *static_cast<std::string*>(v.field) = ok ? s : v.def;
        break;
      }
      case Kind::Int: {
        int64_t x = 0;
        ok = parseInt64(text, &x) && x >= v.lo && x <= v.hi;
        if (!ok) parseInt64(v.def, &x);
        *static_cast<int64_t*>(v.field) = x;
        break;
      }
      case Kind::Seconds: {
        int64_t x = 0;
        ok = parseInt64(text, &x) && x > 0 && x < (int64_t(1) << 40);
        if (!ok) parseInt64(v.def, &x);
        *static_cast<int64_t*>(v.field) = x * 1000;
        break;
      }
      case Kind::Bool: {
        bool b = false;
        ok = parseBool(text, &b);
        if (!ok) parseBool(v.def, &b);
        *static_cast<bool*>(v.field) = b;
        break;
      }
    }
    if (set && !ok)
      warnings->push_back(std::string(v.name) + "=\"" + value + "\" is not valid (accepted: " +
                          acceptedText(v) + "); using the default " + describeDefault(v));
    if (set && ok) setLines->push_back(std::string(v.name) + "=" + value);
  }
  // The caches' defaults, from the XDG base-directory variables (absolute values only, as the
  // spec says); their users refuse a directory that is not private to this user.
  auto cacheDefault = [&](const char* name) {
    const char* xdg = get("XDG_CACHE_HOME");
    const char* home = get("HOME");
    if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/" + name;
    if (home != nullptr && home[0] == '/') return std::string(home) + "/.cache/" + name;
    return "/tmp/" + std::string(name) + "-" + std::to_string(geteuid());
  };
  if (e.jitCache.empty()) e.jitCache = cacheDefault("fccl-jit");
  if (e.cacheDir.empty()) e.cacheDir = cacheDefault("fccl-cuda");
  return e;
}

namespace {

Env readEnv(std::vector<std::string>* setLines) {
  std::vector<std::string> warnings;
  Env e = readEnvFrom([](const char* name) -> const char* { return getenv(name); }, setLines, &warnings);
  for (const std::string& w : warnings) fprintf(stderr, "fccl WARN %s\n", w.c_str());
  return e;
}

std::vector<std::string>& setVariables() {
  static std::vector<std::string> lines;
  return lines;
}

}  // namespace

const Env& env() {
  static const Env snapshot = readEnv(&setVariables());
  return snapshot;
}

LauncherEnv readLauncherEnvFrom(const std::function<const char*(const char*)>& get) {
  auto text = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) {
      const char* v = get(n);
      if (v != nullptr && *v != '\0') return std::string(v);
    }
    return std::string();
  };
  LauncherEnv l;
  l.rank = text({"RANK"});
  l.worldSize = text({"WORLD_SIZE"});
  l.localRank = text({"LOCAL_RANK"});
  l.localWorldSize = text({"LOCAL_WORLD_SIZE"});
  l.masterAddr = text({"MASTER_ADDR"});
  l.masterPort = text({"MASTER_PORT"});
  l.agentStore = text({"TORCHELASTIC_USE_AGENT_STORE"});
  l.ompiRank = text({"OMPI_COMM_WORLD_RANK"});
  l.ompiSize = text({"OMPI_COMM_WORLD_SIZE"});
  l.ompiLocalRank = text({"OMPI_COMM_WORLD_LOCAL_RANK"});
  l.ompiLocalSize = text({"OMPI_COMM_WORLD_LOCAL_SIZE"});
  l.ompiJobId = text({"OMPI_MCA_ess_base_jobid"});
  l.slurmProcId = text({"SLURM_PROCID"});
  l.slurmNtasks = text({"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"});
  l.slurmLocalId = text({"SLURM_LOCALID"});
  l.slurmNodeId = text({"SLURM_NODEID"});
  l.slurmTasksPerNode = text({"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"});
  l.slurmNodeList = text({"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"});
  l.slurmJobId = text({"SLURM_JOB_ID", "SLURM_JOBID"});
  l.slurmStepId = text({"SLURM_STEP_ID", "SLURM_STEPID"});
  return l;
}

const LauncherEnv& launcherEnv() {
  static const LauncherEnv snapshot =
      readLauncherEnvFrom([](const char* name) -> const char* { return getenv(name); });
  return snapshot;
}

void logSetVariablesOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    env();
    logVersionOnce();
    for (const std::string& line : setVariables()) FCCL_INFO(kLogEnv, "%s set by environment", line.c_str());
  });
}

}  // namespace fccl
