// pointwise.h - the CPU tile evaluator: runs a list of pointwise statements over a range of
// logical elements, tile by tile (kTileElems), statement by statement within a tile. compile()
// lowers the statements once to a flat list of kernel calls (a "tile VM": each instruction is
// one tight vectorized loop over a tile, fusion/exec/pointwise_ops.h); run() only walks that
// list. Invariants: run() is const and thread-compatible (many threads may run one kernel at
// once on disjoint ranges), allocates nothing after a thread's first call (a thread_local tile
// arena), and its results do not depend on the tiling or on how [0, N) is split into calls.
//
// Semantics, and how they relate to the float64 reference (fusion/ref/interpreter.h):
//  * Values are computed in their node's type: f64 in double; f32, f16 and bf16 in float (an
//    f16/bf16 tensor is widened on load and rounded once, to nearest even, when stored or cast);
//    i32/i64 as those integers; bool as a 0/1 byte. Literals are rounded to that compute type.
//  * Tolerance against the reference: f64 programs give bitwise the reference's results (same
//    IEEE operations and libm calls). f32 programs round every intermediate to float (unit
//    roundoff u = 2^-24; expf/logf/powf within 1 ulp), so a stored f32 result differs from the
//    reference by the propagated intermediate roundings: |ours - ref| <= (k + 1) * u * S where k
//    is the number of float operations on the path and S the sum of the magnitudes of the terms
//    (Adam's update: within 1e-6 of S; tests check that). One +, -, *, / or sqrt on float
//    inputs, a cast, a comparison, select, min/max, abs, neg and dropout give exactly the
//    reference's stored result; rsqrt, exp, log and pow are within 1 ulp. f16/bf16 results are
//    within one unit in the last place of the stored type of the reference (exact for a single
//    +, -, *, /, sqrt, since float carries more than twice the bits).
//  * Integers: + - * wrap (two's complement) where the reference computes in double and
//    saturates at the store, so they agree while values stay in the type's range; / truncates,
//    x/0 = 0 (as the reference), MIN/-1 = MIN; integer ^ by squaring, a negative exponent gives
//    0 unless |base| = 1 (the reference's pow then store-truncation). Casts and stores
//    float -> integer truncate toward zero and saturate, NaN -> 0; -> bool is x != 0 (NaN is
//    true); bool -> number is 0/1 (fusion/ref/round.h's rules).
//  * min/max ignore a NaN operand (fmin/fmax, as the reference); comparisons with NaN are false
//    except !=; isfinite is false for +-inf and NaN.
//  * dropout(x, p, seed) uses fusion/ir/dropout.h keyed by the LOGICAL element index, x / (1-p)
//    computed in double: bitwise the reference for f32/f64 results.
//  * Scalar subexpressions (literals, scalar inputs, rank, nranks and anything computed from
//    them only) are evaluated once per run() call, in the same compute types, not per element.
//  * A Slice node is the identity here (elements are addressed by logical index); any other
//    collective or whole-tensor reduction is rejected by compile().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fusion/exec/pointwise_ops.h"
#include "fusion/ir/ir.h"

namespace fccl::fusion {

// Where a variable's elements live for one run: logical element i is at
// data + (i - base) * elemBytes (elemBytes = ir::dtypeBytes of the variable's dtype; bool is one
// byte holding 0 or 1).
struct TensorBinding {
  void* data = nullptr;
  int64_t base = 0;
};

struct Bindings {
  std::vector<TensorBinding> tensors;  // indexed by var; declared tensors and buffered temporaries
  std::vector<double> scalars;         // indexed by var; scalar inputs and scalar results (replicated)
  int rank = 0, nranks = 1;            // for the Rank / NRanks leaves
};

class PointwiseKernel {
 public:
  static constexpr int kTileElems = pw::kTile;

  // Compiles stmts (indices into p.stmts, all pointwise: no collectives, no whole-tensor
  // reductions - those are separate steps; Refs to scalars read Bindings::scalars; Refs to a
  // temporary assigned by an earlier stmt of the same list are tile-local values; Refs to other
  // temporaries read their TensorBinding). false + *error on anything it cannot run. `p` must
  // be checked (no Untyped); it is not referenced after compile returns.
  //
  // A statement assigning a temporary tensor keeps the value tile-local for later statements
  // and, when Bindings::tensors[var].data is non-null at run time, also stores it there (a
  // buffered temporary, rounded to the temporary's dtype). A statement assigning a declared
  // scalar result is computed by runScalars(), not run().
  bool compile(const ir::Program& p, const std::vector<int32_t>& stmts, std::string* error);

  // Runs the statements for logical elements [begin, end): writes declared tensors (rounded to
  // their dtype) and bound temporaries through the bindings. Every tensor the statements read
  // or write (other than a buffered temporary) must be bound with data covering [begin, end);
  // checkBindings() says so once, run() does not check.
  void run(int64_t begin, int64_t end, const Bindings& b) const;

  // Scalars assigned by the statements - declared scalar results (rounded to their dtype) and
  // scalar temporaries - into (*scalars)[var]; other entries are left alone. Cheap (scalar
  // work only).
  void runScalars(const Bindings& b, std::vector<double>* scalars) const;

  // False + *error when `b` lacks a tensor or scalar the statements need.
  bool checkBindings(const Bindings& b, std::string* error) const;

  // For dumps and tests: instructions per tile, and per call (scalar work).
  size_t tileInstructions() const { return body_.size(); }
  size_t scalarInstructions() const { return pre_.size(); }

 private:
  enum class Kind : uint8_t {
    None,     // an unused operand (value 0)
    Reg,      // a tile register (slot in the arena)
    Direct,   // a bound tensor read or written in place (pointer recomputed per tile)
    Uniform,  // one value for the whole call (8 bytes in the arena)
    Bcast,    // a uniform broadcast into a tile register once per call
  };
  struct Value {
    Kind kind = Kind::None;
    pw::CT ct = pw::CT::F64;
    int32_t index = -1;  // Reg/Bcast: slot; Uniform: uniform index; Direct: index in directs_
  };
  struct Instr {
    pw::Kernel fn = nullptr;
    int32_t out = 0, a = 0, b = 0, c = 0;  // value ids
    int32_t n = 1;                         // pre_ only: elements (1, or kTile for a broadcast)
    bool optional = false;                 // a store to a temporary that may be unbound
    bool arith = false;                    // float + - * / (a candidate for fusion)
    ir::Op op = ir::Op::Add;               //   ... its op and operand form
    pw::Form form = pw::Form::VV;
  };
  struct Direct {
    int32_t var = -1;
    int32_t value = -1;
    int32_t elemBytes = 0;
    bool required = false;
  };
  struct Leaf {  // a uniform filled at the start of a call
    enum class From : uint8_t {
      Scalar,
      Rank,
      NRanks
    } from = From::Scalar;
    int32_t var = -1;
    ir::DType dtype = ir::DType::F64;
    int32_t uniform = -1;
  };
  struct ScalarResult {
    int32_t var = -1;
    int32_t value = -1;  // a Uniform value
  };

  class Builder;
  friend class Builder;

  std::vector<Value> values_;
  std::vector<Instr> pre_, body_;
  std::vector<Direct> directs_;
  std::vector<Leaf> leaves_;
  std::vector<uint64_t> uniformInit_;  // initial bytes of every uniform (literals)
  std::vector<ScalarResult> scalarResults_;
  int32_t slots_ = 0;
  int32_t maxScalarVar_ = -1;
};

}  // namespace fccl::fusion
