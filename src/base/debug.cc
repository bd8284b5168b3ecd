// debug.cc - the log sink. Level and subsystem mask come from the env snapshot, resolved once;
// lines go to stderr or FCCL_DEBUG_FILE, written with one fwrite so lines of ranks don't interleave.
#include "src/base/debug.h"
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include "fccl.h"
#include "src/base/env.h"

namespace fccl {
namespace {

struct LogConfig {
  LogLevel level = LogLevel::Warn;
  uint64_t mask = kLogAll;
  FILE* out = stderr;
  char host[64] = "";
};

uint64_t subsysBit(const std::string& name) {
  static const struct {
    const char* name;
    uint64_t bit;
  } kNames[] = {{"INIT", kLogInit},     {"COLL", kLogColl}, {"P2P", kLogP2p},
                {"SHM", kLogShm},       {"NET", kLogNet},   {"BOOTSTRAP", kLogBootstrap},
                {"TUNING", kLogTuning}, {"ENV", kLogEnv},   {"FUSION", kLogFusion},
                {"ALL", kLogAll}};
  for (auto& n : kNames)
    if (strcasecmp(n.name, name.c_str()) == 0) return n.bit;
  return 0;
}

}  // namespace

bool logParseSubsys(const std::string& text, uint64_t* mask) {
  const bool negate = !text.empty() && text[0] == '^';
  const std::string list = text.substr(negate ? 1 : 0);
  uint64_t bits = 0;
  for (size_t pos = 0; pos <= list.size();) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    const uint64_t bit = subsysBit(list.substr(pos, comma - pos));
    if (bit == 0) return false;
    bits |= bit;
    pos = comma + 1;
  }
  *mask = negate ? ~bits : bits;
  return true;
}

namespace {

const LogConfig& config() {
  static const LogConfig cfg = [] {
    LogConfig c;
    const Env& e = env();
    // env.cc accepted only the listed spellings, stored as listed.
    const std::string& d = e.debug;
    if (d == "NONE")
      c.level = LogLevel::None;
    else if (d == "VERSION")
      c.level = LogLevel::Version;
    else if (d == "INFO")
      c.level = LogLevel::Info;
    else if (d == "TRACE")
      c.level = LogLevel::Trace;
    else
      c.level = LogLevel::Warn;
    if (!e.debugSubsys.empty()) logParseSubsys(e.debugSubsys, &c.mask);
    gethostname(c.host, sizeof(c.host) - 1);
    if (char* dot = strchr(c.host, '.')) *dot = '\0';
    if (!e.debugFile.empty()) {
      // %h -> host, %p -> pid, as NCCL_DEBUG_FILE.
      std::string path;
      for (size_t i = 0; i < e.debugFile.size(); ++i) {
        if (e.debugFile[i] == '%' && i + 1 < e.debugFile.size()) {
          char k = e.debugFile[++i];
          if (k == 'h')
            path += c.host;
          else if (k == 'p')
            path += std::to_string(getpid());
          else
            path += k;
        } else {
          path += e.debugFile[i];
        }
      }
      if (FILE* f = fopen(path.c_str(), "w"))
        c.out = f;
      else  // the sink itself: straight to stderr
        fprintf(stderr,
                "fccl WARN FCCL_DEBUG_FILE=\"%s\": cannot open %s for writing (%s); logging to stderr\n",
                e.debugFile.c_str(), path.c_str(), strerror(errno));
    }
    return c;
  }();
  return cfg;
}

thread_local int tlsRank = -1;

const char* levelName(LogLevel level) {
  switch (level) {
    case LogLevel::Version:
      return "VERSION";
    case LogLevel::Warn:
      return "WARN";
    case LogLevel::Info:
      return "INFO";
    case LogLevel::Trace:
      return "TRACE";
    default:
      return "";
  }
}

}  // namespace

LogLevel logLevel() { return config().level; }

bool logEnabled(LogLevel level, uint64_t subsys) {
  const LogConfig& c = config();
  return static_cast<int>(c.level) >= static_cast<int>(level) && (c.mask & subsys);
}

void logSetRank(int rank) { tlsRank = rank; }

void logVersionOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    // VERSION prints only this; INFO and TRACE print it among the rest. WARN, the default,
    // stays quiet (NCCL prints it at WARN too, but NCCL's default is to print nothing).
    const LogLevel l = logLevel();
    if (l == LogLevel::Version || l >= LogLevel::Info)
      logMessage(l == LogLevel::Version ? LogLevel::Version : LogLevel::Info, kLogInit, __FILE__, __LINE__,
                 "fccl version %d.%d.%d", FCCL_MAJOR, FCCL_MINOR, FCCL_PATCH);
  });
}

void logMessage(LogLevel level, uint64_t subsys, const char* file, int line, const char* fmt, ...) {
  if (!logEnabled(level, subsys)) return;
  const LogConfig& c = config();
  char buf[2048];
  int tid = static_cast<int>(syscall(SYS_gettid));
  int n = tlsRank >= 0
              ? snprintf(buf, sizeof(buf), "%s:%d:%d [%d] fccl %s ", c.host, getpid(), tid, tlsRank,
                         levelName(level))
              : snprintf(buf, sizeof(buf), "%s:%d:%d fccl %s ", c.host, getpid(), tid, levelName(level));
  if (level == LogLevel::Trace && n < (int)sizeof(buf))
    n += snprintf(buf + n, sizeof(buf) - n, "%s:%d ", file, line);
  va_list ap;
  va_start(ap, fmt);
  if (n < (int)sizeof(buf)) n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof(buf) - 1) n = sizeof(buf) - 2;
  buf[n++] = '\n';
  fwrite(buf, 1, n, c.out);
  fflush(c.out);
}

}  // namespace fccl
