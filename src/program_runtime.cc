// program_runtime.cc - see program_runtime.h: building a Runtime (the steps' kernels), a launch
// (bindings, temporary storage, the steps in order, scalar results), and the Pointwise,
// Collective and Reduction steps; Fused steps and overlap are in program_fused.cc. Storage rule
// (schedule.h): replicated and local values hold all N logical elements, sliced ones only this
// rank's sliceRange; a binding's `base` is the logical index of its first stored element.
#include "src/program_runtime.h"
#include <cmath>
#include <cstring>
#include <string>
#include "collectives/reduce_kernels.h"
#include "fusion/ir/fccl_types.h"
#include "fusion/ir/printer.h"
#include "src/argcheck.h"
#include "src/base/checks.h"
#include "src/base/debug.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "src/base/half.h"
#include "src/comm.h"
#include "src/enqueue.h"
#include "src/program_reduction.h"

namespace fccl::fusion {

namespace {

// Scalars the launch reports back, in declaration order: `out` and `inout` scalars.
bool isScalarResult(const ir::Var& v) {
  return (v.kind == ir::VarKind::Out || v.kind == ir::VarKind::InOut) && v.isScalar();
}

// The launch's scalar results, in declaration order.
void copyScalarResults(const ir::Program& p, const Bindings& b, double* scalarResults) {
  int k = 0;
  for (size_t v = 0; v < p.vars.size(); ++v)
    if (isScalarResult(p.vars[v])) {
      if (scalarResults != nullptr) scalarResults[k] = b.scalars[v];
      ++k;
    }
}

}  // namespace

ProgramOnBoard::ProgramOnBoard(fcclComm* comm, uint64_t hash, const char* name) : comm_(comm) {
  comm->programHash = hash;
  comm->programName = name;
}
ProgramOnBoard::~ProgramOnBoard() {
  comm_->programHash = 0;
  comm_->programName = nullptr;
}

CollTask reductionTask(ir::DType dtype, ir::RedOp op, int nranks) {
  CollTask t;
  t.type = ir::toFcclType(dtype);
  t.op = ir::toFcclOp(op);
  if (t.op == fcclAvg) {
    t.op = fcclSum;
    t.avgDivisor = nranks;
  }
  return t;
}

ir::SliceRange stepRange(const ir::Program& p, const Step& s, const std::vector<int64_t>& counts, int rank,
                         int nranks) {
  if (s.stmts.empty()) return {0, 0};
  int v = p.stmts[s.stmts[0]].var;
  int64_t n = counts[v];
  if (p.vars[v].isScalar()) return {0, 1};
  return s.extent == Extent::Slice ? ir::sliceRange(n, rank, nranks) : ir::SliceRange{0, n};
}

bool Runtime::create(Schedule schedule, std::unique_ptr<Runtime>* out, std::string* error) {
  auto rt = std::unique_ptr<Runtime>(new Runtime());
  rt->schedule_ = std::move(schedule);
  // FNV-1a of the printed program and its step kinds, never 0 (0: not a program).
  std::string text = ir::print(rt->schedule_.program);
  for (const Step& s : rt->schedule_.steps) text += stepKindName(s.kind);
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  rt->programHash_ = h | 1;
  rt->kernels_.resize(rt->schedule_.steps.size());
  const ir::Program& prog = rt->schedule_.program;
  // Each step's lowered pointwise form (fusion/lowered/pointwise_form.h, built once by the
  // lowering) runs on the tile VM, and on the JIT where it compiles.
  for (size_t i = 0; i < rt->schedule_.steps.size(); ++i) {
    const Step& s = rt->schedule_.steps[i];
    if (s.kind != StepKind::Pointwise && s.kind != StepKind::Fused) continue;
    std::string err;
    if (!rt->kernels_[i].compile(s.form, &err)) {
      *error = "step " + std::to_string(i) + " (" + stepKindName(s.kind) + "): " + err;
      return false;
    }
  }
  // The JIT for the same steps, VM as the fallback. Compiles once per process per program: later
  // creates (other ranks as threads, other communicators) hit the JIT's cache.
  rt->jit_.resize(rt->schedule_.steps.size());
  for (size_t i = 0; i < rt->schedule_.steps.size(); ++i) {
    const Step& s = rt->schedule_.steps[i];
    if (s.kind != StepKind::Pointwise && s.kind != StepKind::Fused) continue;
    const char* name = prog.name.c_str();
    if (!env().jit) {
      FCCL_INFO(kLogFusion, "program %s step %zu (%s): tile VM (FCCL_JIT=0)", name, i, stepKindName(s.kind));
      continue;
    }
    jit::JitOptions o;
    o.compiler = env().jitCxx;
    o.cacheDir = env().jitCache;
    auto k = std::make_unique<jit::CpuJitKernel>(o);
    std::string why;
    // A Fused step whose one gathered result can ride the allreduce ring gets the ring entry.
    jit::RingFusion ring;
    if (s.kind == StepKind::Fused && s.gather.size() == 1) ring = {s.reduced, s.gather[0]};
    if (!k->compile(s.form, ring, &why)) {
      FCCL_INFO(kLogFusion, "program %s step %zu (%s): tile VM; JIT skipped: %s", name, i,
                stepKindName(s.kind), why.c_str());
      continue;
    }
    FCCL_INFO(kLogFusion, "program %s step %zu (%s): JIT %s (%s in %.3f s)", name, i, stepKindName(s.kind),
              k->library().c_str(), k->cacheHit() ? "cached" : "compiled", k->compileSeconds());
    rt->jit_[i] = std::move(k);
  }
  *out = std::move(rt);
  return true;
}

fcclResult_t Runtime::launch(fcclComm* comm, const fcclTensorBinding_t* tensors, int ntensors,
                             const fcclScalarBinding_t* scalars, int nscalars, double* scalarResults,
                             fcclStream_t stream) {
  const ir::Program& p = schedule_.program;
  Storage st;
  st.rank = comm->rank;
  st.nranks = comm->nranks;
  // A device communicator: the device plan first (a refusal touches nothing), then the bindings.
  if (comm->cudaDev >= 0) FCCL_CHECK(planDevice());
  fcclResult_t res =
      checkProgramArgs("fcclProgramLaunch", comm, p, tensors, ntensors, scalars, nscalars, &st.b, &st.counts);
  if (res != fcclSuccess) return res;
  if (comm->cudaDev >= 0) res = launchDevice(comm, st, stream);
  if (comm->cudaDev >= 0 || res != fcclSuccess) {
    if (res == fcclSuccess) copyScalarResults(p, st.b, scalarResults);
    return res;
  }
  // Buffered temporaries get storage by the same rule as declared tensors, kept across launches
  // (every step writes a temporary before any step reads it).
  buffers_.resize(schedule_.buffers.size());
  st.scratch = &scratch_;
  for (size_t i = 0; i < schedule_.buffers.size(); ++i) {
    int v = schedule_.buffers[i];
    const ir::Var& var = p.vars[v];
    ir::SliceRange r = var.layout == ir::Layout::Sliced
                           ? ir::sliceRange(st.counts[v], comm->rank, comm->nranks)
                           : ir::SliceRange{0, st.counts[v]};
    const size_t bytes = size_t(r.size()) * ir::dtypeBytes(var.dtype) + 1;
    if (buffers_[i].size() < bytes) buffers_[i].resize(bytes);
    st.b.tensors[v] = TensorBinding{buffers_[i].data(), r.begin};
  }
  const ProgramOnBoard mark(comm, programHash_, p.name.c_str());
  for (size_t i = 0; i < schedule_.steps.size() && res == fcclSuccess; ++i) {
    const Step& s = schedule_.steps[i];
    if (canOverlap(comm, i, st)) {
      res = runOverlapped(comm, i, st);
      ++i;  // the consumer step ran too
      continue;
    }
    switch (s.kind) {
      case StepKind::Pointwise:
        res = runPointwise(s, kernel(i), st);
        break;
      case StepKind::Collective:
        res = runCollective(comm, s, st);
        break;
      case StepKind::Fused:
        res = runFused(comm, s, kernel(i), st);
        break;
      case StepKind::Reduction:
        res = runReduction(comm, s, st);
        break;
    }
  }
  if (res != fcclSuccess) return res;
  copyScalarResults(p, st.b, scalarResults);
  return fcclSuccess;
}

fcclResult_t Runtime::runPointwise(const Step& step, StepKernel k, Storage& st) {
  ir::SliceRange r = stepRange(schedule_.program, step, st.counts, st.rank, st.nranks);
  // Scalar statements first: later tensor ones read them.
  k.runScalars(st.b, &st.b.scalars);
  if (r.size() > 0) k.run(r.begin, r.end, st.b);
  return fcclSuccess;
}

fcclResult_t Runtime::runCollective(fcclComm* comm, const Step& step, Storage& st) {
  const ir::Program& p = schedule_.program;
  const ir::Var& in = p.vars[step.input];
  const ir::Var& out = p.vars[step.output];
  const TensorBinding& src = st.b.tensors[step.input];
  const TensorBinding& dst = st.b.tensors[step.output];
  CollTask t = reductionTask(in.dtype, step.redop, comm->nranks);
  t.count = size_t(st.counts[step.input]);
  t.send = src.data;
  t.recv = dst.data;
  t.root = step.root >= 0 ? int(st.b.scalars[step.root]) : int(step.rootValue);
  t.sendReady = st.ready;
  t.stream = st.stream;
  if (in.dtype != out.dtype)
    return setError(fcclInternalError, "program %s: %s from %s to %s changes the element type",
                    p.name.c_str(), ir::opName(step.op), in.name.c_str(), out.name.c_str());
  switch (step.op) {
    case ir::Op::AllReduce:
      t.kind = CollKind::AllReduce;
      break;
    case ir::Op::Broadcast:
      t.kind = CollKind::Broadcast;
      break;
    case ir::Op::ReduceScatter:
      t.kind = CollKind::ReduceScatterSliced;
      break;
    case ir::Op::AllGather:
      t.kind = CollKind::AllGatherSliced;
      break;
    case ir::Op::Reduce:
      t.kind = CollKind::Reduce;
      // Off the root, reduce leaves the operand as it was.
      if (comm->rank != t.root && dst.data != src.data)
        memcpy(dst.data, src.data, t.count * dtypeSize(t.type));
      break;
    default:
      return setError(fcclInternalError, "program %s: %s is not a collective step", p.name.c_str(),
                      ir::opName(step.op));
  }
  if (t.root < 0 || t.root >= comm->nranks)
    return setError(fcclInvalidArgument,
                    "fcclProgramLaunch: rank %d: root %d of %s in program %s is out of range", comm->rank,
                    t.root, ir::opName(step.op), p.name.c_str());
  return executeTasks(comm, {t});
}

fcclResult_t Runtime::runReduction(fcclComm* comm, const Step& step, Storage& st) {
  const ir::Program& p = schedule_.program;
  const ir::Stmt& s = p.stmts[step.stmts.at(0)];
  const ir::Node& red = p.node(s.value);
  const ir::Node& arg = p.node(red.args[0]);
  if (arg.op != ir::Op::Ref)
    return setError(fcclInternalError, "program %s: the operand of %s must be a variable after lowering",
                    p.name.c_str(), ir::opName(red.op));
  const ir::Var& var = p.vars[arg.var];
  const TensorBinding& tb = st.b.tensors[arg.var];
  // A sliced operand: a partial over this rank's slice. A replicated one is the same on every
  // rank, so past kSplitReplicated elements each rank reduces only its slice too (1/n of the
  // reads) and the tiny allreduce joins the partials; below, each reads it all and saves the
  // allreduce. Every rank makes the same choice (the count is the same on every rank).
  constexpr int64_t kSplitReplicated = int64_t(1) << 16;
  const int64_t count = st.counts[arg.var];
  const bool split = red.crossRank ||
                     (var.layout == ir::Layout::Replicated && comm->nranks > 1 && count >= kSplitReplicated);
  const ir::SliceRange r = split ? ir::sliceRange(count, comm->rank, comm->nranks) : ir::SliceRange{0, count};
  double acc = reductionPartial(red.op, var.dtype, tb.data, tb.base, r.begin, r.end);
  if (split && comm->nranks > 1) {
    // The per-slice partials meet in a one-element allreduce.
    CollTask t;
    t.kind = CollKind::AllReduce;
    t.type = fcclFloat64;
    t.op = (red.op == ir::Op::MaxAll || red.op == ir::Op::AnyNonfinite) ? fcclMax : fcclSum;
    t.count = 1;
    t.send = &acc;
    t.recv = &acc;
    fcclResult_t res = executeTasks(comm, &t, 1);
    if (res != fcclSuccess) return res;
  }
  st.b.scalars[s.var] = red.op == ir::Op::Norm ? std::sqrt(acc) : acc;
  return fcclSuccess;
}

}  // namespace fccl::fusion
