// printer.h - canonical text of a Program: one declaration per line, then the statements with
// the fewest parentheses the grammar allows. Parsing the output and printing again gives the
// same text (round trip), before and after check; checker-inserted nodes print as calls.
#pragma once

#include <string>

#include "fusion/ir/ir.h"

namespace fccl::ir {

struct PrintOptions {
  // Append "# TYPE[SHAPE] LAYOUT" to every statement (the checker's result). A comment, so the
  // round trip still holds.
  bool annotate = false;
};

std::string print(const Program& p, const PrintOptions& opts = {});
std::string printExpr(const Program& p, NodeId id);
std::string printLiteral(double v);  // shortest text that reads back as the same double

}  // namespace fccl::ir
