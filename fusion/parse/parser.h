// parser.h - text DSL -> ir::Program (untyped: literals Untyped, temporaries untyped; layouts,
// dtypes and shapes only on declared variables). Grammar: fusion/parse/grammar.md. Names are
// resolved here (declare before use); types and layouts are the checker's job.
#pragma once

#include <optional>
#include <string_view>

#include "fusion/ir/diagnostics.h"
#include "fusion/ir/ir.h"

namespace fccl::ir::parse {

// Deepest expression nesting accepted (parentheses, unary chains, operator chains); deeper
// input is an error, so no later recursive walk can overflow the stack.
constexpr int kMaxExprDepth = 256;

// Parses `src`. Returns the program when there were no errors, else nullopt with every error
// found in `diags` ("SOURCE:LINE:COL: message", the source name is diags.source()).
// Never throws, never reads past `src`.
std::optional<Program> parseProgram(std::string_view src, Diagnostics& diags);

// The closest of `candidates` to `name` by edit distance, or "" when none is close enough to
// be a plausible typo. Used for "did you mean" hints.
std::string closestName(std::string_view name, const std::vector<std::string>& candidates);

}  // namespace fccl::ir::parse
