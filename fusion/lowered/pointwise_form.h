// pointwise_form.h - the lowered pointwise form: what a list of pointwise statements computes,
// with every type, cast, rounding point and addressing decision made, once (pointwise_form.cc).
// The three code generators - the tile VM (fusion/exec/pointwise.h), the C++ JIT
// (fusion/jit/cpu_emit.h) and the CUDA emitter (fusion/codegen/cuda_emit.h) - translate it
// value by value; none of them looks at the IR's types. The float64 reference
// (fusion/ref/interpreter.h) is the other definition, and every backend is tested against it.
//
// Shape: `values`, a typed SSA list in evaluation order (operands always earlier), and `stmts`,
// the statements' effects in program order; statement k's value is ready once values
// [stmts[k-1].valuesEnd, stmts[k].valuesEnd) are computed. Each value has a compute type (CT)
// and is `uniform` (one value per call: literals, scalars, rank, nranks and anything computed
// from them only; backends compute it once) or per element (evaluated at each logical index i).
//
// Semantics, per op (x, y, z: operands; every operand of an arithmetic op has the result's CT):
//  * Const: `value`, already rounded to ct. Scalar: a scalar variable's value (Bindings::scalars
//    or a node slot), rounded to its dtype as a store would, in computeType(dtype). Rank, NRanks:
//    i32. Load: element i of a tensor in its storage `dtype`, widened to computeType(dtype)
//    (f16/bf16 -> float, bool -> 0/1); it reads memory where it stands in the list, so a Load
//    after a Store of the same variable reads the stored value (`storedBy` names that statement).
//  * Cast(x) to `dtype`: x rounded to `dtype` as a store would (floats to nearest even, a double
//    to f16/bf16 in one rounding; to integers truncating toward zero, saturating, NaN -> 0; to
//    bool x != 0, NaN true; i64 -> i32 saturates; an integer to f16/bf16 goes through float),
//    then widened to computeType(dtype). The builder emits no Cast that would be the identity.
//  * Neg Abs Add Sub Mul: IEEE on floats; integers wrap (two's complement). Div: IEEE on floats;
//    integers truncate, x / 0 = 0, MIN / -1 = MIN. Pow: libm pow on floats (the exponent was
//    cast to the base's type); integers by squaring (wrapping), a negative exponent gives 1 for
//    base 1, +-1 for base -1, else 0. Min/Max: a NaN operand is ignored (the other is returned);
//    equal operands (-0 vs +0) return y. Sqrt Rsqrt (1 / sqrt) Exp Log: floats only, libm.
//    IsFinite: float -> bool. Not And Or: bool. Lt Le Gt Ge Eq Ne: -> bool, false with NaN
//    except Ne. Select(c, x, y): c ? x : y, c bool.
//  * Dropout(x, p, seed): x float, p f64, seed i64 (uniform): dropout.h's mask at the LOGICAL
//    index i; a kept element is x / (1 - p) computed in double, then rounded to x's CT.
//  * Store: a declared tensor's element i = value rounded to the tensor's dtype. Buffer: a
//    tensor temporary; later statements use the value itself (not rounded), and it is also
//    stored, rounded to the dtype, where the runtime gave the temporary storage (optional).
//    ScalarResult: a scalar variable's new value (uniform): for declared scalars already
//    rounded to their dtype (a Cast), for temporaries in their CT.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "fusion/ir/ir.h"

