// invalid_test.cc - runs every tests/fusion/invalid/*.fccl through parse+check and compares the
// diagnostics with the file's inline expectations (MLIR style):
//   # expect-error@+K: LINE:COL: message    (LINE must be the comment's line + K)
//   # expect-error: LINE:COL: message
// Every expected diagnostic must appear and no other may.
#include <regex>

#include "test_util.h"

namespace fccl::ir {
namespace {

class Invalid : public ::testing::TestWithParam<std::string> {};

TEST_P(Invalid, DiagnosticsMatchExpectations) {
  const std::string path = GetParam();
  const std::string src = test::readFile(path);
  static const std::regex kExpect(R"(#\s*expect-error(@([+-]\d+))?:\s*(\d+):(\d+):\s*(.*)$)");
  std::vector<std::string> expected;
  std::istringstream lines(src);
  int lineNo = 0;
  for (std::string line; std::getline(lines, line);) {
    ++lineNo;
    std::smatch m;
    if (!std::regex_search(line, m, kExpect)) continue;
    const int at = std::stoi(m[3]);
    if (m[1].matched) {
      EXPECT_EQ(at, lineNo + std::stoi(m[2])) << path << ":" << lineNo << ": stale @offset";
    }
    expected.push_back(path + ":" + std::string(m[3]) + ":" + std::string(m[4]) + ": " + std::string(m[5]));
  }
  ASSERT_FALSE(expected.empty()) << path << " has no expect-error lines";
  std::string errors;
  EXPECT_FALSE(test::compile(src, &errors, path).has_value());
  std::vector<std::string> actual;
  std::istringstream es(errors);
  for (std::string e; std::getline(es, e);) actual.push_back(e);
  std::sort(expected.begin(), expected.end());
  std::sort(actual.begin(), actual.end());
  EXPECT_EQ(actual, expected);
}

std::string testName(const ::testing::TestParamInfo<std::string>& info) {
  return std::filesystem::path(info.param).stem().string();
}

INSTANTIATE_TEST_SUITE_P(Files, Invalid, ::testing::ValuesIn(test::corpus("invalid")), testName);

}  // namespace
}  // namespace fccl::ir
