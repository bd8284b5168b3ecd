// progress.h - the helper thread of transports that move data outside the ranks' own calls
// (TransportComm::needsProgress, e.g. sockets): it calls progress() of each such transport in
// turn, spinning while there is work and napping when there is none, until stopped. A failure
// is handed to onError once and the thread ends (the communicator's waits then see the abort).
#pragma once
#include <atomic>
#include <functional>
#include <thread>
#include <vector>
#include "transports/transport.h"

namespace fccl {

class ProgressThread {
 public:
  ~ProgressThread() { stop(); }
  // Starts the thread for `transports` (none: no thread). onError runs on the thread.
  void start(std::vector<TransportComm*> transports, std::function<void(fcclResult_t)> onError);
  void stop();  // idempotent; joins the thread
  bool running() const { return thread_.joinable(); }
  // The ranks drive their transports in their waits and kick them at the end of each call
  // (src/transport_setup.h TransportDriver), so an idle thread may nap long: set by init.
  void allowLongNaps(bool allow) { longNaps_.store(allow, std::memory_order_relaxed); }

 private:
  void loop();
  std::vector<TransportComm*> transports_;
  std::function<void(fcclResult_t)> onError_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> longNaps_{false};
  std::thread thread_;
};

}  // namespace fccl
