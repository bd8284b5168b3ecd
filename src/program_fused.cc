// program_fused.cc - the Runtime's Fused steps and the overlap pass's realization
// (program_runtime.h). A Fused step is one reduce-scatter whose reduced hook runs the step's
// kernel on each reduced chunk of this rank's slice, then all-gathers the replicated results -
// or, when exactly one result of the input's type is gathered, one allreduce ring that forwards
// the hook's output (a single pass). Overlap: the producer step on a helper thread, marking
// chunks ready in the ring's consumption order, while the collective consumes them.
#include <algorithm>
#include <cstring>
#include <thread>
#include "collectives/hooks.h"
#include "collectives/ready.h"
#include "fusion/ir/fccl_types.h"
#include "src/base/debug.h"
#include "src/base/env.h"
#include "src/comm.h"
#include "src/enqueue.h"
#include "src/program_runtime.h"

namespace fccl::fusion {

namespace {

// What a Fused step's reduced hook needs: the kernel, the bindings, which var is the chunk.
struct FusedHookContext {
  StepKernel kernel;
  Bindings* b;
  int reducedVar;
  TensorBinding reducedStore;  // the reduced temporary's own storage, when a later step reads it
  int forwardVar;              // >= 0: copy this var's chunk into the ring's payload (single pass)
  size_t elemBytes;
};

// The reduced chunk in `in`; the forwarded result (single pass) goes to `out`. In place (the
// reduce-scatter path) in == out; out of place (FnHook::fnTo) `in` is the primitive's private
// scratch and `out` the FIFO slot, written once.
fcclResult_t fusedHookTo(void* user, const ChunkDesc& d, void* in, void* out) {
  auto* c = static_cast<FusedHookContext*>(user);
  if (d.count == 0) return fcclSuccess;
  if (c->reducedStore.data != nullptr) {
    char* keep =
        static_cast<char*>(c->reducedStore.data) + (int64_t(d.offset) - c->reducedStore.base) * c->elemBytes;
    if (keep != in) memcpy(keep, in, d.count * c->elemBytes);
  }
  c->b->tensors[c->reducedVar] = TensorBinding{in, int64_t(d.offset)};
  c->kernel.run(int64_t(d.offset), int64_t(d.offset + d.count), *c->b);
  if (c->forwardVar >= 0) {
    const TensorBinding& fw = c->b->tensors[c->forwardVar];
    memcpy(out, static_cast<char*>(fw.data) + (int64_t(d.offset) - fw.base) * c->elemBytes,
           d.count * c->elemBytes);
  }
  return fcclSuccess;
}

// The reduction inside the kernel (hooks.h FnHook::fnReduceTo, cpu_emit.h RingFusion): `in` is
// the received partial, `own` this rank's chunk, `out` the slot the forwarded result goes to.
fcclResult_t fusedHookReduceTo(void* user, const ChunkDesc& d, const void* in, const void* own, void* out,
                               int divisor) {
  auto* c = static_cast<FusedHookContext*>(user);
  if (d.count == 0) return fcclSuccess;
  c->b->tensors[c->reducedVar] = TensorBinding{const_cast<void*>(in), int64_t(d.offset)};
  c->kernel.runRing(int64_t(d.offset), int64_t(d.offset + d.count), *c->b, own, out, divisor);
  return fcclSuccess;
}

fcclResult_t fusedHook(void* user, const ChunkDesc& d, void* data) {
  return fusedHookTo(user, d, data, data);
}

}  // namespace

fcclResult_t Runtime::runFused(fcclComm* comm, const Step& step, StepKernel k, Storage& st) {
  const ir::Program& p = schedule_.program;
  const ir::Var& in = p.vars[step.input];
  const size_t elem = size_t(ir::dtypeBytes(in.dtype));
  const int64_t n = st.counts[step.input];
  CollTask t = reductionTask(in.dtype, step.redop, comm->nranks);
  t.count = size_t(n);
  t.send = st.b.tensors[step.input].data;
  t.sendReady = st.ready;
  // A buffered `reduced` (read by a later step) keeps every reduced chunk in its storage;
  // during the hook it is bound to the chunk itself, afterwards to that storage again.
  const TensorBinding reducedStore = st.b.tensors[step.reduced];
  FusedHookContext ctx{k, &st.b, step.reduced, reducedStore, -1, elem};
  FnHook hook;
  hook.fn = fusedHook;
  hook.user = &ctx;
  struct Restore {
    TensorBinding& slot;
    TensorBinding value;
    ~Restore() { slot = value; }
  } restore{st.b.tensors[step.reduced], reducedStore};

  // One pipelined pass when exactly one replicated result of the input's type is gathered:
  // the hook's output for each chunk is what the ring's all-gather half distributes.
  if (step.gather.size() == 1 && p.vars[step.gather[0]].dtype == in.dtype && st.counts[step.gather[0]] == n) {
    ctx.forwardVar = step.gather[0];
    hook.writesOutput = true;  // the kernel stores the result into the gathered tensor itself
    hook.fnTo = fusedHookTo;   // and the forwarded chunk into the slot: reduce into scratch
    // Or, a sum the kernel can compute itself, with no reduced chunk kept: the reduction inside
    // the kernel's loop, its result written straight into the slot (no scratch, no copy).
    if (k.hasRing() && t.op == fcclSum && reducedStore.data == nullptr) hook.fnReduceTo = fusedHookReduceTo;
    t.kind = CollKind::AllReduce;
    t.recv = st.b.tensors[step.gather[0]].data;
    return executeHooked(comm, t, hook);
  }
  // Otherwise reduce-scatter with the hook, then all-gather each result in place.
  ir::SliceRange own = ir::sliceRange(n, comm->rank, comm->nranks);
  t.kind = CollKind::ReduceScatterSliced;
  if (reducedStore.data != nullptr) {
    t.recv = reducedStore.data;
  } else {
    if (st.scratch->size() < size_t(own.size()) * elem + 1) st.scratch->resize(size_t(own.size()) * elem + 1);
    t.recv = st.scratch->data();
  }
  fcclResult_t res = executeHooked(comm, t, hook);
  for (size_t i = 0; i < step.gather.size() && res == fcclSuccess; ++i) {
    int g = step.gather[i];
    const TensorBinding& gb = st.b.tensors[g];
    ir::SliceRange gr = ir::sliceRange(st.counts[g], comm->rank, comm->nranks);
    size_t gElem = size_t(ir::dtypeBytes(p.vars[g].dtype));
    CollTask a;
    a.kind = CollKind::AllGatherSliced;
    a.type = ir::toFcclType(p.vars[g].dtype);
    a.op = fcclSum;
    a.count = size_t(st.counts[g]);
    a.recv = gb.data;
    a.send = static_cast<char*>(gb.data) + size_t(gr.begin - gb.base) * gElem;
    res = executeTasks(comm, {a});
  }
  return res;
}

bool Runtime::canOverlap(fcclComm* comm, size_t i, const Storage& st) const {
  const std::vector<Step>& steps = schedule_.steps;
  if (i + 1 >= steps.size() || steps[i].kind != StepKind::Pointwise || steps[i + 1].overlapWith != int32_t(i))
    return false;
  const Step& prod = steps[i];
  const Step& cons = steps[i + 1];
  // Only collectives whose primitives wait per input chunk (reduce-scatter based ones).
  const bool waits =
      cons.kind == StepKind::Fused || (cons.kind == StepKind::Collective &&
                                       (cons.op == ir::Op::AllReduce || cons.op == ir::Op::ReduceScatter));
  if (!waits || prod.extent != Extent::Full || prod.stmts.empty()) return false;
  const int64_t n = st.counts[cons.input];
  if (n <= 0 || stepRange(schedule_.program, prod, st.counts, st.rank, st.nranks).size() != n) return false;
  const std::string& mode = env().overlap;
  if (mode == "0") return false;
  if (mode == "1") return true;
  // auto: a helper thread per rank only pays when it has a core of its own (the CPU count is
  // read once, at init).
  return comm->cpus >= 2 * comm->nranks;
}

fcclResult_t Runtime::runOverlapped(fcclComm* comm, size_t i, Storage& st) {
  const Step& cons = schedule_.steps[i + 1];
  const StepKernel k = kernel(i);
  k.runScalars(st.b, &st.b.scalars);

  const int64_t n = st.counts[cons.input];
  const int64_t elem = ir::dtypeBytes(schedule_.program.vars[cons.input].dtype);
  const int64_t chunk = std::max<int64_t>(1, int64_t(comm->tuning.chunkBytes) / elem);
  const int nr = comm->nranks;
  const int64_t slice = (n + nr - 1) / nr;
  fcclReady ready{size_t(n)};
  Bindings producerBindings = st.b;  // its own copy: the fused hook rebinds `reduced` per chunk
  std::thread producer([&] {
    // The ring's consumption order: chunk `o` of every rank's slice, then the next chunk.
    for (int64_t o = 0; o < slice; o += chunk)
      for (int j = 0; j < nr; ++j) {
        const int64_t b = std::min(n, j * slice + o), e = std::min(n, j * slice + std::min(slice, o + chunk));
        if (b >= e) continue;
        k.run(b, e, producerBindings);
        ready.mark(size_t(b), size_t(e));
      }
  });
  if (!overlapLogged_) {
    overlapLogged_ = true;
    FCCL_INFO(kLogFusion, "program %s: step %zu consumes chunks while step %zu produces them (overlap)",
              schedule_.program.name.c_str(), i + 1, i);
  }
  st.ready = &ready;
  fcclResult_t res =
      cons.kind == StepKind::Fused ? runFused(comm, cons, kernel(i + 1), st) : runCollective(comm, cons, st);
  st.ready = nullptr;
  producer.join();  // it never waits on anything, so it finishes even after an error
  return res;
}

}  // namespace fccl::fusion
