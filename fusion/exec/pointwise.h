// pointwise.h - the tile VM: runs a lowered pointwise form (fusion/lowered/pointwise_form.h, which
// defines what every value means) over a range of logical elements, tile by tile (kTileElems),
// statement by statement within a tile. compile() translates the form once to a flat list of
// kernel calls (each instruction is one tight vectorized loop over a tile,
// fusion/exec/pointwise_ops.h), deciding only where values live: a tile register, a bound tensor
// read or written in place, or a uniform computed once per call. run() only walks that list.
// Invariants: run() is const and thread-compatible (many threads may run one kernel at once on
// disjoint ranges), allocates nothing after a thread's first call (a thread_local tile arena),
// and its results do not depend on the tiling or on how [0, N) is split into calls.
//
// Against the float64 reference (fusion/ref/interpreter.h): f64 programs give bitwise the
// reference's results (same IEEE operations and libm calls). f32 programs round every
// intermediate to float (unit roundoff u = 2^-24; expf/logf/powf within 1 ulp), so a stored f32
// result differs from the reference by the propagated intermediate roundings: |ours - ref| <=
// (k + 1) * u * S where k is the number of float operations on the path and S the sum of the
// magnitudes of the terms (Adam's update: within 1e-6 of S; tests check that). One +, -, *, / or
// sqrt on float inputs, a cast, a comparison, select, min/max, abs, neg and dropout give exactly
// the reference's stored result; rsqrt, exp, log and pow are within 1 ulp. f16/bf16 results are
// within one unit in the last place of the stored type of the reference (exact for a single
// +, -, *, /, sqrt, since float carries more than twice the bits). Integers: + - * wrap where the
// reference computes in double and saturates at the store, so they agree while values stay in
// the type's range.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fusion/exec/pointwise_ops.h"
#include "fusion/ir/ir.h"
#include "fusion/lowered/pointwise_form.h"

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

  // Compiles the lowered form f (its values' meaning: pointwise_form.h). Statements assigning a
  // tensor temporary also store it when Bindings::tensors[var].data is non-null at run time (a
  // buffered temporary, rounded to its dtype); scalar results are computed by runScalars(), not
  // run(). false + *error on a form with node slots (only the CUDA emitter reads those).
  bool compile(const lowered::PointwiseForm& f, std::string* error);
  // lowered::buildForm(p, stmts) (the statements' contract and errors are there), then the above.
  // `p` must be checked; it is not referenced after compile returns.
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
    lowered::VOp op = lowered::VOp::Add;   //   ... its op and operand form
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
