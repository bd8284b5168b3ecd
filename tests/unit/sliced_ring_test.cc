// sliced_ring_test.cc - the internal collectives of fused programs, on ranks as threads:
// reduce-scatter onto the IR's sliced partition with a reduced hook that rewrites each chunk,
// the all-gather back, and allreduce with a rewriting hook (what the all-gather distributes is
// the hook's output). Exact integer-valued floats, so every result is checked exactly.
#include <gtest/gtest.h>
#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>
#include "collectives/hooks.h"
#include "fccl.h"
#include "src/comm.h"
#include "src/enqueue.h"

namespace fccl {
namespace {

struct Slice {
  size_t begin, end;
};
Slice sliceOf(size_t count, int r, int n) {
  size_t s = (count + n - 1) / n;
  return {std::min(count, s * r), std::min(count, s * (r + 1))};
}

float input(int rank, size_t i) { return float((rank + 1) * 3 + i % 17); }
float sumOver(int n, size_t i) {
  float s = 0;
  for (int r = 0; r < n; ++r) s += input(r, i);
  return s;
}

// The hook: x -> 2x + offset-dependent constant, and counts the elements it saw.
struct HookState {
  size_t begin = 0, end = 0;
  size_t seen = 0;
  bool outside = false;
};
fcclResult_t doubleIt(void* user, const ChunkDesc& d, void* data) {
  auto* st = static_cast<HookState*>(user);
  if (d.count > 0 && (d.offset < st->begin || d.offset + d.count > st->end)) st->outside = true;
  st->seen += d.count;
  float* x = static_cast<float*>(data);
  for (size_t i = 0; i < d.count; ++i) x[i] = 2 * x[i] + float((d.offset + i) % 5);
  return fcclSuccess;
}

template <class Body>
void onRanks(int n, Body body) {
  fcclUniqueId id;
  ASSERT_EQ(fcclGetUniqueId(&id), fcclSuccess);
  std::vector<std::thread> threads;
  std::vector<std::string> failures(n);
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      fcclComm_t comm = nullptr;
      if (fcclCommInitRank(&comm, n, id, r) != fcclSuccess) {
        failures[r] = "init failed";
        return;
      }
      failures[r] = body(comm, r);
      fcclCommDestroy(comm);
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < n; ++r) EXPECT_EQ(failures[r], "") << "rank " << r;
}

class SlicedRing : public ::testing::TestWithParam<std::tuple<int, size_t>> {};

TEST_P(SlicedRing, ReduceScatterWithHookThenAllGather) {
  auto [n, count] = GetParam();
  onRanks(n, [n = n, count = count](fcclComm_t comm, int r) -> std::string {
    std::vector<float> in(count), full(count, -1.0f);
    for (size_t i = 0; i < count; ++i) in[i] = input(r, i);
    Slice s = sliceOf(count, r, n);
    std::vector<float> own(s.end - s.begin + 1, -7.0f);  // one guard element
    HookState st{s.begin, s.end};
    FnHook hook;
    hook.fn = doubleIt;
    hook.user = &st;
    CollTask t;
    t.kind = CollKind::ReduceScatterSliced;
    t.send = in.data();
    t.recv = own.data();
    t.count = count;
    t.type = fcclFloat32;
    t.op = fcclSum;
    if (executeHooked(comm, t, hook) != fcclSuccess) return "reduce-scatter failed";
    if (st.outside) return "hook saw a chunk outside this rank's slice";
    if (st.seen != s.end - s.begin) return "hook saw " + std::to_string(st.seen) + " elements";
    for (size_t i = s.begin; i < s.end; ++i)
      if (own[i - s.begin] != 2 * sumOver(n, i) + float(i % 5))
        return "wrong slice value at " + std::to_string(i);
    if (own.back() != -7.0f) return "wrote past the slice";
    CollTask g;
    g.kind = CollKind::AllGatherSliced;
    g.send = own.data();
    g.recv = full.data();
    g.count = count;
    g.type = fcclFloat32;
    g.op = fcclSum;
    if (executeTasks(comm, {g}) != fcclSuccess) return "all-gather failed";
    for (size_t i = 0; i < count; ++i)
      if (full[i] != 2 * sumOver(n, i) + float(i % 5)) return "wrong gathered value at " + std::to_string(i);
    return "";
  });
}

TEST_P(SlicedRing, AllReduceDistributesTheHookOutput) {
  auto [n, count] = GetParam();
  onRanks(n, [n = n, count = count](fcclComm_t comm, int r) -> std::string {
    std::vector<float> in(count), out(count, -1.0f);
    for (size_t i = 0; i < count; ++i) in[i] = input(r, i);
    Slice s = sliceOf(count, r, n);
    HookState st{s.begin, s.end};
    FnHook hook;
    hook.fn = doubleIt;
    hook.user = &st;
    CollTask t;
    t.kind = CollKind::AllReduce;
    t.send = in.data();
    t.recv = out.data();
    t.count = count;
    t.type = fcclFloat32;
    t.op = fcclSum;
    if (executeHooked(comm, t, hook) != fcclSuccess) return "allreduce failed";
    if (st.outside) return "hook saw a chunk outside this rank's slice";
    for (size_t i = 0; i < count; ++i)
      if (out[i] != 2 * sumOver(n, i) + float(i % 5)) return "wrong value at " + std::to_string(i);
    return "";
  });
}

INSTANTIATE_TEST_SUITE_P(RanksAndCounts, SlicedRing,
                         ::testing::Combine(::testing::Values(1, 2, 3, 4),
                                            ::testing::Values(size_t(0), size_t(1), size_t(5), size_t(1000),
                                                              size_t(300007))));

}  // namespace
}  // namespace fccl
