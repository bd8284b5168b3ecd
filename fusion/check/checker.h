// checker.h - types, shapes and layouts of a parsed program, and the IR verifier.
//
// check() turns a parsed (untyped) Program into a checked one: every node gets its dtype,
// layout and shape; literals adopt their context's type; integer scalars used with floats get
// an implicit Cast; a store of a sliced value into a replicated tensor gets an implicit
// all_gather, of a replicated tensor into a sliced one an implicit slice. The layout rules
// (fusion/check/layouts.md):
//
//   operation                          operand layout(s)        result
//   allreduce(op, x)                   local                    replicated
//   reduce_scatter(op, x)              local (tensor)           sliced
//   all_gather(x)                      sliced                   replicated
//   broadcast(x, root)                 local | replicated       replicated
//   reduce(op, x, root)                local                    local (reduced on root)
//   slice(x)                           replicated (tensor)      sliced
//   pointwise a (op) b                 R,R -> R   S,S -> S   S,R -> S   L,R -> L   L,L -> L
//                                      L,S -> error (all_gather the sliced one)
//                                      scalar R: no effect; scalar L: R -> L, L -> L, S -> S
//   norm/sum/max/any_nonfinite(x)      sliced -> replicated scalar (crossRank: partials +
//                                      a tiny allreduce); replicated -> replicated; local -> local
//   store into replicated              R ok; S -> implicit all_gather; L error
//   store into sliced                  S ok; R -> implicit slice; L error; scalar fills
//   store into local                   L ok; R ok; S error
//
// verify() checks the invariants of ir.h plus these rules on any program (no conversions), so
// every pass can run it on its output.
#pragma once

#include <optional>

#include "fusion/ir/diagnostics.h"
#include "fusion/ir/ir.h"

namespace fccl::ir::check {

// Returns the checked program, or nullopt with the errors (file:line:col) in `diags`.
std::optional<Program> check(const Program& parsed, Diagnostics& diags);

// True when `p` is a well-formed checked program; otherwise false with the violations.
bool verify(const Program& p, Diagnostics& diags);

}  // namespace fccl::ir::check
