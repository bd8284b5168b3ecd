// ir.h - the fusion IR: element types, layouts, shapes, a program's variables, its expression
// nodes (one arena, operands by index, always earlier in the arena) and its statements, run in
// order. Parser, checker, passes, executors and the reference interpreter all share these types.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fccl::ir {

// ---------------------------------------------------------------------------------------------
// Element types.
enum class DType : uint8_t {
  Untyped,  // a numeric literal (or literal-only expression) before the checker types it;
            // never present in a checked program
  F64,
  F32,
  F16,
  BF16,
  I32,
  I64,
  Bool,
};
const char* dtypeName(DType t);                   // "f32"; "untyped" for Untyped
bool parseDType(std::string_view s, DType* out);  // "f64".."bool"; false when unknown
inline bool isFloat(DType t) {
  return t == DType::F64 || t == DType::F32 || t == DType::F16 || t == DType::BF16;
}
inline bool isInteger(DType t) { return t == DType::I32 || t == DType::I64; }
int dtypeBytes(DType t);  // storage size; 0 for Untyped

// ---------------------------------------------------------------------------------------------
// Layouts: where the elements of a value live across the n ranks of a communicator.
enum class Layout : uint8_t {
  Replicated,  // every rank holds the whole value and all copies are equal
  Sliced,      // rank r holds only sliceRange(N, r, n) of the logical value (tensors only)
  Local,       // every rank holds the whole value, and the copies differ (e.g. a gradient)
};
const char* layoutName(Layout l);  // "replicated" | "sliced" | "local"
bool parseLayout(std::string_view s, Layout* out);

// The one definition of sliced storage: rank r of n owns [begin, end) of a tensor of logical
// length total, S = ceil(total/n), begin = min(total, r*S), end = min(total, (r+1)*S). The last
// ranks may own an empty range. Everything (checker, executors, interpreter, tests) uses it.
struct SliceRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};
inline SliceRange sliceRange(int64_t total, int rank, int nranks) {
  if (total <= 0 || nranks <= 0 || rank < 0 || rank >= nranks) return {0, 0};
  const int64_t s = (total + nranks - 1) / nranks;
  const int64_t b = s * rank < total ? s * rank : total;
  const int64_t e = s * (rank + 1) < total ? s * (rank + 1) : total;
  return {b, e};
}

// Collective reduction operators.
enum class RedOp : uint8_t {
  Sum,
  Prod,
  Min,
  Max,
  Avg
};
const char* redOpName(RedOp op);  // "sum" ...
bool parseRedOp(std::string_view s, RedOp* out);

// ---------------------------------------------------------------------------------------------
// Source locations: 1-based line and column in the program text; {0,0} for synthesized nodes.
struct Loc {
  int32_t line = 0;
  int32_t col = 0;
};

// Shapes. A dimension is an integer constant or a symbol (N, M) bound at launch from buffer
// sizes. The empty shape is a scalar. Pointwise operations need equal element counts, decided
// symbolically: the product of constants and the multiset of symbols must be equal ([N,4] and
// [4,N] match; [N] and [M] do not, even if N == M at launch).
struct Dim {
  int32_t sym = -1;  // >= 0: index into Program::symbols; -1: constant `size`
  int64_t size = 0;
};
using Shape = std::vector<Dim>;
bool sameElementCount(const Shape& a, const Shape& b);

// ---------------------------------------------------------------------------------------------
// Variables: declared tensors and scalars, and temporaries (`t = expr`, assigned exactly once).
enum class VarKind : uint8_t {
  In,      // input tensor, read-only
  Out,     // output tensor or scalar result; written before it is read
  InOut,   // read and written
  Scalar,  // scalar input bound at launch (always replicated, shape empty)
  Temp,    // a let; its type, layout and shape are the checker's (Untyped before check)
};
const char* varKindName(VarKind k);  // "in" | "out" | "inout" | "scalar" | "temp"

struct Var {
  std::string name;
  VarKind kind = VarKind::Temp;
  DType dtype = DType::Untyped;
  Layout layout = Layout::Replicated;
  Shape shape;  // empty: a scalar
  Loc loc;      // where it was declared (temporaries: first assignment)
  bool isScalar() const { return shape.empty(); }
  bool isTensorDecl() const { return kind != VarKind::Temp && kind != VarKind::Scalar; }
};

