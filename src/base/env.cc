// env.cc - the table of every FCCL_* variable (name, default, doc) and the one snapshot
// read from it. Parsing is strict: a bad value prints a warning naming the variable and
// keeps the default. Warnings go straight to stderr because the log sink itself is
// configured from this snapshot.
#include "src/base/env.h"
#include <strings.h>
#include <unistd.h>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
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
  String,
  Int,
  Bool,
  Seconds
};

struct Var {
  const char* name;
  Kind kind;
  const char* def;
  const char* doc;
  void* field;
};

void warnBad(const char* name, const char* value, const char* def) {
  fprintf(stderr, "fccl WARN %s=\"%s\" is not valid; using the default %s\n", name, value, def);
}

// FCCL_JIT_CACHE's default, from the XDG base-directory variables (absolute values only, as the
// spec says); the JIT itself refuses a directory that is not private to this user.
std::string defaultJitCache() {
  const char* xdg = getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/fccl-jit";
  const char* home = getenv("HOME");
  if (home != nullptr && home[0] == '/') return std::string(home) + "/.cache/fccl-jit";
  return "/tmp/fccl-jit-" + std::to_string(geteuid());
}

Env readEnv(std::vector<std::string>* setLines) {
  Env e;
  const Var vars[] = {
      {"FCCL_DEBUG", Kind::String, "WARN", "log level: NONE, VERSION, WARN, INFO, TRACE", &e.debug},
      {"FCCL_DEBUG_SUBSYS", Kind::String, "",
       "subsystems to log: INIT,COLL,P2P,SHM,NET,BOOTSTRAP,TUNING,ENV,FUSION,ALL; ^ negates", &e.debugSubsys},
      {"FCCL_DEBUG_FILE", Kind::String, "", "write the log to this file (%h host, %p pid) instead of stderr",
       &e.debugFile},
      {"FCCL_TIMEOUT", Kind::Seconds, "300",
       "seconds any wait may last before it fails with an error naming the peer", &e.timeoutMs},
      {"FCCL_ALGO", Kind::String, "",
       "force the algorithm: ring or direct (default: the tuner picks by size)", &e.algo},
      {"FCCL_CHUNKSIZE", Kind::Int, "0", "bytes per pipeline chunk / FIFO slot (default: tuned)",
       &e.chunkSize},
      {"FCCL_DIRECT_MAX_BYTES", Kind::Int, "0",
       "largest per-rank message for the direct (latency) algorithm (default: tuned)", &e.directMaxBytes},
      {"FCCL_COMM_ID", Kind::String, "",
       "host:port of the bootstrap root; rank 0 hosts it (like NCCL_COMM_ID)", &e.commId},
      {"FCCL_SOCKET_IFNAME", Kind::String, "",
       "interfaces for bootstrap sockets: eth0 (prefix), ^docker (exclude), =lo (exact)", &e.socketIfname},
      {"FCCL_SOCKET_FAMILY", Kind::String, "", "AF_INET or AF_INET6 to restrict the bootstrap address family",
       &e.socketFamily},
      {"FCCL_COMM_SECRET", Kind::String, "",
       "shared secret of the bootstrap when FCCL_COMM_ID fixes the root", &e.commSecret},
      {"FCCL_SPIN_COUNT", Kind::Int, "2000", "busy polls before a wait starts yielding the core",
       &e.spinCount},
      {"FCCL_SET_AFFINITY", Kind::Bool, "0", "pin each rank's thread to the cores hwloc reports near it",
       &e.setAffinity},
      {"FCCL_SHM_PREFIX", Kind::String, "fccl", "name prefix of POSIX shared-memory segments", &e.shmDir},
      {"FCCL_OVERLAP", Kind::String, "auto",
       "auto|1|0: run a fused program's producer step on a helper thread while the collective "
       "consumes its chunks (auto: only when the host has a spare core per rank)",
       &e.overlap},
      {"FCCL_JIT", Kind::Bool, "1",
       "compile pointwise/fused program steps to native code with the system compiler", &e.jit},
      {"FCCL_JIT_CXX", Kind::String, "c++", "C++ compiler the JIT runs (a path or a name on PATH)",
       &e.jitCxx},
      {"FCCL_JIT_CACHE", Kind::String, "",
       "JIT cache directory (default $XDG_CACHE_HOME/fccl-jit, $HOME/.cache/fccl-jit, /tmp/fccl-jit-<uid>)",
       &e.jitCache},
      {"FCCL_FAULT_INJECT", Kind::String, "",
       "testing: faults to inject, kind:rank:op[:ms] comma list; kinds kill, delay, close (src/fault.h)",
       &e.faultInject},
  };
  for (const Var& v : vars) {
    const char* value = getenv(v.name);
    bool set = value != nullptr;
    const char* text = set ? value : v.def;
    bool ok = true;
    switch (v.kind) {
      case Kind::String:
        *static_cast<std::string*>(v.field) = text;
        break;
      case Kind::Int: {
        int64_t x = 0;
        ok = parseInt64(text, &x) && x >= 0;
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
    if (set && !ok) warnBad(v.name, value, v.def);
    if (set && ok) setLines->push_back(std::string(v.name) + "=" + value);
  }
  if (e.jitCache.empty()) e.jitCache = defaultJitCache();
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

void logSetVariablesOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    env();
    for (const std::string& line : setVariables()) FCCL_INFO(kLogEnv, "%s set by environment", line.c_str());
  });
}

}  // namespace fccl
