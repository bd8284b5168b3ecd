// interpreter.h - the float64 reference interpreter: what a checked program means. It runs all
// ranks at once, computing every value in double precision; a store into a declared tensor or
// scalar result rounds to that variable's dtype (round.h); temporaries keep full precision;
// casts round to their type. Inputs are rounded to their declared dtype on entry.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fusion/ir/ir.h"

namespace fccl::ir::ref {

using TensorMap = std::map<std::string, std::vector<double>>;

struct Inputs {
  int nranks = 1;
  std::map<std::string, int64_t> symbols;  // shape symbols: N=1000
  std::map<std::string, double> scalars;   // every `scalar` input and inout scalar
  // Per rank (size nranks), every in/inout tensor in its storage form: local and replicated
  // tensors whole (a replicated one may be given on rank 0 only; copies must be equal),
  // sliced tensors as that rank's sliceRange() part. Out tensors need not be given.
  std::vector<TensorMap> tensors;
};

struct Outputs {
  std::vector<TensorMap> tensors;                      // per rank, every declared tensor
  std::vector<std::map<std::string, double>> scalars;  // per rank, every scalar result
};

// Runs `p` (a checked program: check::verify holds). Returns false with *error set on bad
// inputs (missing or mis-sized tensor, unbound symbol, replicated copies that differ) or a
// run-time fault (root out of range).
bool run(const Program& p, const Inputs& in, Outputs* out, std::string* error);

// Evaluation semantics shared with tests: collectives reduce in rank order 0..n-1; min/max
// ignore NaN (fmin/fmax); integer division truncates, x/0 is 0 for integers; whole-tensor max of
// an empty tensor is -inf; reduce leaves non-root ranks with their own operand.

}  // namespace fccl::ir::ref
