// fcclrun.cc - a small launcher for users without MPI: fcclrun -n N [-H host:slots,...]
// [--rsh CMD] [--master-addr A] [--master-port P] [-x NAME[=VALUE]]... prog args...
// Starts N processes, filling the hosts in order (host 0's slots first), each with the
// torchrun-style variables fcclCommInitFromEnv reads (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and a random FCCL_COMM_SECRET shared by the job.
// Processes of this host are forked directly; the others run through `CMD host 'command'`
// (ssh by default) as ssh does it: one shell command line (cd to this directory, then env
// VAR=... prog args, every word quoted), carrying the FCCL_* variables of this environment
// and the -x ones, since ssh forwards no environment. Output is inherited. The first process
// to fail ends the job: the others get SIGTERM (SIGKILL 5 s later); the exit status is that
// process's (128 + signal when killed). Links nothing of fccl: it only starts processes.
#include <signal.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

extern char** environ;

namespace {

struct Host {
  std::string name;
  int slots = 1;
  bool local = false;
};

struct Proc {
  pid_t pid = -1;
  int rank = 0;
  std::string host;
};

const char* const kUsage =
    "usage: fcclrun -n N [-H host[:slots],...] [--rsh CMD] [--master-addr ADDR] [--master-port PORT]\n"
    "               [-x NAME[=VALUE]]... program [args...]\n"
    "  -n N             number of processes (ranks 0..N-1, filling the hosts in order)\n"
    "  -H LIST          hosts and their slots (default: this host, N slots); this host is\n"
    "                   forked directly, others run through the rsh command\n"
    "  --rsh CMD        remote shell: runs `CMD host 'command line'` (default: ssh)\n"
    "  --master-addr A  rank 0's address as the others reach it (default: the first host)\n"
    "  --master-port P  the bootstrap root's port (default: random in 20000..59999)\n"
    "  -x NAME[=VALUE]  also pass this variable to remote processes (FCCL_* always are)\n";

[[noreturn]] void usage(const char* why) {
  if (why) fprintf(stderr, "fcclrun: %s\n", why);
  fputs(kUsage, stderr);
  exit(2);
}

bool parseInt(const char* s, long lo, long hi, int* out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi || !(*s >= '0' && *s <= '9')) return false;
  *out = int(v);
  return true;
}

// One shell word: 'text', with ' as '\''.
std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::vector<std::string> splitWords(const std::string& s) {
  std::vector<std::string> words;
  std::string w;
  for (char c : s) {
    if (c == ' ' || c == '\t') {
      if (!w.empty()) words.push_back(w);
      w.clear();
    } else {
      w += c;
    }
  }
  if (!w.empty()) words.push_back(w);
  return words;
}

bool isThisHost(const std::string& name) {
  char self[HOST_NAME_MAX + 1] = {};
  gethostname(self, sizeof(self) - 1);
  return name == "localhost" || name == "127.0.0.1" || name == "::1" || name == self;
}

std::string randomHex(size_t bytes) {
  std::vector<unsigned char> b(bytes);
  for (size_t got = 0; got < bytes;) {
    ssize_t n = getrandom(b.data() + got, bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      perror("fcclrun: getrandom");
      exit(1);
    }
    got += size_t(n);
  }
  std::string s;
  char h[3];
  for (unsigned char c : b) snprintf(h, sizeof h, "%02x", c), s += h;
  return s;
}

volatile sig_atomic_t gStop = 0;
void onSignal(int sig) { gStop = sig; }

}  // namespace

