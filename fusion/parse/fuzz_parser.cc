// fuzz_parser.cc - libFuzzer target over parse + check + verify + print round trip. Any input
// must give a program or diagnostics, never a crash, hang or sanitizer report; a program that
// checks must verify and print to text that parses and checks to the same print.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fusion/check/checker.h"
#include "fusion/ir/printer.h"
#include "fusion/parse/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fccl::ir;
  std::string_view src(reinterpret_cast<const char*>(data), size);
  Diagnostics d("fuzz");
  auto parsed = parse::parseProgram(src, d);
  if (!parsed) return 0;
  const std::string p1 = print(*parsed);
  auto checked = check::check(*parsed, d);
  if (!checked) return 0;
  if (!check::verify(*checked, d)) std::abort();
  const std::string c1 = print(*checked);
  Diagnostics d2("fuzz2");
  auto again = parse::parseProgram(c1, d2);
  if (!again) std::abort();
  auto again2 = check::check(*again, d2);
  if (!again2 || print(*again2) != c1) std::abort();
  return 0;
}
