// cuda_expr.h - internal to fusion/codegen: CUDA C++ spellings of element types, literals,
// conversions and the lowered form's ops (fusion/lowered/pointwise_form.h, which defines them).
// Every value is held in its compute type (f16/bf16 in float, bool as bool); an Expr carries its
// C++ precedence so the emitter adds only the parentheses the expression needs.
#pragma once

#include <string>

#include "fusion/ir/ir.h"
#include "fusion/lowered/pointwise_form.h"

namespace fccl::fusion::codegen {

struct Expr {
  std::string text;
  int prec = 0;  // C++ precedence: 0 primary/call, 3 unary, 5 * /, 6 + -, 9 < <=, 10 == !=,
                 // 14 &&, 15 ||
};

const char* computeTypeName(ir::DType t);  // "float" for f32/f16/bf16, "long long" for i64 ...
const char* storageTypeName(ir::DType t);  // "__half", "__nv_bfloat16", else computeTypeName

// A literal of dtype t (rounded to t first; the lowered form's constants already are).
Expr literal(ir::DType t, double v);
// `e`, a value of compute type `from`, as a value of dtype `to`: the lowered form's Cast.
Expr convert(lowered::CT from, ir::DType to, Expr e);
// Storage element <-> compute value.
std::string loadFrom(ir::DType t, const std::string& element);
std::string storeAs(ir::DType t, const std::string& value);
// A FcclScalar field (slot s) read as a value of dtype t: "(float)a.scalar[4].f".
std::string scalarField(ir::DType t, const std::string& field);

// Lowered op `op` (not a leaf, Load or Cast) over operands `args` (their spellings; the first
// operand's compute type is `at`). `index` is the C++ name of the logical element index
// (dropout's counter).
Expr opExpr(lowered::VOp op, lowered::CT at, const Expr* args, const std::string& index);

}  // namespace fccl::fusion::codegen
