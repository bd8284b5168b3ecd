// schedule.h - a lowered program: the steps the runtime executes, in order. Produced by the
// pass pipeline (fusion/passes: split, reorder, fuse, overlap, then lowering) and consumed by
// the runtime (src/program_runtime.h), which runs Pointwise steps with the step's compiled
// pointwise form (the JIT or the tile VM) and collectives on the communicator - fused ones with
// the pointwise work inside the collective's reduced hook, chunk by chunk - and by the CUDA
// emitter (fusion/codegen/cuda_emit.h), which makes a hook of each Pointwise and Fused step.
//
// Storage: every declared tensor is a user buffer. A Replicated or Local tensor holds all N
// logical elements; a Sliced one holds only this rank's ir::sliceRange(N, rank, n), so logical
// element i of a sliced tensor is data[i - begin]. Temporaries listed in `buffers` get storage
// of the same shape rule from the runtime; other temporaries live only inside one Pointwise
// step's tiles. Scalars (declared or whole-tensor reduction results) are replicated values.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "fusion/ir/ir.h"
#include "fusion/lowered/pointwise_form.h"

namespace fccl::fusion {

enum class StepKind : uint8_t {
  Pointwise,   // run `stmts` elementwise over `extent`
  Collective,  // one plain collective: `op` from `input` to `output`
  Fused,       // reduce-scatter `input`; the hook runs `stmts` on each reduced chunk of this
               // rank's slice (with `reduced` bound to the chunk); then all-gather `gather`
  Reduction,   // whole-tensor reduction statement `stmts[0]` (Norm, Sum, MaxAll, AnyNonfinite):
               // per-slice partial, plus a tiny allreduce when the operand is sliced
};
const char* stepKindName(StepKind k);

enum class Extent : uint8_t {
  Full,   // every logical element [0, N)
  Slice,  // this rank's sliceRange(N, rank, n)
};

struct Step {
  StepKind kind = StepKind::Pointwise;
  std::vector<int32_t> stmts;     // indices into Schedule::program.stmts, run in this order
  Extent extent = Extent::Full;   // Pointwise
  ir::Op op = ir::Op::AllReduce;  // Collective: AllReduce, ReduceScatter, AllGather, Broadcast, Reduce
  ir::RedOp redop = ir::RedOp::Sum;
  int32_t input = -1;           // var read by the collective (Collective, Fused)
  int32_t output = -1;          // var written by a plain Collective
  int32_t root = -1;            // Broadcast / Reduce: var holding the root (an integer scalar), or -1
  int64_t rootValue = 0;        //   ... or this literal when root == -1
  int32_t reduced = -1;         // Fused: the temporary bound to each reduced chunk
  std::vector<int32_t> gather;  // Fused: replicated vars computed on the slice, all-gathered
  std::string why;              // one line for dumps: which pass made this step and why
  // Added by the lowering (fusion/passes/lower.h has the full contract):
  //  * Collective: stmts = {the statement `output = op(input)`} (for reference only).
  //  * Reduction: `op` is the reduction (Norm, Sum, MaxAll, AnyNonfinite), `input` the var it
  //    reduces (always a variable, never an expression), `output` the scalar it writes,
  //    extent Slice when cross-rank (partial over this rank's slice + a tiny allreduce).
  //  * overlapWith (overlap pass): index of the earlier Pointwise step that produces `input` of
  //    this Collective/Fused step; the runtime (src/program_runtime.cc runOverlapped, FCCL_OVERLAP) runs
  //    that step on a helper thread, marking chunks ready, while this step consumes them.
  //    Running the two one after the other is always correct. -1: none.
  int32_t overlapWith = -1;
  // Pointwise and Fused: `stmts` lowered once to the form every backend translates (Fused:
  // loads of `reduced` address the chunk, Index::Chunk).
  lowered::PointwiseForm form;
};

struct Schedule {
  ir::Program program;  // the lowered program the steps refer to (checked, verified)
  std::vector<Step> steps;
  std::vector<int32_t> buffers;  // temporaries that need storage across steps
};

// Human-readable dump, one step per line, for fcclProgramDump / fcclc --print-schedule.
std::string printSchedule(const Schedule& s);

}  // namespace fccl::fusion