namespace fccl::fusion::lowered {

// How a value is held while computing: f16/bf16 widen to float (F32), bool is a 0/1 byte.
enum class CT : uint8_t {
  F64,
  F32,
  I32,
  I64,
  B8
};
CT computeType(ir::DType t);  // Untyped -> F64 (the builder rejects Untyped first)
int ctBytes(CT t);
const char* ctName(CT t);  // "f64", "f32", "i32", "i64", "bool"
// The dtype whose compute form is `ct` with no extra rounding (f16/bf16 compute as F32).
ir::DType ctDType(CT ct);
// f64, f32, i32, i64: stored exactly as computed (no widening on load, no rounding on store).
inline bool storedAsComputed(ir::DType t) {
  return t == ir::DType::F64 || t == ir::DType::F32 || t == ir::DType::I32 || t == ir::DType::I64;
}
inline bool isFloatCT(CT t) { return t == CT::F32 || t == CT::F64; }
inline bool isIntCT(CT t) { return t == CT::I32 || t == CT::I64; }

enum class VOp : uint8_t {
  Const,
  Scalar,
  Rank,
  NRanks,
  Load,
  Cast,
  // unary
  Neg,
  Not,
  Sqrt,
  Rsqrt,
  Exp,
  Log,
  Abs,
  IsFinite,
  // binary
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Min,
  Max,
  Lt,
  Le,
  Gt,
  Ge,
  Eq,
  Ne,
  And,
  Or,
  // ternary
  Select,
  Dropout,
};
const char* vopName(VOp op);  // "add", "load", ...
int vopArity(VOp op);         // operands used: 0..3

// Where a Load reads, a Store writes, or a Scalar comes from. Element i of tensor variable v is
// at Bindings::tensors[v] = {data, base}: data + (i - base) elements, whatever the index kind;
// the kinds tell a backend that names storage (CUDA) which name and offset to use.
enum class Index : uint8_t {
  Full,      // a replicated or local tensor: base 0
  Sliced,    // a sliced tensor: base = this rank's slice begin
  Chunk,     // the chunk a Fused step's reduced hook runs on (base = the chunk's first index)
  NodeSlot,  // not a variable: the value of IR node `node` computed before the list (a
             // collective or whole reduction inside an expression; FormOptions::nodeSlots)
};

struct Value {
  VOp op = VOp::Const;
  CT ct = CT::F64;
  bool uniform = false;
  std::array<int32_t, 3> a{-1, -1, -1};  // operands (value ids)
  double value = 0;                      // Const
  int32_t var = -1;                      // Scalar, Load: the variable (-1 for a NodeSlot)
  ir::DType dtype = ir::DType::F64;      // Scalar, Load: the storage type; Cast: the target
  Index index = Index::Full;             // Scalar (Full or NodeSlot), Load
  int32_t storedBy = -1;                 // Load: the statement of this list that last stored
                                         // `var` before it; -1: the value on entry
  ir::NodeId node = ir::kNoNode;         // the IR node it lowers (messages, comments, slots)
};

enum class StmtKind : uint8_t {
  Store,         // declared tensor `var` (required binding)
  Buffer,        // tensor temporary `var` (optional binding)
  ScalarResult,  // scalar `var` into Bindings::scalars
};

struct Stmt {
  StmtKind kind = StmtKind::Store;
  int32_t var = -1;
  int32_t value = -1;  // its CT is computeType(dtype) for Store and Buffer
  ir::DType dtype = ir::DType::F64;
  Index index = Index::Full;  // Store, Buffer
  int32_t irStmt = -1;        // the IR statement (index into Program::stmts)
  int32_t valuesEnd = 0;      // values [0, valuesEnd) are computed before this statement
  bool readOutside = false;   // a statement of the program outside this list reads `var`
                              // (a temporary then needs storage: CUDA stores it only then)
};

struct PointwiseForm {
  std::vector<Value> values;
  std::vector<Stmt> stmts;
  std::vector<int32_t> irStmts;  // the statement list it was built from, in order
  int32_t maxScalarVar = -1;     // largest var index read from or written to Bindings::scalars
};

struct FormOptions {
  // The chunk of a Fused step's reduced hook: loads of this variable get Index::Chunk.
  int32_t chunkVar = -1;
  // For emitting hooks of a program that was not lowered (CUDA only): collectives other than
  // all_gather and slice, and whole-tensor reductions, inside expressions become NodeSlot
  // values; chunkNode, such a node, is the chunk itself (Index::Chunk). Without nodeSlots they
  // are errors ("... runs as its own step").
  bool nodeSlots = false;
  ir::NodeId chunkNode = ir::kNoNode;
};

// Lowers statements `stmts` (indices into p.stmts, run in this order) of the checked program p.
// slice() and all_gather() are the identity at a logical index (a list that reads sliced values
// runs on this rank's slice; a Fused hook's `v = all_gather(X)` stores X at v's own indices).
// false + *error for what no backend can run: an unchecked program, a collective or whole
// reduction (unless nodeSlots), a tensor value assigned to a scalar, an input assigned, an op
// undefined on its type.
bool buildForm(const ir::Program& p, const std::vector<int32_t>& stmts, const FormOptions& o,
               PointwiseForm* out, std::string* error);

// One line per value and statement, for fcclc --print-lowered and tests:
//   %5 = load.f32 m[sliced] : f32
//   %9 = sub.f32 %7, %8  uniform
//   store m[sliced] : f32 = %11  # m = beta1 * m + (1 - beta1) * gs
std::string printForm(const ir::Program& p, const PointwiseForm& f);

}  // namespace fccl::fusion::lowered
