// rules.h - the typing and layout rules of one node, given its operands' (already computed)
// types. Shared by the checker (which first applies the implicit conversions) and by verify
// (which applies none), so both enforce exactly the table in fusion/check/layouts.md.
#pragma once

#include <string>

#include "fusion/ir/ir.h"

namespace fccl::ir::check {

struct ValueType {
  DType dtype = DType::Untyped;
  Layout layout = Layout::Replicated;
  Shape shape;             // empty: scalar
  bool crossRank = false;  // whole-tensor reduction of a sliced operand
};

// Result type of p.node(id) from p.node(args). On a rule violation returns false with a
// message in *err (and the location to report in *errLoc). Untyped operands are accepted where
// the result can still adopt a type later (arithmetic on literals); verify rejects Untyped.
bool inferNode(const Program& p, NodeId id, ValueType* out, std::string* err, Loc* errLoc);

// Pointwise layout combination of two operands (scalars are Replicated or Local), or false
// with the user-facing message when a local and a sliced tensor meet.
bool combineLayouts(const Program& p, NodeId a, NodeId b, Layout* out, std::string* err);

// How an operand is named in messages: a variable's name, else the expression's text.
std::string describe(const Program& p, NodeId id);

// Whether a value of (layout, scalar?) may be stored into `target` as is (Ok), needs an
// implicit all_gather (Gather) or slice (Slice), or is an error (message in *err).
enum class StoreKind {
  Ok,
  Gather,
  Slice,
  Error
};
StoreKind storeRule(const Program& p, const Var& target, NodeId value, std::string* err);

}  // namespace fccl::ir::check
