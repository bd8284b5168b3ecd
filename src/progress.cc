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
  // 50 us nap per round instead of a core (ranks often outnumber cores).
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
      timespec nap{0, 50000};
      nanosleep(&nap, nullptr);
    }
  }
}

}  // namespace fccl
