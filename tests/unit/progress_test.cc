// progress_test.cc - the transports' helper thread (src/progress.h): it drives every transport
// that asked for progress until stopped, and a transport's failure reaches onError once and
// ends the thread. A fake transport stands in for the socket transport that will use it.
#include "src/progress.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace fccl {
namespace {

class CountingTransport : public TransportComm {
 public:
  explicit CountingTransport(int failAt = -1) : failAt_(failAt) {}
  fcclResult_t setup(ConnectBlob*) override { return fcclSuccess; }
  fcclResult_t connect(const ConnectBlob* const*, Connections*) override { return fcclSuccess; }
  bool needsProgress() const override { return true; }
  fcclResult_t progress(bool* busy) override {
    const int n = ++calls;
    *busy = n % 2 == 0;
    return n == failAt_ ? fcclRemoteError : fcclSuccess;
  }
  std::atomic<int> calls{0};

 private:
  const int failAt_;
};

bool eventually(const std::function<bool()>& cond) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(Progress, DrivesEveryTransportUntilStopped) {
  CountingTransport a, b;
  ProgressThread t;
  t.start({&a, &b}, [](fcclResult_t) { ADD_FAILURE() << "no transport failed"; });
  ASSERT_TRUE(t.running());
  EXPECT_TRUE(eventually([&] { return a.calls.load() > 100 && b.calls.load() > 100; }));
  t.stop();
  EXPECT_FALSE(t.running());
  const int after = a.calls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(a.calls.load(), after);  // stopped means no more calls
}

TEST(Progress, AFailureReachesOnErrorOnceAndEndsTheThread) {
  CountingTransport failing(50);
  std::atomic<int> errors{0};
  std::atomic<int> code{fcclSuccess};
  ProgressThread t;
  t.start({&failing}, [&](fcclResult_t r) {
    code = r;
    ++errors;
  });
  EXPECT_TRUE(eventually([&] { return errors.load() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(failing.calls.load(), 50);
  EXPECT_EQ(errors.load(), 1);
  EXPECT_EQ(code.load(), fcclRemoteError);
  t.stop();
}

TEST(Progress, NoTransportsNoThread) {
  ProgressThread t;
  t.start({}, nullptr);
  EXPECT_FALSE(t.running());
}

}  // namespace
}  // namespace fccl
