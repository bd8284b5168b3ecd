// lexer.cc - hand-written scanner for the fusion DSL (see lexer.h, grammar.md). Numbers are
// parsed with std::from_chars so "1e-8" means the same on every locale.
#include "fusion/parse/lexer.h"

#include <charconv>
#include <cmath>

namespace fccl::ir::parse {

const char* tokName(Tok t) {
  switch (t) {
    case Tok::End:
      return "end of input";
    case Tok::Newline:
      return "end of line";
    case Tok::Ident:
      return "identifier";
    case Tok::Number:
      return "number";
    case Tok::LParen:
      return "'('";
    case Tok::RParen:
      return "')'";
    case Tok::LBracket:
      return "'['";
    case Tok::RBracket:
      return "']'";
    case Tok::Comma:
      return "','";
    case Tok::Colon:
      return "':'";
    case Tok::Assign:
      return "'='";
    case Tok::Plus:
      return "'+'";
    case Tok::Minus:
      return "'-'";
    case Tok::Star:
      return "'*'";
    case Tok::Slash:
      return "'/'";
    case Tok::Caret:
      return "'^'";
    case Tok::Lt:
      return "'<'";
    case Tok::Le:
      return "'<='";
    case Tok::Gt:
      return "'>'";
    case Tok::Ge:
      return "'>='";
    case Tok::EqEq:
      return "'=='";
    case Tok::NotEq:
      return "'!='";
    case Tok::AndAnd:
      return "'&&'";
    case Tok::OrOr:
      return "'||'";
    case Tok::Bang:
      return "'!'";
  }
  return "?";
}

namespace {
bool isIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

std::vector<Token> lex(std::string_view src, Diagnostics& diags) {
  std::vector<Token> out;
  size_t i = 0;
  int line = 1, col = 1;
  int parens = 0;  // newlines inside () or [] do not end a statement
  auto push = [&](Tok k, size_t len) {
    Token t;
    t.kind = k;
    t.text = src.substr(i, len);
    t.loc = {line, col};
    out.push_back(t);
    i += len;
    col += static_cast<int>(len);
  };
  while (i < src.size()) {
    const char c = src[i];
    if (c == '\n') {
      if (parens == 0 && !out.empty() && out.back().kind != Tok::Newline)
        push(Tok::Newline, 1);
      else
        ++i;
      ++line;
      col = 1;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
      ++col;
      continue;
    }
    if (c == '#') {
      while (i < src.size() && src[i] != '\n') ++i;
      continue;
    }
    if (isIdentStart(c)) {
      size_t n = 1;
      while (i + n < src.size() && (isIdentStart(src[i + n]) || isDigit(src[i + n]))) ++n;
      push(Tok::Ident, n);
      continue;
    }
    if (isDigit(c) || (c == '.' && i + 1 < src.size() && isDigit(src[i + 1]))) {
      // digits [. digits] [e [+-] digits]
      size_t n = 0;
      bool integral = true;
      while (i + n < src.size() && isDigit(src[i + n])) ++n;
      if (i + n < src.size() && src[i + n] == '.') {
        integral = false;
        ++n;
        while (i + n < src.size() && isDigit(src[i + n])) ++n;
      }
      if (i + n < src.size() && (src[i + n] == 'e' || src[i + n] == 'E')) {
        size_t m = n + 1;
        if (i + m < src.size() && (src[i + m] == '+' || src[i + m] == '-')) ++m;
        if (i + m < src.size() && isDigit(src[i + m])) {
          integral = false;
          while (i + m < src.size() && isDigit(src[i + m])) ++m;
          n = m;
        }
      }
      Token t;
      t.kind = Tok::Number;
      t.text = src.substr(i, n);
      t.loc = {line, col};
      t.integral = integral;
      auto r = std::from_chars(t.text.data(), t.text.data() + t.text.size(), t.number);
      if (r.ec != std::errc() || !std::isfinite(t.number)) {
        diags.error(t.loc, "number '" + std::string(t.text) + "' is out of range");
        t.number = 0;
      } else if (i + n < src.size() && (isIdentStart(src[i + n]) || src[i + n] == '.')) {
        diags.error(t.loc, "malformed number '" + std::string(src.substr(i, n + 1)) + "'");
      }
      out.push_back(t);
      i += n;
      col += static_cast<int>(n);
      continue;
    }
    const char d = i + 1 < src.size() ? src[i + 1] : '\0';
    switch (c) {
      case '(':
        ++parens;
        push(Tok::LParen, 1);
        continue;
      case ')':
        if (parens > 0) --parens;
        push(Tok::RParen, 1);
        continue;
      case '[':
        ++parens;
        push(Tok::LBracket, 1);
        continue;
      case ']':
        if (parens > 0) --parens;
        push(Tok::RBracket, 1);
        continue;
      case ',':
        push(Tok::Comma, 1);
        continue;
      case ':':
        push(Tok::Colon, 1);
        continue;
      case '+':
        push(Tok::Plus, 1);
        continue;
      case '-':
        push(Tok::Minus, 1);
        continue;
      case '*':
        push(Tok::Star, 1);
        continue;
      case '/':
        push(Tok::Slash, 1);
        continue;
      case '^':
        push(Tok::Caret, 1);
        continue;
      case '<':
        if (d == '=')
          push(Tok::Le, 2);
        else
          push(Tok::Lt, 1);
        continue;
      case '>':
        if (d == '=')
          push(Tok::Ge, 2);
        else
          push(Tok::Gt, 1);
        continue;
      case '=':
        if (d == '=')
          push(Tok::EqEq, 2);
        else
          push(Tok::Assign, 1);
        continue;
      case '!':
        if (d == '=')
          push(Tok::NotEq, 2);
        else
          push(Tok::Bang, 1);
        continue;
      case '&':
        if (d == '&') {
          push(Tok::AndAnd, 2);
          continue;
        }
        break;
      case '|':
        if (d == '|') {
          push(Tok::OrOr, 2);
          continue;
        }
        break;
      default:
        break;
    }
    // Unknown byte: report it (printable or as hex), skip it and go on.
    std::string shown;
    if (c >= 0x20 && c < 0x7f) {
      shown = std::string("'") + c + "'";
    } else {
      static const char kHex[] = "0123456789abcdef";
      const unsigned char u = static_cast<unsigned char>(c);
      shown = std::string("byte 0x") + kHex[u >> 4] + kHex[u & 15];
    }
    diags.error({line, col}, "unexpected character " + shown);
    ++i;
    ++col;
  }
  if (!out.empty() && out.back().kind != Tok::Newline) {
    Token nl;
    nl.kind = Tok::Newline;
    nl.loc = {line, col};
    out.push_back(nl);
  }
  Token end;
  end.kind = Tok::End;
  end.loc = {line, col};
  out.push_back(end);
  return out;
}

}  // namespace fccl::ir::parse
