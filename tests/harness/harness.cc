// harness.cc - rank runners (threads, forked processes) and per-rank failure recording.
// Threads: one shared, reference-counted state; the caller waits on a condition variable
// with a deadline and detaches threads that miss it. Processes: one pipe per child carries
// length-prefixed failure messages as they happen (so a rank that fails and then hangs still
// reports why); the parent polls the pipes and reaps children until the deadline, then
// SIGKILLs the rest. Children leave with _exit so no GoogleTest or static destructor runs.
#include "harness.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

namespace fccltest {

namespace {
constexpr int kMaxMessagesPerRank = 10;
constexpr size_t kMaxMessageBytes = 2000;  // < PIPE_BUF with the header: one atomic write
}  // namespace

struct RankContext {
  int rank = -1;
  std::mutex mu;                             // a rank may record from several threads
  std::vector<std::string>* sink = nullptr;  // threads mode
  int fd = -1;                               // processes mode: write end of the pipe
  int count = 0;
  std::string note;  // threads mode: last noteProgress
};

namespace {
thread_local RankContext* tlsContext = nullptr;
}

RankContext* currentContext() { return tlsContext; }
void setCurrentContext(RankContext* ctx) { tlsContext = ctx; }

const char* modeName(Mode mode) { return mode == Mode::Threads ? "threads" : "processes"; }

std::string strf(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

std::string describeResult(fcclResult_t res, fcclComm_t comm) {
  const char* last = fcclGetLastError(comm);
  return strf("%s (%d): %s", fcclGetErrorString(res), (int)res, last ? last : "(null)");
}

int currentRank() { return tlsContext ? tlsContext->rank : -1; }

bool rankFailed() {
  if (!tlsContext) return false;
  std::lock_guard<std::mutex> lock(tlsContext->mu);
  return tlsContext->count > 0;
}

static void writeAll(int fd, const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t n = write(fd, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    bytes -= (size_t)n;
  }
}

void recordFailure(const char* file, int line, const std::string& message) {
  const char* base = strrchr(file, '/');
  std::string text = strf("%s:%d: ", base ? base + 1 : file, line) + message;
  if (text.size() > kMaxMessageBytes) text.resize(kMaxMessageBytes);
  RankContext* ctx = tlsContext;
  if (!ctx) {  // outside any rank: print, so nothing is lost
    fprintf(stderr, "fccltest (no rank): %s\n", text.c_str());
    return;
  }
  std::lock_guard<std::mutex> lock(ctx->mu);
  int n = ++ctx->count;
  if (n > kMaxMessagesPerRank) return;
  if (n == kMaxMessagesPerRank) text = "(further failures of this rank not shown)";
  if (ctx->sink) {
    ctx->sink->push_back(text);
  } else if (ctx->fd >= 0) {
    uint32_t len = (uint32_t)text.size();
    std::string frame(reinterpret_cast<const char*>(&len), sizeof(len));
    frame += text;
    writeAll(ctx->fd, frame.data(), frame.size());
  }
}

constexpr uint32_t kNoteFlag = 0x80000000u;  // frame length bit: a progress note

void noteProgress(const std::string& what) {
  RankContext* ctx = tlsContext;
  if (!ctx) return;
  std::lock_guard<std::mutex> lock(ctx->mu);
  if (ctx->sink) {
    ctx->note = what;
  } else if (ctx->fd >= 0) {
    std::string text = what.substr(0, kMaxMessageBytes);
    uint32_t len = (uint32_t)text.size() | kNoteFlag;
    std::string frame(reinterpret_cast<const char*>(&len), sizeof(len));
    frame += text;
    writeAll(ctx->fd, frame.data(), frame.size());
  }
}

// ---------------------------------------------------------------------------------------
// Threads
namespace {

struct ThreadsState {
  std::mutex mu;
  std::condition_variable cv;
  int remaining = 0;
  std::vector<std::unique_ptr<RankContext>> contexts;
  std::vector<std::vector<std::string>> messages;
  std::vector<bool> done;
};

// Rank threads detached after missing their deadline may still run when the test program
// exits, while static destructors free what they use (GoogleTest's test parameters, say).
// At exit each gets a bounded grace to finish; its done flag, set under its state's mutex,
// then orders everything it did before the teardown (ThreadSanitizer reported the race of
// HarnessModes.HangBecomesBoundedFailureNamingRanks/threads without this). Registered with
// atexit at the first detach, after GoogleTest's singletons exist, so it runs before they go.
constexpr int kLingerGraceSec = 10;
std::mutex lingeringMu;
std::vector<std::shared_ptr<ThreadsState>>* lingering = nullptr;  // never freed: used at exit

void waitForLingeringThreads() {
  std::lock_guard<std::mutex> guard(lingeringMu);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kLingerGraceSec);
  for (const auto& st : *lingering) {
    std::unique_lock<std::mutex> lock(st->mu);
    st->cv.wait_until(lock, deadline, [&] { return st->remaining == 0; });
  }
}

void keepUntilExit(std::shared_ptr<ThreadsState> st) {
  std::lock_guard<std::mutex> guard(lingeringMu);
  if (lingering == nullptr) {
    lingering = new std::vector<std::shared_ptr<ThreadsState>>();
    atexit(waitForLingeringThreads);
  }
  lingering->push_back(std::move(st));
}

void runBodyCatching(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    recordFailure(__FILE__, __LINE__, std::string("exception: ") + e.what());
  } catch (...) {
    recordFailure(__FILE__, __LINE__, "unknown exception");
  }
}

RunResult runThreads(int nranks, const RawBody& body, const fcclUniqueId& id, int timeoutSec) {
  auto st = std::make_shared<ThreadsState>();
  st->remaining = nranks;
  st->messages.resize(nranks);
  st->done.assign(nranks, false);
  for (int r = 0; r < nranks; ++r) {
    st->contexts.push_back(std::make_unique<RankContext>());
    st->contexts[r]->rank = r;
    st->contexts[r]->sink = &st->messages[r];
  }
  std::vector<std::thread> threads;
  for (int r = 0; r < nranks; ++r) {
    threads.emplace_back([st, r, nranks, body, id]() {
      setCurrentContext(st->contexts[r].get());
      runBodyCatching([&] { body(id, r, nranks); });
      setCurrentContext(nullptr);
      std::lock_guard<std::mutex> lock(st->mu);
      st->done[r] = true;
      --st->remaining;
      st->cv.notify_all();
    });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSec);
  RunResult result;
  std::unique_lock<std::mutex> lock(st->mu);
  bool finished = st->cv.wait_until(lock, deadline, [&] { return st->remaining == 0; });
  std::string hung;
  for (int r = 0; r < nranks; ++r) {
    if (!st->done[r]) hung += strf(" %d", r);
  }
  // Snapshot the messages under each rank's lock (hung ranks may still be writing).
  lock.unlock();
  for (int r = 0; r < nranks; ++r) {
    std::lock_guard<std::mutex> l(st->contexts[r]->mu);
    for (const std::string& m : st->messages[r]) result.report += strf("rank %d: ", r) + m + "\n";
    if (st->contexts[r]->count > 0) result.ok = false;
    if (!st->done[r] && !st->contexts[r]->note.empty())
      result.report +=
          strf("rank %d: did not finish; last progress note: ", r) + st->contexts[r]->note + "\n";
  }
  if (!finished) {
    result.ok = false;
    result.report += strf("timeout after %d s (threads): ranks did not finish:", timeoutSec) + hung + "\n";
  }
  lock.lock();
  bool detached = false;
  for (int r = 0; r < nranks; ++r) {
    if (st->done[r]) {
      threads[r].join();
    } else {
      threads[r].detach();  // keeps st alive through its captured shared_ptr
      detached = true;
    }
  }
  lock.unlock();
  if (detached) keepUntilExit(st);
  return result;
}

// ---------------------------------------------------------------------------------------
// Processes

struct Child {
  pid_t pid = -1;
  int fd = -1;  // read end; -1 once EOF
  bool exited = false;
  int status = 0;
  std::string buffer;  // partial frames
  std::vector<std::string> messages;
  std::string note;  // last progress note
};

void drainFrames(Child& c) {
  while (c.buffer.size() >= sizeof(uint32_t)) {
    uint32_t word;
    memcpy(&word, c.buffer.data(), sizeof(word));
    uint32_t len = word & ~kNoteFlag;
    if (c.buffer.size() < sizeof(word) + len) break;
    if (word & kNoteFlag)
      c.note = c.buffer.substr(sizeof(word), len);
    else
      c.messages.push_back(c.buffer.substr(sizeof(word), len));
    c.buffer.erase(0, sizeof(word) + len);
  }
}

// Forks every rank first and only then creates the unique id (whose bootstrap root thread
// allocates as ranks connect), handing it to each child over a pipe: a child forked while
// another parent thread holds a lock (the sanitizer allocator's, which has no fork handler)
// would deadlock, so the parent forks while it is still single-threaded.
RunResult runProcesses(int nranks, const RawBody& body, int timeoutSec) {
  std::vector<Child> children(nranks);
  std::vector<int> idFds(nranks, -1);  // write ends: the unique id goes to each child
  auto killAll = [&](int upto) {
    for (int k = 0; k < upto; ++k) kill(children[k].pid, SIGKILL);
    for (int k = 0; k < upto; ++k) waitpid(children[k].pid, nullptr, 0);
    for (int k = 0; k < upto; ++k) close(idFds[k]), close(children[k].fd);
  };
  fflush(stdout);
  fflush(stderr);
  for (int r = 0; r < nranks; ++r) {
    int fds[2], idp[2];
    if (pipe(fds) != 0 || pipe(idp) != 0) {
      RunResult res{false, strf("pipe failed: %s\n", strerror(errno))};
      killAll(r);
      return res;
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      close(idp[1]);
      for (int k = 0; k < r; ++k) close(children[k].fd), close(idFds[k]);
      signal(SIGPIPE, SIG_IGN);
      fcclUniqueId id;
      size_t got = 0;
      while (got < sizeof(id)) {
        ssize_t n = read(idp[0], reinterpret_cast<char*>(&id) + got, sizeof(id) - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) _exit(1);  // the parent failed before sending the id (it reports why)
        got += (size_t)n;
      }
      close(idp[0]);
      RankContext ctx;
      ctx.rank = r;
      ctx.fd = fds[1];
      setCurrentContext(&ctx);
      runBodyCatching([&] { body(id, r, nranks); });
      setCurrentContext(nullptr);
      fflush(stdout);
      fflush(stderr);
      _exit(ctx.count > 0 ? 1 : 0);
    }
    close(fds[1]);
    close(idp[0]);
    if (pid < 0) {
      close(fds[0]);
      close(idp[1]);
      RunResult res{false, strf("fork failed: %s\n", strerror(errno))};
      killAll(r);
      return res;
    }
    children[r].pid = pid;
    children[r].fd = fds[0];
    idFds[r] = idp[1];
  }
  fcclUniqueId id;
  memset(&id, 0, sizeof(id));
  fcclResult_t idRes = fcclGetUniqueId(&id);
  if (idRes != fcclSuccess) {
    RunResult res{false, "fcclGetUniqueId -> " + describeResult(idRes, nullptr) + "\n"};
    killAll(nranks);
    return res;
  }
  for (int r = 0; r < nranks; ++r) {
    // A short write to a fresh pipe cannot be partial; a failure leaves the child to exit.
    if (write(idFds[r], &id, sizeof(id)) != (ssize_t)sizeof(id)) kill(children[r].pid, SIGKILL);
    close(idFds[r]);
  }

  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSec);
  bool timedOut = false;
  for (;;) {
    bool allDone = true;
    std::vector<pollfd> pfds;
    std::vector<int> who;
    for (int r = 0; r < nranks; ++r) {
      Child& c = children[r];
      if (!c.exited) {
        int status;
        if (waitpid(c.pid, &status, WNOHANG) == c.pid) {
          c.exited = true;
          c.status = status;
        }
      }
      if (c.fd >= 0) {
        pfds.push_back({c.fd, POLLIN, 0});
        who.push_back(r);
      }
      if (!c.exited || c.fd >= 0) allDone = false;
    }
    if (allDone) break;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      timedOut = true;
      break;
    }
    int waitMs = (int)std::min<long long>(
        50, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1);
    if (pfds.empty()) {
      usleep(waitMs * 1000);
      continue;
    }
    int n = poll(pfds.data(), pfds.size(), waitMs);
    if (n <= 0) continue;
    for (size_t k = 0; k < pfds.size(); ++k) {
      if (!(pfds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Child& c = children[who[k]];
      char buf[4096];
      ssize_t got = read(c.fd, buf, sizeof(buf));
      if (got > 0) {
        c.buffer.append(buf, (size_t)got);
        drainFrames(c);
      } else if (got == 0 || errno != EINTR) {
        close(c.fd);
        c.fd = -1;
      }
    }
  }

  RunResult result;
  std::string hung;
  for (int r = 0; r < nranks; ++r) {
    Child& c = children[r];
    if (!c.exited) {
      hung += strf(" %d", r);
      kill(c.pid, SIGKILL);
      waitpid(c.pid, &c.status, 0);
    }
    if (c.fd >= 0) {  // whatever was already written before the kill
      char buf[4096];
      ssize_t got;
      while ((got = read(c.fd, buf, sizeof(buf))) > 0) c.buffer.append(buf, (size_t)got);
      drainFrames(c);
      close(c.fd);
    }
    for (const std::string& m : c.messages) result.report += strf("rank %d: ", r) + m + "\n";
    if (!c.messages.empty()) result.ok = false;
    bool died = !c.exited || WIFSIGNALED(c.status);  // a failing rank exits 1: its messages say why
    if (died && !c.note.empty())
      result.report += strf("rank %d: %s; last progress note: ", r, c.exited ? "killed" : "did not finish") +
                       c.note + "\n";
    if (!c.exited) continue;
    if (WIFSIGNALED(c.status)) {
      result.ok = false;
      result.report +=
          strf("rank %d: killed by signal %d (%s)\n", r, WTERMSIG(c.status), strsignal(WTERMSIG(c.status)));
    } else if (WIFEXITED(c.status) && WEXITSTATUS(c.status) != 0) {
      result.ok = false;
      if (c.messages.empty())
        result.report += strf("rank %d: exited with code %d\n", r, WEXITSTATUS(c.status));
    }
  }
  if (timedOut) {
    result.ok = false;
    result.report +=
        strf("timeout after %d s (processes): ranks did not finish (killed):", timeoutSec) + hung + "\n";
  }
  return result;
}

}  // namespace

