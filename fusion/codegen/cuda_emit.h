// cuda_emit.h - CUDA C++ for the pointwise work of a checked program, translated from its
// lowered pointwise form (fusion/lowered/pointwise_form.h, the semantics the CPU backends run
// too): one translation unit per call, self-contained (only <cuda_fp16.h> / <cuda_bf16.h>),
// ready for compileWithNvrtc. The text is deterministic (golden tests, and the NVRTC cache keys
// on it).
//
// The hook ABI, shared by every hook of one program (the host fills one FcclHookArgs):
//  * slot v < vars.size() is program variable v; slot vars.size() + k is the k-th node of the
//    arena whose value the hook cannot compute elementwise (a collective other than all_gather
//    and slice, or a whole-tensor reduction): something before the hook computed it.
//  * ptr[s] / base[s]: tensor storage and the logical index of its element 0 (the slice begin
//    for sliced storage, else 0); logical element i of the tensor is ptr[s][i - base[s]].
//  * scalar[s]: scalar values on entry (floats in .f, integers and bool in .i); result[s]: the
//    scalars the hook assigns, written by global thread 0 (every call writes the same value).
//  * A hook computes logical elements [begin, end) with a grid-stride loop, every thread of the
//    grid taking part. all_gather and slice are the identity at a logical index: a hook whose
//    statements read sliced values must be called on (part of) this rank's slice.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fusion/ir/ir.h"
#include "fusion/lowered/schedule.h"

namespace fccl::fusion::codegen {

enum class HookKind : uint8_t {
  Pointwise,     // fccl_hook_<name>(const FcclHookArgs& a, long long begin, long long end)
  FusedChunk,    // fccl_hook_<name>(const FcclHookArgs& a, const T* reduced, long long begin,
                 //                  long long end): a Fused step's reduced hook, reduced[k] being
                 //                  logical element begin + k of the reduced chunk
  FusedElement,  // fccl_elem_<name>(const FcclHookArgs& a, const T* reduced, long long i): the
                 //   same work for one logical element i whose reduced value is *reduced, with
                 //   no loop and no kernel: the reduced hook of a ring kernel calls it on each
                 //   element in registers (fusion/codegen/fused_ring_kernel.h). Scalar results
                 //   are written as in the others (thread 0 of the grid), so a caller that needs
                 //   them must not use this kind.
};

struct EmitOptions {
  std::string name;  // hook and kernel suffix; empty: the program's name
  HookKind kind = HookKind::Pointwise;
  // FusedChunk and FusedElement: what `reduced` binds. Either the temporary a lowered Fused step binds to the
  // chunk (Step::reduced), or, in a program that was not lowered, the allreduce /
  // reduce_scatter node whose result the chunk is. Exactly one of the two must be set.
  int32_t reducedVar = -1;
  ir::NodeId reducedNode = ir::kNoNode;
  bool prelude = true;  // the includes, helpers and FcclHookArgs (off for further hooks of one TU)
  bool kernel = true;   // the extern "C" __global__ fccl_kernel_<name> wrapper
  // Thread 0 writes the scalars the hook assigns to a.result. Off where the host computes
  // them itself and passes no result array (the CUDA backend's runtime, device_program.h).
  bool scalarResults = true;
};

// Source of the hook for `stmts` (indices into p.stmts, run in this order) of the checked
// program `p`, with the prelude when o.prelude. Returns "" with *error set for an invalid
// statement index or a FusedChunk binding that is missing, doubled or not a tensor
// allreduce / reduce_scatter. Temporaries read by statements outside `stmts` are stored
// (ptr / result slots); temporaries read but not assigned here are loaded from their slots.
std::string emitCuda(const ir::Program& p, const std::vector<int32_t>& stmts, const EmitOptions& o,
                     std::string* error = nullptr);
// The same from a form built already (a lowered step's Step::form, or lowered::buildForm of p with
// FormOptions matching o: chunkVar / chunkNode for a FusedChunk hook, nodeSlots for a program
// that was not lowered).
std::string emitCuda(const ir::Program& p, const lowered::PointwiseForm& f, const EmitOptions& o,
                     std::string* error = nullptr);

// The hooks of a lowered program, one translation unit: each Pointwise step k as a plain hook
// and each Fused step k as a FusedChunk hook bound to Step::reduced, named <program>_<k>
// (kernels fccl_kernel_<program>_<k>). Collective and Reduction steps have no hook.
std::string emitScheduleCuda(const Schedule& s, std::string* error = nullptr);

// A checked program lowered with the default pipeline (split, reorder, fuse, overlap), then
// emitScheduleCuda. What `fcclc --emit=cuda` prints.
std::string emitProgramCuda(const ir::Program& checked, std::string* error = nullptr);

// The slot of node `id` when the hooks read it from FcclHookArgs (see above), else -1.
int32_t nodeSlot(const ir::Program& p, ir::NodeId id);

// The device prelude: includes, helpers (conversions with the reference's rounding, integer
// division, dropout = fusion/ir/dropout.h verbatim) and FcclHookArgs for program `p`.
std::string cudaPrelude(const ir::Program& p);

// fusion/ir/dropout.h as pasted into the prelude (embedded at configure time).
const char* dropoutHeaderSource();

}  // namespace fccl::fusion::codegen
