// lexer.h - tokens of the fusion DSL. Newlines end declarations and statements, except inside
// parentheses (the lexer drops them there, as Python does). `#` starts a comment to end of
// line. The lexer never reads past the input and reports bad characters as Error tokens.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "fusion/ir/diagnostics.h"
#include "fusion/ir/ir.h"

namespace fccl::ir::parse {

enum class Tok : uint8_t {
  End,
  Newline,
  Ident,
  Number,
  LParen,
  RParen,
  LBracket,
  RBracket,
  Comma,
  Colon,
  Assign,
  Plus,
  Minus,
  Star,
  Slash,
  Caret,
  Lt,
  Le,
  Gt,
  Ge,
  EqEq,
  NotEq,
  AndAnd,
  OrOr,
  Bang,
};
const char* tokName(Tok t);  // for messages: "'+'", "identifier", "end of line"

struct Token {
  Tok kind = Tok::End;
  std::string_view text;  // a view into the source
  double number = 0;      // Number: its value
  bool integral = false;  // Number: written without '.' or exponent
  Loc loc;
};

// Splits `src` into tokens, always ending with End (preceded by a Newline unless empty).
// Lexical errors (stray characters, malformed or out-of-range numbers) go to `diags`.
std::vector<Token> lex(std::string_view src, Diagnostics& diags);

}  // namespace fccl::ir::parse