RunResult runRanksRaw(int nranks, Mode mode, RawBody body, int timeoutSec) {
  if (mode == Mode::Processes) return runProcesses(nranks, body, timeoutSec);
  fcclUniqueId id;
  memset(&id, 0, sizeof(id));
  fcclResult_t res = fcclGetUniqueId(&id);
  if (res != fcclSuccess) {
    return RunResult{false, "fcclGetUniqueId -> " + describeResult(res, nullptr) + "\n"};
  }
  return runThreads(nranks, body, id, timeoutSec);
}

fcclComm_t initRankComm(const fcclUniqueId& id, int rank, int nranks, int timeoutMs, const char* commName) {
  fcclConfig_t config = FCCL_CONFIG_INITIALIZER;
  config.timeoutMs = timeoutMs;
  config.commName = commName;
  fcclComm_t comm = nullptr;
  fcclResult_t r = fcclCommInitRankConfig(&comm, nranks, id, rank, &config);
  if (r != fcclSuccess) {
    recordFailure(__FILE__, __LINE__, "fcclCommInitRankConfig -> " + describeResult(r, nullptr));
    return nullptr;
  }
  return comm;
}

RunResult runRanks(int nranks, Mode mode, Body body, int timeoutSec, int commTimeoutMs) {
  if (commTimeoutMs <= 0) commTimeoutMs = timeoutSec * 750;
  return runRanksRaw(
      nranks, mode,
      [body, commTimeoutMs](const fcclUniqueId& id, int rank, int n) {
        fcclComm_t comm = initRankComm(id, rank, n, commTimeoutMs);
        if (comm == nullptr) return;
        body(comm, rank, n);
        fcclResult_t r = fcclCommDestroy(comm);
        if (r != fcclSuccess) {
          recordFailure(__FILE__, __LINE__, "fcclCommDestroy -> " + describeResult(r, nullptr));
        }
      },
      timeoutSec);
}

}  // namespace fccltest
