// roundtrip_test.cc - printer round trips over tests/fusion/programs/*.fccl: print(parse(print(
// parse(f)))) is stable, before and after check, and every checked program verifies.
#include "test_util.h"

namespace fccl::ir {
namespace {

class RoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(RoundTrip, ParseAndCheckPrintsAreStable) {
  const std::string src = test::readFile(GetParam());
  Diagnostics d(GetParam());
  auto parsed = parse::parseProgram(src, d);
  ASSERT_TRUE(parsed) << d.str();
  const std::string p1 = print(*parsed);
  auto reparsed = parse::parseProgram(p1, d);
  ASSERT_TRUE(reparsed) << d.str() << p1;
  EXPECT_EQ(print(*reparsed), p1);

  auto checked = check::check(*parsed, d);
  ASSERT_TRUE(checked) << d.str();
  EXPECT_TRUE(check::verify(*checked, d)) << d.str();
  PrintOptions annotated;
  annotated.annotate = true;
  for (const PrintOptions& o : {PrintOptions{}, annotated}) {
    const std::string c1 = print(*checked, o);
    auto again = test::compile(c1);
    ASSERT_TRUE(again) << c1;
    EXPECT_EQ(print(*again, o), c1);
  }
}

std::string testName(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = std::filesystem::path(info.param).stem().string();
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Programs, RoundTrip, ::testing::ValuesIn(test::corpus("programs")), testName);

TEST(RoundTrip, LiteralsAndParentheses) {
  auto p = test::compile(
      "program p\n scalar a : f64\n out y : f64 replicated\n"
      " y = (a - (a - 1)) / (a * (a / 3)) + (-a) ^ 2 + -a ^ 2 + a ^ (a ^ 0.1) + (a ^ a) ^ 1e-300\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(print(*p).substr(print(*p).find("y = ")),
            "y = (a - (a - 1)) / (a * (a / 3)) + (-a) ^ 2 + -a ^ 2 + a ^ a ^ 0.1 + "
            "(a ^ a) ^ 1e-300\n");
  EXPECT_EQ(printLiteral(0.1), "0.1");
  EXPECT_EQ(printLiteral(1e-8), "1e-08");
  EXPECT_EQ(printLiteral(3), "3");
}

}  // namespace
}  // namespace fccl::ir
