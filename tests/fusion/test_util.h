// test_util.h - helpers for the fusion tests: reading the .fccl corpus, parse+check in one call.
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

// The .fccl files of a corpus folder (programs/ or invalid/), sorted.
inline std::vector<std::string> corpus(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(std::string(FCCL_FUSION_TEST_DIR) + "/" + dir))
    if (e.path().extension() == ".fccl") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
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
