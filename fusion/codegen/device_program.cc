// device_program.cc - see device_program.h: the step decision, the sources (cuda_emit.h's hooks;
// a Fused step's as the reduced hook of the ring allreduce kernel of collectives/
// device_kernels.cuh, one element at a time) and the packed FcclHookArgs.
#include "fusion/codegen/device_program.h"

#include <cstring>

#include "fusion/codegen/cuda_emit.h"
#include "fusion/codegen/cuda_expr.h"
#include "fusion/codegen/ring_kernel.h"
#include "fusion/ir/fccl_types.h"
#include "fusion/ir/printer.h"

namespace fccl::fusion::codegen {

namespace {

bool hasTensorStatement(const ir::Program& p, const Step& st) {
  for (const lowered::Stmt& x : st.form.stmts)
    if (!p.vars[size_t(x.var)].isScalar()) return true;
  return false;
}

// Why step k cannot run on the device ("" when it can), filling d.
std::string planStep(const Schedule& s, size_t k, const std::string& tag, DeviceStep* d) {
  const ir::Program& p = s.program;
  const Step& st = s.steps[k];
  const std::string name = p.name + "_" + tag + "_" + std::to_string(k);
  switch (st.kind) {
    case StepKind::Pointwise:
      if (!hasTensorStatement(p, st)) {
        d->kind = DeviceStepKind::HostScalars;
        return "";
      }
      d->kind = DeviceStepKind::Pointwise;
      d->kernel = "fccl_kernel_" + name;
      return "";
    case StepKind::Collective:
      // Off the root, reduce leaves its operand as it was: that copy is not written for device
      // buffers yet. The others are one device collective each.
      if (st.op == ir::Op::Reduce) return "reduce has no device path in programs yet";
      d->kind = DeviceStepKind::Collective;
      return "";
    case StepKind::Reduction:
      return std::string("the whole-tensor reduction ") + ir::opName(st.op) +
             " has no device kernel yet (only Pointwise, Collective and single-pass Fused steps run on "
             "device buffers)";
    case StepKind::Fused: {
      const ir::Var& in = p.vars[size_t(st.input)];
      if (st.gather.size() != 1)
        return "it gathers " + std::to_string(st.gather.size()) +
               " results; the device runs a Fused step as one allreduce ring that forwards exactly one";
      const ir::Var& g = p.vars[size_t(st.gather[0])];
      if (g.dtype != in.dtype)
        return "its gathered result " + g.name + " (" + ir::dtypeName(g.dtype) +
               ") is not of the input's type (" + ir::dtypeName(in.dtype) +
               "): the ring forwards elements of one type";
      for (int32_t b : s.buffers)
        if (b == st.reduced)
          return "its reduced value " + p.vars[size_t(st.reduced)].name +
                 " is kept for a later step (the ring keeps it only in registers)";
      d->type = ir::toFcclType(in.dtype);
      if (in.dtype == ir::DType::Bool || ringElementTypeName(d->type) == nullptr)
        return std::string("no ring reduces ") + ir::dtypeName(in.dtype) + " elements";
      d->op = ir::toFcclOp(st.redop);
      d->kind = DeviceStepKind::FusedRing;
      d->kernel = "fccl_fused_" + name;
      d->alone = "fccl_kernel_" + name;
      return "";
    }
  }
  return "unknown step kind";
}

// The ring's reduced hook for a FusedRing step: the reduced element (divided first for Avg)
// runs the step (fccl_elem_<name>), which stores every result - the gathered one included - and
// the hook returns the gathered one's new value, which the primitive stores into the output
// (that same tensor: the same value again) and forwards to the next rank.
std::string fusedRingTail(const ir::Program& p, const Step& st, const DeviceStep& d,
                          const std::string& name) {
  const std::string t = ringElementTypeName(d.type);
  const std::string fwd = std::to_string(st.gather[0]);
  const std::string store = storageTypeName(p.vars[size_t(st.input)].dtype);
  std::string out = R"(
// The reduced hook of the ring (collectives/prims_device.cuh): every element of this rank's
// slice, once, in the thread that owns it.
struct FcclFusedHook {
  static constexpr bool kHasReduced = true;
  const FcclHookArgs* a;  // the kernel's __grid_constant__ argument, read in place
  int divisor;            // fcclAvg: the rank count (1 otherwise)

  template <class T>
  __device__ __forceinline__ T reduced(size_t i, T g) const {
)";
  if (d.op == fcclAvg) out += "    g = fccl::dev::DevDivideHook::divideOne(g, divisor);\n";
  out += "    fccl_elem_" + name + "(*a, reinterpret_cast<const " + store + "*>(&g), (long long)i);\n";
  out += "    return reinterpret_cast<const T*>(a->ptr[" + fwd + "])[(long long)i - a->base[" + fwd + "]];\n";
  out += R"(  }
  template <class T>
  __device__ __forceinline__ uint4 reducedPack(size_t i, uint4 v) const {
    T* e = reinterpret_cast<T*>(&v);
#pragma unroll
    for (int k = 0; k < int(sizeof(uint4) / sizeof(T)); ++k) e[k] = reduced<T>(i + k, e[k]);
    return v;
  }
};

extern "C" __global__ void __launch_bounds__()" +
         std::to_string(kRingKernelThreads) + ") " + d.kernel +
         "(fccl::dev::DevCollArgs args, const __grid_constant__ FcclHookArgs h) {\n"
         "  const FcclFusedHook hook{&h, args.avgDivisor > 1 ? args.avgDivisor : 1};\n"
         "  fccl::dev::collectiveBody<" +
         t + ", fccl::dev::" + ringOpFunctorName(d.op) +
         ", fccl::dev::DevColl::AllReduce, FcclFusedHook>(args, hook);\n}\n";
  return out;
}

}  // namespace

const char* deviceStepKindName(DeviceStepKind k) {
  static const char* const kNames[] = {"host scalars", "pointwise kernel", "fused ring kernel", "collective"};
  return kNames[int(k)];
}

bool planDeviceProgram(const Schedule& s, const std::string& tag, std::vector<DeviceStep>* out,
                       std::string* why) {
  out->assign(s.steps.size(), DeviceStep());
  for (size_t k = 0; k < s.steps.size(); ++k) {
    const std::string no = planStep(s, k, tag, &(*out)[k]);
    if (!no.empty()) {
      *why = "step " + std::to_string(k) + " (" + stepKindName(s.steps[k].kind) + "): " + no;
      return false;
    }
  }
  // Temporaries that live across steps would need device storage of the runtime's own.
  std::string kept;
  for (int32_t b : s.buffers) kept += (kept.empty() ? "" : ", ") + s.program.vars[size_t(b)].name;
  if (!kept.empty()) {
    *why = "temporaries kept across steps (" + kept + ") have no device storage yet";
    return false;
  }
  return true;
}

std::string deviceStepSource(const Schedule& s, size_t k, const DeviceStep& d, std::string* error) {
  std::string local;
  if (error == nullptr) error = &local;
  if (k >= s.steps.size() || (d.kind != DeviceStepKind::Pointwise && d.kind != DeviceStepKind::FusedRing)) {
    *error = "step " + std::to_string(k) + " has no kernel";
    return "";
  }
  const ir::Program& p = s.program;
  const Step& st = s.steps[k];
  const std::string prefix = "fccl_kernel_";
  const std::string name = d.alone.empty() ? d.kernel.substr(prefix.size()) : d.alone.substr(prefix.size());
  EmitOptions o;
  o.name = name;
  o.prelude = false;
  o.scalarResults = false;  // the host computed them (device_program.h)
  if (d.kind == DeviceStepKind::Pointwise) {
    const std::string hook = emitCuda(p, st.form, o, error);
    return hook.empty() ? "" : cudaPrelude(p) + hook;
  }
  o.reducedVar = st.reduced;
  o.kind = HookKind::FusedElement;
  o.kernel = false;
  const std::string element = emitCuda(p, st.form, o, error);
  o.kind = HookKind::FusedChunk;  // one rank alone: the whole input is the reduced chunk
  o.kernel = true;
  const std::string chunk = element.empty() ? "" : emitCuda(p, st.form, o, error);
  if (chunk.empty()) return "";
  return "#include \"collectives/device_kernels.cuh\"\n" + cudaPrelude(p) + element + chunk +
         fusedRingTail(p, st, d, name);
}

std::vector<uint64_t> packHookArgs(const ir::Program& p, const Bindings& b, int rank, int nranks) {
  size_t slots = p.vars.size();
  for (ir::NodeId id = 0; id < ir::NodeId(p.nodes.size()); ++id)
    if (nodeSlot(p, id) >= 0) ++slots;
  if (slots == 0) slots = 1;  // FcclHookArgs has at least one slot (cuda_prelude.cc)
  std::vector<uint64_t> w(3 * slots + 2, 0);
  for (size_t v = 0; v < p.vars.size(); ++v) {
    const ir::Var& x = p.vars[v];
    if (!x.isScalar()) {
      if (v < b.tensors.size()) {
        w[v] = uint64_t(reinterpret_cast<uintptr_t>(b.tensors[v].data));
        w[slots + v] = uint64_t(b.tensors[v].base);
      }
      continue;
    }
    const double value = v < b.scalars.size() ? b.scalars[v] : 0.0;
    if (ir::isInteger(x.dtype) || x.dtype == ir::DType::Bool) {
      w[2 * slots + v] = uint64_t(int64_t(value));
    } else {
      std::memcpy(&w[2 * slots + v], &value, sizeof(double));
    }
  }
  w[3 * slots] = 0;  // result: none
  w[3 * slots + 1] = uint64_t(uint32_t(nranks)) | (uint64_t(uint32_t(rank)) << 32);
  return w;
}

}  // namespace fccl::fusion::codegen
