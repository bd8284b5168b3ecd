// fault.cc - parsing FCCL_FAULT_INJECT once and firing its faults (see fault.h).
#include "src/fault.h"
#include <signal.h>
#include <unistd.h>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>
#include "src/base/debug.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "src/callboard.h"
#include "src/comm.h"

namespace fccl {

namespace {

enum class FaultKind {
  Kill,
  Delay,
  Close
};

struct Fault {
  FaultKind kind;
  int rank;
  uint64_t op;
  int64_t ms;
};

struct FaultSpec {
  std::vector<Fault> faults;
  std::string error;  // non-empty: the value does not parse
};

bool parseField(const std::string& text, int64_t* out) { return parseInt64(text.c_str(), out) && *out >= 0; }

FaultSpec parseSpec(const std::string& value) {
  FaultSpec spec;
  size_t start = 0;
  while (start <= value.size() && !value.empty()) {
    size_t comma = value.find(',', start);
    std::string entry = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? value.size() + 1 : comma + 1;
    std::vector<std::string> parts;
    for (size_t b = 0;;) {
      size_t c = entry.find(':', b);
      parts.push_back(entry.substr(b, c == std::string::npos ? std::string::npos : c - b));
      if (c == std::string::npos) break;
      b = c + 1;
    }
    Fault f{};
    int64_t rank = 0, op = 0, ms = 0;
    bool ok = parts.size() >= 3 && parts.size() <= 4 && parseField(parts[1], &rank) && rank < (1 << 24) &&
              parseField(parts[2], &op) && op >= 1 && (parts.size() < 4 || parseField(parts[3], &ms));
    if (ok && parts[0] == "kill") {
      f.kind = FaultKind::Kill;
    } else if (ok && parts[0] == "delay" && parts.size() == 4) {
      f.kind = FaultKind::Delay;
    } else if (ok && parts[0] == "close" && parts.size() == 3) {
      f.kind = FaultKind::Close;
    } else {
      spec.error =
          "FCCL_FAULT_INJECT entry \"" + entry +
          "\" is not kill:RANK:OP[:MS], delay:RANK:OP:MS or close:RANK:OP (OP counts collectives from 1)";
      spec.faults.clear();
      return spec;
    }
    f.rank = int(rank);
    f.op = uint64_t(op);
    f.ms = ms;
    spec.faults.push_back(f);
  }
  return spec;
}

const FaultSpec& spec() {
  static const FaultSpec s = parseSpec(env().faultInject);
  return s;
}

}  // namespace

fcclResult_t faultSpecCheck(bool* armed) {
  if (!spec().error.empty()) return setError(fcclInvalidArgument, "%s", spec().error.c_str());
  *armed = !spec().faults.empty();
  return fcclSuccess;
}

fcclResult_t faultPoint(fcclComm* comm, uint64_t seq, const char* opName) {
  for (const Fault& f : spec().faults) {
    if (f.rank != comm->rank || f.op != seq) continue;
    switch (f.kind) {
      case FaultKind::Kill:
        FCCL_WARN("FCCL_FAULT_INJECT: killing rank %d (pid %d) %s %s #%llu", comm->rank, int(getpid()),
                  f.ms > 0 ? "during" : "as it starts", opName, (unsigned long long)seq);
        if (f.ms == 0) raise(SIGKILL);
        std::thread([ms = f.ms] {
          std::this_thread::sleep_for(std::chrono::milliseconds(ms));
          raise(SIGKILL);
        }).detach();
        break;
      case FaultKind::Delay:
        FCCL_WARN("FCCL_FAULT_INJECT: delaying rank %d by %lld ms before %s #%llu", comm->rank,
                  (long long)f.ms, opName, (unsigned long long)seq);
        std::this_thread::sleep_for(std::chrono::milliseconds(f.ms));
        break;
      case FaultKind::Close: {
        fcclResult_t r =
            setError(fcclRemoteError, "rank %d closed its connections at %s #%llu (FCCL_FAULT_INJECT)",
                     comm->rank, opName, (unsigned long long)seq);
        boardSetState(comm->boards.empty() ? nullptr : comm->boards[comm->rank], BoardState::Closed,
                      comm->rank, lastError());
        return r;
      }
    }
  }
  return fcclSuccess;
}

}  // namespace fccl
