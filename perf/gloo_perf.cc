// gloo_perf.cc - Gloo's ring allreduce (gloo::AllreduceRing<float>, TCP transport) timed the
// way all_reduce_perf times fccl, for perf/net_bench.sh: one rank per process, float32 sum,
// sizes -b..-e by factor -f, -w warm-up and -n timed iterations, nccl-tests' columns (time of
// rank 0, algbw = bytes / time, busbw = algbw * 2 (n-1) / n). The first iteration of each size
// is checked exactly (every rank adds rank+1 at every index; sums of small integers).
// Env: RANK, WORLD_SIZE, GLOO_STORE (a directory every rank can reach: the file rendezvous),
// GLOO_IFACE (the interface to use, e.g. eth0).
#include <gloo/allreduce_ring.h>
#include <gloo/barrier_all_to_one.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

size_t parseSize(const char* s) {
  char* end = nullptr;
  double v = strtod(s, &end);
  switch (end && *end ? *end : ' ') {
    case 'K':
    case 'k':
      v *= 1024;
      break;
    case 'M':
    case 'm':
      v *= 1024 * 1024;
      break;
    case 'G':
    case 'g':
      v *= 1024.0 * 1024 * 1024;
      break;
    default:
      break;
  }
  return size_t(v);
}

}  // namespace

int main(int argc, char** argv) {
  size_t minBytes = 8, maxBytes = 256 << 20;
  int factor = 2, iters = 20, warmup = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    if (f == "-b")
      minBytes = parseSize(argv[i + 1]);
    else if (f == "-e")
      maxBytes = parseSize(argv[i + 1]);
    else if (f == "-f")
      factor = atoi(argv[i + 1]);
    else if (f == "-n")
      iters = atoi(argv[i + 1]);
    else if (f == "-w")
      warmup = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: gloo_perf [-b bytes] [-e bytes] [-f factor] [-n iters] [-w warmup]\n");
      return 2;
    }
  }
  const char* r = getenv("RANK");
  const char* w = getenv("WORLD_SIZE");
  const char* store = getenv("GLOO_STORE");
  if (!r || !w || !store) {
    fprintf(stderr, "gloo_perf: set RANK, WORLD_SIZE and GLOO_STORE\n");
    return 2;
  }
  const int rank = atoi(r), size = atoi(w);
  gloo::transport::tcp::attr attr;
  if (const char* iface = getenv("GLOO_IFACE")) attr.iface = iface;
  auto dev = gloo::transport::tcp::CreateDevice(attr);
  gloo::rendezvous::FileStore fs(store);
  auto ctx = std::make_shared<gloo::rendezvous::Context>(rank, size);
  ctx->connectFullMesh(fs, dev);
  if (rank == 0) {
    printf("# gloo_perf: %d ranks, gloo::AllreduceRing<float> over tcp, float32 sum\n", size);
    printf("#%12s %12s %10s %9s %9s %7s\n", "size", "count", "time(us)", "algbw", "busbw", "#wrong");
  }
  gloo::BarrierAllToOne barrier(ctx);
  for (size_t bytes = minBytes; bytes <= maxBytes; bytes *= size_t(factor)) {
    const size_t count = bytes / sizeof(float) > 0 ? bytes / sizeof(float) : 1;
    std::vector<float> buf(count);
    gloo::AllreduceRing<float> ring(ctx, {buf.data()}, int(count));
    // Check once: every rank adds rank+1.
    for (size_t i = 0; i < count; ++i) buf[i] = float(rank + 1) * float(i % 3);
    ring.run();
    size_t wrong = 0;
    const float total = float(size * (size + 1) / 2);
    for (size_t i = 0; i < count; ++i) wrong += buf[i] != total * float(i % 3);
    for (int i = 0; i < warmup; ++i) ring.run();
    barrier.run();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) ring.run();
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
    const double algbw = double(count * sizeof(float)) / us / 1e3;
    if (rank == 0)
      printf(" %12zu %12zu %10.2f %9.3f %9.3f %7zu\n", count * sizeof(float), count, us, algbw,
             algbw * 2.0 * (size - 1) / size, wrong);
    fflush(stdout);
    barrier.run();
  }
  return 0;
}
