// stock.cc - the stock program table (stock.h). fusion/CMakeLists.txt generates
// stock_programs.inc from fusion/stock/*.fccl: one {name, text} entry per file, sorted by name.
#include "fusion/stock/stock.h"

namespace fccl::fusion::stock {

namespace {

struct Entry {
  const char* name;
  const char* text;
};

constexpr Entry kPrograms[] = {
#include "fusion/stock/stock_programs.inc"
};

}  // namespace

const char* find(std::string_view name) {
  for (const Entry& e : kPrograms)
    if (name == e.name) return e.text;
  return nullptr;
}

std::vector<std::string> names() {
  std::vector<std::string> out;
  for (const Entry& e : kPrograms) out.emplace_back(e.name);
  return out;
}

}  // namespace fccl::fusion::stock
