// cuda_program.cc - emitProgramCuda: every pointwise statement of a checked program as hooks
// of one translation unit, grouped the way lowering groups them, for `fcclc --emit=cuda` and
// for compile-checking every program with NVRTC. When lowering (fusion/passes) is used, its
// Schedule's Pointwise and Fused steps map one to one onto emitCuda calls instead.
#include "fusion/codegen/cuda_emit.h"

namespace fccl::fusion::codegen {

namespace {

// The nodes of statement `s`'s tree that a hook reads from slots (computed outside hooks).
void slotNodes(const ir::Program& p, ir::NodeId id, std::vector<ir::NodeId>* out) {
  if (nodeSlot(p, id) >= 0) {
    out->push_back(id);
    return;  // its operands are the collective's / reduction's business
  }
  for (int i = 0; i < ir::opArity(p.node(id).op); ++i)
    slotNodes(p, p.node(id).args[static_cast<size_t>(i)], out);
}

struct Group {
  std::vector<int32_t> stmts;
  ir::NodeId reduced = ir::kNoNode;  // the allreduce / reduce_scatter the group is fused into
};

}  // namespace

std::string emitProgramCuda(const ir::Program& checked, std::string* error) {
  // A value computed outside the hooks (a collective or a whole-tensor reduction) must be
  // complete before a hook reads it, so a statement that needs one starts a new hook. When the
  // statement's only such value is a tensor allreduce / reduce_scatter, the new hook is that
  // collective's reduced hook: the CoCoNeT fusion (split + reorder + fuse) of that collective.
  std::vector<Group> groups;
  for (size_t s = 0; s < checked.stmts.size(); ++s) {
    std::vector<ir::NodeId> slots;
    slotNodes(checked, checked.stmts[s].value, &slots);
    if (!slots.empty() || groups.empty()) {
      groups.emplace_back();
      const ir::Node& n = checked.node(slots.empty() ? 0 : slots[0]);
      const bool fusable = slots.size() == 1 && !n.isScalar() &&
                           (n.op == ir::Op::AllReduce || n.op == ir::Op::ReduceScatter);
      if (fusable) groups.back().reduced = slots[0];
    }
    groups.back().stmts.push_back(static_cast<int32_t>(s));
  }
  std::string out = cudaPrelude(checked);
  for (size_t g = 0; g < groups.size(); ++g) {
    EmitOptions o;
    o.name = checked.name + "_" + std::to_string(g);
    o.prelude = false;
    if (groups[g].reduced != ir::kNoNode) {
      o.kind = HookKind::FusedChunk;
      o.reducedNode = groups[g].reduced;
    }
    const std::string hook = emitCuda(checked, groups[g].stmts, o, error);
    if (hook.empty()) return "";
    out += hook;
  }
  return out;
}

}  // namespace fccl::fusion::codegen
