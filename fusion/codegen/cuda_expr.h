// cuda_expr.h - internal to fusion/codegen: CUDA C++ spellings of element types, literals,
// conversions and operators. Every value is held in its dtype's compute type (f16/bf16 in
// float, bool as bool); an Expr carries its C++ precedence so the emitter adds only the
// parentheses the expression needs.
#pragma once

#include <string>

#include "fusion/ir/ir.h"

namespace fccl::fusion::codegen {

struct Expr {
  std::string text;
  int prec = 0;  // C++ precedence: 0 primary/call, 3 unary, 5 * /, 6 + -, 9 < <=, 10 == !=,
                 // 14 &&, 15 ||
};

const char* computeTypeName(ir::DType t);  // "float" for f32/f16/bf16, "long long" for i64 ...
const char* storageTypeName(ir::DType t);  // "__half", "__nv_bfloat16", else computeTypeName

// A literal of dtype t (rounded to t first, as the CPU backend's scalarToCompute does).
Expr literal(ir::DType t, double v);
// `e` (a value of dtype from) as a value of dtype to, rounded like the reference's Cast.
Expr convert(ir::DType from, ir::DType to, Expr e);
// Storage element <-> compute value.
std::string loadFrom(ir::DType t, const std::string& element);
std::string storeAs(ir::DType t, const std::string& value);
// A FcclScalar field (slot s) read as a value of dtype t: "(float)a.scalar[4].f".
std::string scalarField(ir::DType t, const std::string& field);

// Pointwise op `op` with result dtype `t` over operand expressions of dtypes `at` (args[0..]).
// `index` is the C++ name of the logical element index (dropout's counter). Returns false for
// an op that is not pointwise.
bool pointwiseExpr(ir::Op op, ir::DType t, const ir::DType* at, const Expr* args, const std::string& index,
                   Expr* out);

}  // namespace fccl::fusion::codegen
