// fused_util.h - shared pieces of the tests/fused suite: parse + check a program text, build
// deterministic inputs for it, compute the float64 reference (fusion/ref/interpreter.h) in the
// test process, run the program through the public C API on one rank with that rank's own
// buffers, and compare every output with the reference within the tolerance below.
//
// TOLERANCE (derived from the statement in fusion/exec/pointwise.h; |ref| is the reference
// value of the element, M the largest |ref| of that output over all ranks and elements, F a
// per-output magnitude floor (the scale of the terms that feed it, given by each test)):
//   bool, i32, i64 outputs ............ exact.
//   "f64 path" (every float value feeding the output, collectives included, is f64):
//       |ours - ref| <= 1e-12 * (|ref| + max(M, F)). pointwise.h promises bitwise equality for
//       f64 pointwise work; the slack (about 1e4 units of 2^-53) covers the collectives, which
//       may sum the ranks in another order than the reference's 0..n-1, and whole-tensor
//       reductions summed per slice.
//   "f32 path" (any f32/f16/bf16 computation feeds the output, e.g. an f64 output cast from an
//       f32 reduce): |ours - ref| <= 1e-5 * (|ref| + max(M, F)). pointwise.h bounds an f32
//       result by (k + 1) * u * S (u = 2^-24, k the float operations on the path, S the sum of
//       the magnitudes of the terms); k <= ~20 for these programs and S <= a small multiple of
//       max(M, F) for the inputs we generate (well-conditioned: no cancellation that is not
//       bounded by F), so (k + 1) * u * S <= ~2.5e-6 * max(M, F); 1e-5 leaves a factor 4.
//       The f32 collectives (sums in another order, rounded to f32 at each step) are inside the
//       same bound (n - 1 <= 7 more roundings of terms bounded by S).
//   f16 / bf16 stored outputs: the f32-path bound plus ONE unit in the last place of the stored
//       type at |ref| (pointwise.h: within one ulp; a correctly rounded value of an f32 result
//       that is itself within the f32 bound can land one ulp away at a rounding boundary).
//       f16 gradients are generated as small multiples of 2^-10, so every f16 collective sum is
//       exact and needs no f16 term.
//   A non-finite reference value must be matched exactly (same infinity, or NaN for NaN).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "fccl.h"
#include "fusion/ir/ir.h"
#include "fusion/ref/interpreter.h"
#include "harness.h"

namespace fccltest {
// GoogleTest prints a Mode parameter by name (ctest entry names stay readable).
inline void PrintTo(Mode m, std::ostream* os) { *os << modeName(m); }
}  // namespace fccltest

namespace fusedtest {

namespace ir = fccl::ir;
namespace ref = fccl::ir::ref;
using fccltest::Mode;

constexpr double kRtolF64 = 1e-12;
constexpr double kRtolF32 = 1e-5;

// Parses and checks `text`; nullopt with the diagnostics in *errors on failure.
std::optional<ir::Program> parseCheck(const std::string& text, std::string* errors,
                                      const std::string& name = "<string>");

// Per declared output (out / inout tensor or scalar result): true when an f32/f16/bf16
// computation feeds it (the "f32 path" above), false for an f64-only path.
std::map<std::string, bool> lowPrecisionPaths(const ir::Program& p);

// Deterministic uniform in [0, 1) from a seed and up to three integers (splitmix64).
double unit(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0);
uint64_t hashName(const std::string& s);

// Everything one case needs on every rank: inputs in storage form and the reference results.
struct Case {
  std::string label;  // "sgd N=1000" - for failure messages
  int nranks = 1;
  std::map<std::string, int64_t> symbols;  // N=..., T=...
  std::map<std::string, double> scalars;   // scalar inputs and inout scalars (step 1)
  std::vector<ref::TensorMap> inputs;      // per rank, every in/inout tensor in storage form
  std::vector<ref::Outputs> steps;         // reference after launch 1, 2, ...
  std::map<std::string, double> floors;    // F per output name (default 1)
  std::map<std::string, bool> lowPrec;     // lowPrecisionPaths()
  std::map<std::string, double> maxAbs;    // M per output name, over all ranks and steps
};

// Logical element count of a declared variable under `symbols`; storage range on `rank`.
int64_t logicalCount(const ir::Program& p, const ir::Var& v, const std::map<std::string, int64_t>& symbols);
ir::SliceRange storageRange(const ir::Program& p, const ir::Var& v,
                            const std::map<std::string, int64_t>& symbols, int rank, int nranks);

// Value of declared var `name` at logical index g on rank r (rank ignored by the builder for
// replicated and sliced tensors).
using ValueFn = std::function<double(const std::string& name, int rank, int64_t g)>;

// The text of program `name`: a stock program (fcclProgramGetStock: fusion/stock/NAME.fccl as
// compiled into the library), else the test program tests/fusion/programs/NAME.fccl ("features");
// "" when there is neither.
std::string programText(const std::string& name);

// Inputs and scalars for a stock program of fusion/stock (sgd, adam, adamw, lamb, loss_scaling,
// clip_global_norm, bias_dropout_residual, mixed_precision) or the test program features: ranges where
// the math is well-conditioned (positive second moments, small gradients, weights around 1),
// f16 gradients as multiples of 2^-10 (exact f16 sums over up to 8 ranks); withInf puts +inf
// in the last rank's gradient (loss_scaling's skip path). floors: per-var error floors.
struct ProgramSpec {
  std::map<std::string, double> scalars;
  std::map<std::string, double> floors;
  ValueFn values;
};
ProgramSpec stockProgramSpec(const std::string& prog, int64_t N, bool withInf, int nranks, uint64_t seed);

// Fills c->inputs (rounded to each var's dtype), runs the reference `steps` times (inout
// tensors and inout scalars of step k feed step k+1) and fills c->steps, c->lowPrec and
// c->maxAbs. False + *error when the reference rejects the inputs.
bool buildCase(const ir::Program& p, Case* c, const ValueFn& values, int steps, std::string* error);

// The tolerance for one element (see the top of this file).
double tolerance(ir::DType stored, bool lowPrec, double ref, double M, double F);

// Runs `text` on this rank through the C API: create, compile with `schedule` (nullptr: the
// default pipeline), check the dumps of every stage, bind this rank's own buffers (sliced
// tensors: only the fcclSliceRange part), launch c.steps.size() times on evolving state and
// compare every output and scalar result with the reference after each launch, and check that
// `in` tensors are unchanged. Failures, each naming `what`, are appended to *details, or
// recorded for this rank (RVERIFY style) when details is null.
// Returns false when something failed on this rank.
bool runCaseOnRank(fcclComm_t comm, int rank, const std::string& text, const ir::Program& p,
                   const char* schedule, const Case& c, const std::string& what, bool checkDumps = true,
                   std::string* details = nullptr);
// Records, for this rank, the list of failing cases and then as many of their detail blocks
// (runCaseOnRank's *details) as the harness keeps.
void recordCaseFailures(const std::vector<std::string>& failingCases,
                        const std::vector<std::string>& details);

// "default" for nullptr.
inline const char* scheduleName(const char* s) { return s ? s : "default"; }

}  // namespace fusedtest
