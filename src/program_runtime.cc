// program_runtime.cc - see program_runtime.h. Storage rule (schedule.h): replicated and local values hold all
// N logical elements, sliced ones only this rank's sliceRange; a binding's `base` is the
// logical index of its first stored element.
#include "src/program_runtime.h"
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include "collectives/hooks.h"
#include "collectives/ready.h"
#include "collectives/reduce_kernels.h"
#include "fusion/ir/printer.h"
#include "src/base/debug.h"
#include "src/base/env.h"
#include "src/base/error.h"
#include "src/base/half.h"
#include "src/comm.h"
#include "src/enqueue.h"
#include "src/topo.h"

namespace fccl::fusion {

namespace {

fcclDataType_t toFccl(ir::DType t) {
  switch (t) {
    case ir::DType::F64:
      return fcclFloat64;
    case ir::DType::F32:
      return fcclFloat32;
    case ir::DType::F16:
      return fcclFloat16;
    case ir::DType::BF16:
      return fcclBfloat16;
    case ir::DType::I32:
      return fcclInt32;
    case ir::DType::I64:
      return fcclInt64;
    default:
      return fcclUint8;  // bool
  }
}

fcclRedOp_t toFccl(ir::RedOp op) {
  switch (op) {
    case ir::RedOp::Sum:
      return fcclSum;
    case ir::RedOp::Prod:
      return fcclProd;
    case ir::RedOp::Min:
      return fcclMin;
    case ir::RedOp::Max:
      return fcclMax;
    case ir::RedOp::Avg:
      return fcclAvg;
  }
  return fcclSum;
}

// A collective task of `dtype` reducing with `op`; Avg is a sum divided on the final value (the
// internal sliced collectives do not go through argcheck, which does this for the C API).
CollTask reductionTask(ir::DType dtype, ir::RedOp op, int nranks) {
  CollTask t;
  t.type = toFccl(dtype);
  t.op = toFccl(op);
  if (t.op == fcclAvg) {
    t.op = fcclSum;
    t.avgDivisor = nranks;
  }
  return t;
}

// Scalars the caller binds: `scalar` inputs and `inout` scalars (state such as a loss scale).
bool isScalarInput(const ir::Var& v) {
  return v.kind == ir::VarKind::Scalar || (v.kind == ir::VarKind::InOut && v.isScalar());
}
// Scalars the launch reports back, in declaration order: `out` and `inout` scalars.
bool isScalarResult(const ir::Var& v) {
  return (v.kind == ir::VarKind::Out || v.kind == ir::VarKind::InOut) && v.isScalar();
}

double loadAsDouble(ir::DType t, const void* base, int64_t i) {
  switch (t) {
    case ir::DType::F64:
      return static_cast<const double*>(base)[i];
    case ir::DType::F32:
      return static_cast<const float*>(base)[i];
    case ir::DType::F16:
      return toFloat(static_cast<const half_t*>(base)[i]);
    case ir::DType::BF16:
      return toFloat(static_cast<const bfloat16_t*>(base)[i]);
    case ir::DType::I32:
      return static_cast<const int32_t*>(base)[i];
    case ir::DType::I64:
      return double(static_cast<const int64_t*>(base)[i]);
    default:
      return static_cast<const uint8_t*>(base)[i] != 0;
  }
}

}  // namespace

struct Runtime::Storage {
  int rank = 0, nranks = 1;
  std::vector<int64_t> symbols;            // [symbol] -> value
  std::vector<int64_t> counts;             // [var] -> logical element count (1 for scalars)
  Bindings b;                              // tensors / scalars by var
  std::vector<std::vector<char>> buffers;  // storage of buffered temporaries
  std::vector<char> scratch;               // reduced chunks of a Fused step without a buffer
  fcclReady* ready = nullptr;              // overlap: the input of the running collective step
                                           // is ready only where the producer marked it
};

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
  // In a Fused hook, `v = all_gather(X)` stores X at the chunk's indices of v's own slice (the
  // gather itself runs after the last chunk): the kernel evaluates X.
  ir::Program& prog = rt->schedule_.program;
  for (const Step& s : rt->schedule_.steps) {
    if (s.kind != StepKind::Fused) continue;
    for (int32_t k : s.stmts) {
      ir::Stmt& st = prog.stmts[k];
      if (prog.node(st.value).op == ir::Op::AllGather) st.value = prog.node(st.value).args[0];
    }
  }
  for (size_t i = 0; i < rt->schedule_.steps.size(); ++i) {
    const Step& s = rt->schedule_.steps[i];
    if (s.kind != StepKind::Pointwise && s.kind != StepKind::Fused) continue;
    std::string err;
    if (!rt->kernels_[i].compile(rt->schedule_.program, s.stmts, &err)) {
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
    if (!k->compile(prog, s.stmts, &why)) {
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

fcclResult_t Runtime::bind(fcclComm* comm, const fcclTensorBinding_t* tensors, int ntensors,
                           const fcclScalarBinding_t* scalars, int nscalars, Storage* st) {
  const ir::Program& p = schedule_.program;
  const char* api = "fcclProgramLaunch";
  st->rank = comm->rank;
  st->nranks = comm->nranks;
  st->b.rank = comm->rank;
  st->b.nranks = comm->nranks;
  st->b.tensors.assign(p.vars.size(), TensorBinding{});
  st->b.scalars.assign(p.vars.size(), 0.0);
  st->symbols.assign(p.symbols.size(), -1);
  st->counts.assign(p.vars.size(), 1);
  std::vector<const fcclTensorBinding_t*> byVar(p.vars.size(), nullptr);
  std::vector<bool> scalarBound(p.vars.size(), false);

  for (int i = 0; i < ntensors; ++i) {
    const char* name = tensors[i].name ? tensors[i].name : "";
    int v = p.findVar(name);
    if (v < 0 || !p.vars[v].isTensorDecl() || p.vars[v].isScalar())
      return setError(fcclInvalidArgument, "%s: rank %d: program '%s' has no tensor named '%s'", api,
                      comm->rank, p.name.c_str(), name);
    if (byVar[v] != nullptr)
      return setError(fcclInvalidArgument, "%s: rank %d: tensor '%s' is bound twice", api, comm->rank, name);
    byVar[v] = &tensors[i];
  }
  for (int i = 0; i < nscalars; ++i) {
    const char* name = scalars[i].name ? scalars[i].name : "";
    int v = p.findVar(name);
    if (v < 0 || !isScalarInput(p.vars[v]))
      return setError(fcclInvalidArgument, "%s: rank %d: program '%s' has no scalar input named '%s'", api,
                      comm->rank, p.name.c_str(), name);
    if (scalarBound[v])
      return setError(fcclInvalidArgument, "%s: rank %d: scalar '%s' is bound twice", api, comm->rank, name);
    scalarBound[v] = true;
    double x = scalars[i].value;
    // Integer scalars take integer values (a step count of 3.5 is a mistake, not a rounding).
    if (ir::isInteger(p.vars[v].dtype) && x != std::floor(x))
      return setError(fcclInvalidArgument, "%s: rank %d: scalar '%s' is %s but was given %g", api, comm->rank,
                      name, ir::dtypeName(p.vars[v].dtype), x);
    st->b.scalars[v] = x;
  }
  // Shape symbols come from the counts of tensors whose shape has exactly one symbol.
  for (size_t v = 0; v < p.vars.size(); ++v) {
    const ir::Var& var = p.vars[v];
    if (!var.isTensorDecl() || var.isScalar()) continue;
    if (byVar[v] == nullptr)
      return setError(fcclInvalidArgument, "%s: rank %d: tensor '%s' of program '%s' is not bound", api,
                      comm->rank, var.name.c_str(), p.name.c_str());
    int sym = -1, nsyms = 0;
    int64_t constant = 1;
    for (const ir::Dim& d : var.shape) {
      if (d.sym >= 0)
        sym = d.sym, ++nsyms;
      else
        constant *= d.size;
    }
    size_t count = byVar[v]->count;
    if (nsyms == 1 && constant > 0 && st->symbols[sym] < 0) {
      if (count % size_t(constant) != 0)
        return setError(fcclInvalidArgument, "%s: rank %d: tensor '%s' is %s but was bound with %zu elements",
                        api, comm->rank, var.name.c_str(), ir::shapeString(p, var.shape).c_str(), count);
      st->symbols[sym] = int64_t(count / size_t(constant));
    }
  }
  for (size_t s = 0; s < p.symbols.size(); ++s)
    if (st->symbols[s] < 0)
      return setError(fcclInvalidArgument,
                      "%s: rank %d: cannot tell %s from the bound tensors (bind a tensor "
                      "whose shape is [%s])",
                      api, comm->rank, p.symbols[s].c_str(), p.symbols[s].c_str());
  for (size_t v = 0; v < p.vars.size(); ++v) {
    int64_t n = 1;
    for (const ir::Dim& d : p.vars[v].shape) n *= d.sym >= 0 ? st->symbols[d.sym] : d.size;
    st->counts[v] = n;
  }
  for (size_t v = 0; v < p.vars.size(); ++v) {
    const ir::Var& var = p.vars[v];
    if (isScalarInput(var) && !scalarBound[v])
      return setError(fcclInvalidArgument, "%s: rank %d: scalar '%s' of program '%s' is not bound", api,
                      comm->rank, var.name.c_str(), p.name.c_str());
    if (!var.isTensorDecl() || var.isScalar()) continue;
    if (int64_t(byVar[v]->count) != st->counts[v])
      return setError(fcclInvalidArgument,
                      "%s: rank %d: tensor '%s' is %s = %lld elements but was bound with %zu", api,
                      comm->rank, var.name.c_str(), ir::shapeString(p, var.shape).c_str(),
                      (long long)st->counts[v], byVar[v]->count);
    ir::SliceRange r = var.layout == ir::Layout::Sliced
                           ? ir::sliceRange(st->counts[v], comm->rank, comm->nranks)
                           : ir::SliceRange{0, st->counts[v]};
    if (r.size() > 0 && byVar[v]->data == nullptr)
      return setError(fcclInvalidArgument, "%s: rank %d: tensor '%s' is bound to NULL", api, comm->rank,
                      var.name.c_str());
    st->b.tensors[v] = TensorBinding{byVar[v]->data, r.begin};
  }
  // Buffered temporaries get storage by the same rule.
  st->buffers.resize(schedule_.buffers.size());
  for (size_t i = 0; i < schedule_.buffers.size(); ++i) {
    int v = schedule_.buffers[i];
    const ir::Var& var = p.vars[v];
    ir::SliceRange r = var.layout == ir::Layout::Sliced
                           ? ir::sliceRange(st->counts[v], comm->rank, comm->nranks)
                           : ir::SliceRange{0, st->counts[v]};
    st->buffers[i].assign(size_t(r.size()) * ir::dtypeBytes(var.dtype) + 1, 0);
    st->b.tensors[v] = TensorBinding{st->buffers[i].data(), r.begin};
  }
  return fcclSuccess;
}

fcclResult_t Runtime::launch(fcclComm* comm, const fcclTensorBinding_t* tensors, int ntensors,
                             const fcclScalarBinding_t* scalars, int nscalars, double* scalarResults) {
  Storage st;
  fcclResult_t res = bind(comm, tensors, ntensors, scalars, nscalars, &st);
  if (res != fcclSuccess) return res;
  // The collectives below carry this program on the call board.
  struct ProgramMark {
    fcclComm* comm;
    ~ProgramMark() {
      comm->programHash = 0;
      comm->programName = nullptr;
    }
  } mark{comm};
  comm->programHash = programHash_;
  comm->programName = schedule_.program.name.c_str();
  for (size_t i = 0; i < schedule_.steps.size() && res == fcclSuccess; ++i) {
    const Step& s = schedule_.steps[i];
    if (canOverlap(comm, i, st)) {
      res = runOverlapped(comm, i, st);
      ++i;  // the consumer step ran too
      continue;
    }
    switch (s.kind) {
      case StepKind::Pointwise:
        res = runPointwise(s, kernels_[i], jit_[i].get(), st);
        break;
      case StepKind::Collective:
        res = runCollective(comm, s, st);
        break;
      case StepKind::Fused:
        res = runFused(comm, s, kernels_[i], jit_[i].get(), st);
        break;
      case StepKind::Reduction:
        res = runReduction(comm, s, st);
        break;
    }
  }
  if (res != fcclSuccess) return res;
  const ir::Program& p = schedule_.program;
  int k = 0;
  for (size_t v = 0; v < p.vars.size(); ++v)
    if (isScalarResult(p.vars[v])) {
      if (scalarResults != nullptr) scalarResults[k] = st.b.scalars[v];
      ++k;
    }
  return fcclSuccess;
}

// The logical range a statement list runs over: its first target's elements, or its slice.
static ir::SliceRange stepRange(const ir::Program& p, const Step& s, const std::vector<int64_t>& counts,
                                int rank, int nranks) {
  if (s.stmts.empty()) return {0, 0};
  int v = p.stmts[s.stmts[0]].var;
  int64_t n = counts[v];
  if (p.vars[v].isScalar()) return {0, 1};
  return s.extent == Extent::Slice ? ir::sliceRange(n, rank, nranks) : ir::SliceRange{0, n};
}

fcclResult_t Runtime::runPointwise(const Step& step, const PointwiseKernel& k, const jit::CpuJitKernel* jk,
                                   Storage& st) {
  ir::SliceRange r = stepRange(schedule_.program, step, st.counts, st.rank, st.nranks);
  // Scalar statements first: later tensor ones read them.
  if (jk != nullptr) {
    jk->runScalars(st.b, &st.b.scalars);
    if (r.size() > 0) jk->run(r.begin, r.end, st.b);
  } else {
    k.runScalars(st.b, &st.b.scalars);
    if (r.size() > 0) k.run(r.begin, r.end, st.b);
  }
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

namespace {

// What a Fused step's reduced hook needs: the kernel, the bindings, which var is the chunk.
struct FusedHookContext {
  const PointwiseKernel* kernel;
  const jit::CpuJitKernel* jit;  // runs instead of `kernel` when non-null
  Bindings* b;
  int reducedVar;
  TensorBinding reducedStore;  // the reduced temporary's own storage, when a later step reads it
  int forwardVar;              // >= 0: copy this var's chunk into the ring's payload (single pass)
  size_t elemBytes;
};

fcclResult_t fusedHook(void* user, const ChunkDesc& d, void* data) {
  auto* c = static_cast<FusedHookContext*>(user);
  if (d.count == 0) return fcclSuccess;
  if (c->reducedStore.data != nullptr) {
    char* keep =
        static_cast<char*>(c->reducedStore.data) + (int64_t(d.offset) - c->reducedStore.base) * c->elemBytes;
    if (keep != data) memcpy(keep, data, d.count * c->elemBytes);
  }
  c->b->tensors[c->reducedVar] = TensorBinding{data, int64_t(d.offset)};
  if (c->jit != nullptr)
    c->jit->run(int64_t(d.offset), int64_t(d.offset + d.count), *c->b);
  else
    c->kernel->run(int64_t(d.offset), int64_t(d.offset + d.count), *c->b);
  if (c->forwardVar >= 0) {
    const TensorBinding& fw = c->b->tensors[c->forwardVar];
    memcpy(data, static_cast<char*>(fw.data) + (int64_t(d.offset) - fw.base) * c->elemBytes,
           d.count * c->elemBytes);
  }
  return fcclSuccess;
}

}  // namespace

fcclResult_t Runtime::runFused(fcclComm* comm, const Step& step, const PointwiseKernel& k,
                               const jit::CpuJitKernel* jk, Storage& st) {
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
  FusedHookContext ctx{&k, jk, &st.b, step.reduced, reducedStore, -1, elem};
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
    st.scratch.resize(size_t(own.size()) * elem + 1);
    t.recv = st.scratch.data();
  }
  fcclResult_t res = executeHooked(comm, t, hook);
  for (size_t i = 0; i < step.gather.size() && res == fcclSuccess; ++i) {
    int g = step.gather[i];
    const TensorBinding& gb = st.b.tensors[g];
    ir::SliceRange gr = ir::sliceRange(st.counts[g], comm->rank, comm->nranks);
    size_t gElem = size_t(ir::dtypeBytes(p.vars[g].dtype));
    CollTask a;
    a.kind = CollKind::AllGatherSliced;
    a.type = toFccl(p.vars[g].dtype);
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
  // auto: a helper thread per rank only pays when it has a core of its own.
  Topology topo;
  if (topoDetect(&topo) != fcclSuccess) return false;
  return int(topo.processCpus.size()) >= 2 * comm->nranks;
}

fcclResult_t Runtime::runOverlapped(fcclComm* comm, size_t i, Storage& st) {
  const Step& prod = schedule_.steps[i];
  const Step& cons = schedule_.steps[i + 1];
  const PointwiseKernel& k = kernels_[i];
  const jit::CpuJitKernel* jk = jit_[i].get();
  if (jk != nullptr)
    jk->runScalars(st.b, &st.b.scalars);
  else
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
        if (jk != nullptr)
          jk->run(b, e, producerBindings);
        else
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
  fcclResult_t res = cons.kind == StepKind::Fused
                         ? runFused(comm, cons, kernels_[i + 1], jit_[i + 1].get(), st)
                         : runCollective(comm, cons, st);
  st.ready = nullptr;
  producer.join();  // it never waits on anything, so it finishes even after an error
  (void)prod;
  return res;
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
  ir::SliceRange r = var.layout == ir::Layout::Sliced
                         ? ir::sliceRange(st.counts[arg.var], comm->rank, comm->nranks)
                         : ir::SliceRange{0, st.counts[arg.var]};
  double acc = red.op == ir::Op::MaxAll ? -INFINITY : 0.0;
  for (int64_t i = r.begin; i < r.end; ++i) {
    double x = loadAsDouble(var.dtype, tb.data, i - tb.base);
    switch (red.op) {
      case ir::Op::Norm:
        acc += x * x;
        break;
      case ir::Op::Sum:
        acc += x;
        break;
      case ir::Op::MaxAll:
        acc = std::fmax(acc, x);
        break;
      default:
        acc = (acc != 0 || !std::isfinite(x)) ? 1.0 : 0.0;
        break;
    }
  }
  if (red.crossRank && comm->nranks > 1) {
    // The per-slice partials meet in a one-element allreduce.
    CollTask t;
    t.kind = CollKind::AllReduce;
    t.type = fcclFloat64;
    t.op = (red.op == ir::Op::MaxAll || red.op == ir::Op::AnyNonfinite) ? fcclMax : fcclSum;
    t.count = 1;
    t.send = &acc;
    t.recv = &acc;
    fcclResult_t res = executeTasks(comm, {t});
    if (res != fcclSuccess) return res;
  }
  st.b.scalars[s.var] = red.op == ir::Op::Norm ? std::sqrt(acc) : acc;
  return fcclSuccess;
}

}  // namespace fccl::fusion
