// lower.h - runs a pass pipeline on a checked program and lowers the result to a Schedule
// (fusion/lowered/schedule.h), the runtime's and the CUDA emitter's input; each Pointwise and
// Fused step carries its statements lowered once to the pointwise form every code generator
// translates (Step::form, fusion/lowered/pointwise_form.h). The contract, per step kind:
//
// Pointwise  stmts run in order, element by element (any tiling), over `extent`: Full = every
//            logical element of the statements' tensors (all have the same element count),
//            Slice = this rank's sliceRange. Every tensor statement of a step has the same
//            element count; a step of scalar statements (extent Full) evaluates each once.
//            No statement contains a collective other than slice() (a read of this rank's part
//            of a replicated tensor) or a whole-tensor reduction.
// Collective stmts = {s}, statement s is `output = op(input)` (input a variable; Broadcast and
//            Reduce: root var or rootValue). A collective nested in an expression, or one whose
//            operand or root is an expression, is first moved into its own temporary statement
//            (`allreduce_1 = allreduce(sum, x)`, `all_gather_in = <expr>`); those temporaries
//            are in `buffers`. all_gather(reduce_scatter(op, x)) with nothing between is
//            lowered back to one allreduce.
// Fused      reduce-scatter `input` with `redop`; on each reduced chunk of this rank's slice,
//            bind `reduced` (a sliced temporary) to the chunk and run `stmts` over that chunk's
//            logical indices (the statement `reduced = reduce_scatter(redop, input)` itself is
//            not in stmts: the collective is it). Hook statements are sliced pointwise
//            statements that read slices of anything (scalars, slice(replicated), sliced vars,
//            `reduced`, temporaries of earlier hook statements) and write sliced tensors or
//            temporaries, or `v = all_gather(X)` with v in `gather`: X is evaluated on the chunk
//            and stored at the same logical indices of v (v's own slice; all_gather(X) restricted
//            to this rank's slice is X). After the last chunk, each var of `gather` (replicated,
//            full storage) is all-gathered in place. Nothing in the hook reads a replicated or
//            local tensor whole, and no hook statement is scalar (fuse hoists those), so chunks
//            may run in any order and a rank with an empty slice runs no hook at all.
// Reduction  stmts = {s}: `output = op(input)` for op Norm/Sum/MaxAll/AnyNonfinite; extent Slice
//            (cross-rank: partial over this rank's slice, then a tiny allreduce) or Full.
//
// `buffers`: temporaries that need storage: read by a later step, written by a Collective or
// Reduction step, or gathered by a Fused step. Other temporaries live inside one step's tiles.
#pragma once

#include <string>
#include <vector>

#include "fusion/ir/ir.h"
#include "fusion/lowered/schedule.h"

namespace fccl::fusion {

// Runs `pipeline` (pass names, see passes::parsePipeline) on a copy of `checked`, running
// check::verify after every pass, then lowers. `dumps` (optional) gets the IR after each pass
// ("# after NAME" then the annotated program). false + *error for an unknown pass name, an input
// that does not verify, or an internal error (a pass or the lowering produced an invalid
// program; the message names it). A program that cannot be fused lowers unfused.
bool lower(const ir::Program& checked, const std::vector<std::string>& pipeline, Schedule* out,
           std::vector<std::string>* dumps, std::string* error);

}  // namespace fccl::fusion