int main(int argc, char** argv) {
  int n = 0, port = 0;
  std::string hostList, rsh = "ssh", masterAddr;
  std::vector<std::string> extra;  // -x NAME[=VALUE]
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "-n" || a == "-np") {
      if (!parseInt(value(), 1, 1 << 20, &n)) usage("-n takes a process count");
    } else if (a == "-H" || a == "--host") {
      hostList = value();
    } else if (a == "--rsh") {
      rsh = value();
    } else if (a == "--master-addr") {
      masterAddr = value();
    } else if (a == "--master-port") {
      if (!parseInt(value(), 1, 65535, &port)) usage("--master-port takes a port (1..65535)");
    } else if (a == "-x") {
      extra.push_back(value());
    } else if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return 0;
    } else if (a == "--") {
      ++i;
      break;
    } else {
      usage(("unknown option " + a).c_str());
    }
  }
  if (n == 0) usage("-n N is required");
  if (i >= argc) usage("no program given");

  std::vector<Host> hosts;
  if (hostList.empty()) {
    hosts.push_back({"localhost", n, true});
  } else {
    for (const std::string& item : splitWords([&] {
           std::string s = hostList;
           for (char& c : s)
             if (c == ',') c = ' ';
           return s;
         }())) {
      Host h;
      const size_t colon = item.rfind(':');
      h.name = item.substr(0, colon);
      // An IPv6 address has colons of its own: only a last part of digits is a slot count.
      if (colon != std::string::npos && !parseInt(item.c_str() + colon + 1, 1, 1 << 20, &h.slots)) {
        h.name = item;
        h.slots = 1;
      }
      if (h.name.empty()) usage(("bad host in -H: " + item).c_str());
      h.local = isThisHost(h.name);
      hosts.push_back(h);
    }
  }
  long slots = 0;
  for (const Host& h : hosts) slots += h.slots;
  if (slots < n) {
    fprintf(stderr, "fcclrun: -n %d needs %d slots; -H gives %ld\n", n, n, slots);
    return 2;
  }
  bool anyRemote = false;
  for (const Host& h : hosts) anyRemote |= !h.local;
  if (masterAddr.empty()) {
    masterAddr = hosts[0].name;
    // This host first, others remote: they must reach it by a name they can resolve.
    if (hosts[0].local && anyRemote) {
      char self[HOST_NAME_MAX + 1] = {};
      gethostname(self, sizeof(self) - 1);
      masterAddr = self;
    } else if (hosts[0].local) {
      masterAddr = "127.0.0.1";
    }
  }
  if (port == 0) {
    unsigned r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r) r = unsigned(getpid());
    port = 20000 + int(r % 40000);
  }
  const char* secretEnv = getenv("FCCL_COMM_SECRET");
  const std::string secret = secretEnv && *secretEnv ? secretEnv : randomHex(16);
  char cwd[PATH_MAX] = {};
  if (getcwd(cwd, sizeof cwd) == nullptr) strcpy(cwd, "/");

  // What every process gets beyond its own rank.
  std::vector<std::pair<std::string, std::string>> common = {
      {"WORLD_SIZE", std::to_string(n)},
      {"MASTER_ADDR", masterAddr},
      {"MASTER_PORT", std::to_string(port)},
      {"FCCL_COMM_SECRET", secret},
  };
  // Forwarded to remote processes: FCCL_* here, and -x NAME (from here) or NAME=VALUE.
  std::vector<std::pair<std::string, std::string>> forwarded;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (kv.compare(0, 5, "FCCL_") == 0 && eq != std::string::npos &&
        kv.compare(0, eq, "FCCL_COMM_SECRET") != 0)
      forwarded.push_back({kv.substr(0, eq), kv.substr(eq + 1)});
  }
  for (const std::string& x : extra) {
    const size_t eq = x.find('=');
    if (eq != std::string::npos) {
      forwarded.push_back({x.substr(0, eq), x.substr(eq + 1)});
    } else if (const char* v = getenv(x.c_str())) {
      forwarded.push_back({x, v});
    }
  }

  struct sigaction sa = {};
  sa.sa_handler = onSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::vector<Proc> procs;
  int rank = 0;
  for (size_t hi = 0; hi < hosts.size() && rank < n; ++hi) {
    const Host& h = hosts[hi];
    const int here = std::min(h.slots, n - rank);
    for (int local = 0; local < here; ++local, ++rank) {
      std::vector<std::pair<std::string, std::string>> vars = common;
      vars.push_back({"RANK", std::to_string(rank)});
      vars.push_back({"LOCAL_RANK", std::to_string(local)});
      vars.push_back({"LOCAL_WORLD_SIZE", std::to_string(here)});
      vars.push_back({"GROUP_RANK", std::to_string(hi)});
      std::vector<std::string> args;
      if (h.local) {
        for (int k = i; k < argc; ++k) args.push_back(argv[k]);
      } else {
        // ssh's way: one command line for the remote shell.
        std::string line = "cd " + quote(cwd) + " 2>/dev/null; exec env";
        for (const auto& kv : forwarded) line += " " + quote(kv.first + "=" + kv.second);
        for (const auto& kv : vars) line += " " + quote(kv.first + "=" + kv.second);
        for (int k = i; k < argc; ++k) line += " " + quote(argv[k]);
        args = splitWords(rsh);
        if (args.empty()) usage("--rsh is empty");
        args.push_back(h.name);
        args.push_back(line);
      }
      const pid_t pid = fork();
      if (pid < 0) {
        perror("fcclrun: fork");
        gStop = SIGTERM;
        break;
      }
      if (pid == 0) {
        if (h.local)
          for (const auto& kv : vars) setenv(kv.first.c_str(), kv.second.c_str(), 1);
        std::vector<char*> cargv;
        for (std::string& a : args) cargv.push_back(&a[0]);
        cargv.push_back(nullptr);
        execvp(cargv[0], cargv.data());
        fprintf(stderr, "fcclrun: cannot run %s: %s\n", cargv[0], strerror(errno));
        _exit(127);
      }
      procs.push_back({pid, rank, h.name});
    }
    if (gStop) break;
  }

  // Wait for all; the first failure (or a signal to fcclrun) ends the others.
  int status = 0, left = int(procs.size());
  bool stopping = gStop != 0;
  time_t killAt = 0;
  auto stopAll = [&](int sig) {
    for (const Proc& p : procs)
      if (p.pid > 0) kill(p.pid, sig);
  };
  if (stopping) {
    stopAll(SIGTERM);
    killAt = time(nullptr) + 5;
    status = 128 + (gStop ? int(gStop) : SIGTERM);
  }
  while (left > 0) {
    int st = 0;
    const pid_t pid = waitpid(-1, &st, stopping ? WNOHANG : 0);
    if (pid < 0 && errno != EINTR) break;
    if (pid <= 0) {
      if (!stopping && gStop) {
        stopping = true;
        status = 128 + int(gStop);
        stopAll(SIGTERM);
        killAt = time(nullptr) + 5;
      }
      if (stopping && time(nullptr) >= killAt) stopAll(SIGKILL);
      if (stopping) usleep(20000);
      continue;
    }
    --left;
    for (Proc& p : procs) {
      if (p.pid != pid) continue;
      p.pid = -1;
      const int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      if (code != 0 && !stopping) {
        if (WIFSIGNALED(st))
          fprintf(stderr, "fcclrun: rank %d on %s was killed by signal %d; stopping the others\n", p.rank,
                  p.host.c_str(), WTERMSIG(st));
        else
          fprintf(stderr, "fcclrun: rank %d on %s exited with status %d; stopping the others\n", p.rank,
                  p.host.c_str(), code);
        status = code;
        stopping = true;
        stopAll(SIGTERM);
        killAt = time(nullptr) + 5;
      }
    }
  }
  return status;
}
