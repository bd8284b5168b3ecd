// progress.cc - see progress.h.
#include "src/progress.h"
#include <time.h>

namespace fccl {

void ProgressThread::start(std::vector<TransportComm*> transports,
                           std::function<void(fcclResult_t)> onError) {
  stop();
  if (transports.empty()) return;
  transports_ = std::move(transports);
  onError_ = std::move(onError);
  stop_.store(false);
  thread_ = std::thread([this] { loop(); });
}

void ProgressThread::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ProgressThread::loop() {
  // Idle rounds before napping: a busy transport is served at once, an idle one costs a
  // 50 us nap per round instead of a core (ranks often outnumber cores). Where the ranks drive
  // and kick their transports themselves (allowLongNaps), 1 ms naps: every wake-up preempts the
  // rank on its core. 2 hosts x 1 rank on a core each, 8 B allreduce over sockets: 10-11 us with
  // 50 us naps, 7.6-8.8 us so (Open MPI: 7.0).
  constexpr int kSpinRounds = 1000;
  int idle = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    bool any = false;
    for (TransportComm* t : transports_) {
      bool busy = false;
      fcclResult_t r = t->progress(&busy);
      if (r != fcclSuccess) {
        if (onError_) onError_(r);
        return;
      }
      any |= busy;
    }
    idle = any ? 0 : idle + 1;
    if (idle > kSpinRounds) {
      timespec nap{0, longNaps_.load(std::memory_order_relaxed) ? 1000000 : 50000};
      nanosleep(&nap, nullptr);
    }
  }
}

}  // namespace fccl
