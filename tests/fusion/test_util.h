// test_util.h - helpers for the fusion tests: reading the .fccl corpus (the stock programs of
// fusion/stock/ and the test programs of tests/fusion/programs/), parse+check in one call.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "fusion/check/checker.h"
#include "fusion/ir/printer.h"
#include "fusion/parse/parser.h"

namespace fccl::ir::test {

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The .fccl files of a corpus folder of tests/fusion (programs/ or invalid/), sorted by file name;
// "programs" also has every stock program (fusion/stock/).
inline std::vector<std::string> corpus(const std::string& dir) {
  std::vector<std::string> out, dirs = {std::string(FCCL_FUSION_TEST_DIR) + "/" + dir};
  if (dir == "programs") dirs.push_back(FCCL_STOCK_DIR);
  for (const std::string& d : dirs)
    for (const auto& e : std::filesystem::directory_iterator(d))
      if (e.path().extension() == ".fccl") out.push_back(e.path().string());
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return std::filesystem::path(a).filename() < std::filesystem::path(b).filename();
  });
  return out;
}

// The path of program `name` ("adam" or "adam.fccl"): a stock program, else a test program.
inline std::string programPath(std::string name) {
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".fccl") == 0) name.resize(name.size() - 5);
  const std::string stock = std::string(FCCL_STOCK_DIR) + "/" + name + ".fccl";
  return std::filesystem::exists(stock) ? stock
                                        : std::string(FCCL_FUSION_TEST_DIR) + "/programs/" + name + ".fccl";
}

// Parse and check; on failure, the diagnostics in *errors.
inline std::optional<Program> compile(const std::string& src, std::string* errors = nullptr,
                                      const std::string& name = "<string>") {
  Diagnostics d(name);
  auto p = parse::parseProgram(src, d);
  if (p) p = check::check(*p, d);
  if (errors) *errors = d.str();
  return p;
}

}  // namespace fccl::ir::test