// ---------------------------------------------------------------------------------------------
// Expression nodes.
enum class Op : uint8_t {
  // leaves
  Literal,  // `value`; dtype Untyped until checked (then the context's type)
  Ref,      // the current value of Program::vars[var] (sequential semantics, see Program)
  NRanks,   // i32 replicated scalar: the communicator size n
  Rank,     // i32 local scalar: this rank's index
  // pointwise unary (args[0])
  Neg,
  Not,
  Sqrt,
  Rsqrt,
  Exp,
  Log,
  Abs,
  IsFinite,
  Cast,  // to the node's dtype; `implicit` when the checker inserted it (integer promotion)
  // pointwise binary (args[0], args[1]); comparisons give Bool; Pow's exponent may be integer
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
  // pointwise ternary
  Select,   // (cond, a, b)
  Dropout,  // (x, p, seed): see dropout.h; the element index is the GLOBAL logical index
  // collectives on args[0]; `redop` for AllReduce, ReduceScatter, Reduce; args[1] = root
  // (integer replicated scalar) for Broadcast and Reduce
  AllReduce,      // local -> replicated
  ReduceScatter,  // local -> sliced
  AllGather,      // sliced -> replicated (`implicit`: inserted by the checker at an assignment)
  Broadcast,      // local|replicated -> replicated
  Reduce,         // local -> local, the reduced value on root; other ranks keep their operand
  Slice,          // replicated -> sliced: this rank's slice, no communication
  // whole-tensor reductions to a scalar; `crossRank` when the operand is sliced (per-slice
  // partial, then a tiny allreduce), else a local computation
  Norm,
  Sum,
  MaxAll,
  AnyNonfinite,
};
const char* opName(Op op);     // the surface spelling: "+", "sqrt", "allreduce", "max" (MaxAll)
int opArity(Op op);            // number of args used: 0..3
bool isCollective(Op op);      // AllReduce .. Slice (Slice moves no data but changes layout)
bool isWholeReduction(Op op);  // Norm .. AnyNonfinite
bool isComparison(Op op);      // Lt .. Ne

using NodeId = int32_t;
constexpr NodeId kNoNode = -1;

struct Node {
  Op op = Op::Literal;
  DType dtype = DType::Untyped;        // result element type (Bool for comparisons)
  Layout layout = Layout::Replicated;  // result layout; scalars are Replicated or Local
  RedOp redop = RedOp::Sum;            // collectives with an op
  bool implicit = false;               // inserted by the checker (Cast, AllGather, Slice)
  bool crossRank = false;              // whole-tensor reduction over a sliced operand
  std::array<NodeId, 3> args{kNoNode, kNoNode, kNoNode};
  int32_t var = -1;  // Ref: index into Program::vars
  double value = 0;  // Literal
  Shape shape;       // logical result shape; empty for scalars
  Loc loc;
  bool isScalar() const { return shape.empty(); }
};

// One statement: vars[var] = nodes[value]. A write to an out/inout tensor stores the value,
// rounded to the tensor's dtype; a temporary binds it (at full precision in the reference).
// A scalar value assigned to a tensor fills it. Statements run in order; a Ref reads the value
// its variable holds after the preceding statements.
struct Stmt {
  int32_t var = -1;
  NodeId value = kNoNode;
  Loc loc;
};

// A program. Invariants (checked by check::verify):
//  * every args[i] of nodes[k] that the op uses is in [0, k): the arena is topologically
//    ordered, so evaluating nodes in index order is always legal;
//  * every node is reachable from exactly one statement (no sharing across statements, since
//    a Ref means different things before and after a write); sharing inside one is allowed;
//  * after check: no Untyped dtype, binary operands have equal dtypes (except Pow's integer
//    exponent), layouts follow fusion/check/layouts.md, temporaries are assigned once and
//    before use, out tensors are written before they are read.
struct Program {
  std::string name;                  // from `program NAME`
  std::string source;                // source name for diagnostics (file path or "<string>")
  std::vector<std::string> symbols;  // shape symbols, in order of first appearance
  std::vector<Var> vars;
  std::vector<Node> nodes;
  std::vector<Stmt> stmts;

  NodeId add(Node n) {
    nodes.push_back(std::move(n));
    return static_cast<NodeId>(nodes.size() - 1);
  }
  const Node& node(NodeId id) const { return nodes[static_cast<size_t>(id)]; }
  Node& node(NodeId id) { return nodes[static_cast<size_t>(id)]; }
  int findVar(std::string_view name) const;     // -1 when absent
  int findSymbol(std::string_view name) const;  // -1 when absent
  int internSymbol(std::string_view name);      // finds or appends
};

// "f32[N, 4] sliced", "i32 replicated" - for messages and printer annotations.
std::string shapeString(const Program& p, const Shape& s);
std::string typeString(const Program& p, DType t, const Shape& s, Layout l);

}  // namespace fccl::ir
