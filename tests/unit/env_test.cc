// env_test.cc - the strict FCCL_* value parsers: whole-string numbers in int64 range, and the
// boolean spellings true/false/1/0/yes/no. A rejected value must not be taken as 0.
#include "src/base/env.h"
#include <gtest/gtest.h>

namespace fccl {
namespace {

TEST(EnvParse, Int64AcceptsWholeNumbers) {
  int64_t v = 0;
  ASSERT_TRUE(parseInt64("12", &v));
  EXPECT_EQ(v, 12);
  ASSERT_TRUE(parseInt64("-5", &v));
  EXPECT_EQ(v, -5);
  ASSERT_TRUE(parseInt64("0", &v));
  EXPECT_EQ(v, 0);
  ASSERT_TRUE(parseInt64("9223372036854775807", &v));
  EXPECT_EQ(v, INT64_MAX);
  ASSERT_TRUE(parseInt64("-9223372036854775808", &v));
  EXPECT_EQ(v, INT64_MIN);
}

TEST(EnvParse, Int64RejectsGarbage) {
  for (const char* bad : {"", "12x", "x12", "1 2", "12 ", "-", "1.5"}) {
    int64_t v = 77;
    EXPECT_FALSE(parseInt64(bad, &v)) << '"' << bad << '"';
  }
  int64_t v = 0;
  EXPECT_FALSE(parseInt64(nullptr, &v));
}

TEST(EnvParse, Int64RejectsOverflow) {
  int64_t v = 0;
  EXPECT_FALSE(parseInt64("9223372036854775808", &v));
  EXPECT_FALSE(parseInt64("-9223372036854775809", &v));
  EXPECT_FALSE(parseInt64("99999999999999999999999", &v));
}

TEST(EnvParse, BoolSpellings) {
  struct Case {
    const char* text;
    bool value;
  };
  for (Case c : {Case{"true", true}, Case{"1", true}, Case{"yes", true}, Case{"false", false},
                 Case{"0", false}, Case{"no", false}}) {
    bool b = !c.value;
    ASSERT_TRUE(parseBool(c.text, &b)) << c.text;
    EXPECT_EQ(b, c.value) << c.text;
  }
}

TEST(EnvParse, BoolRejectsOthers) {
  for (const char* bad : {"", "2", "maybe", "truex", "-1"}) {
    bool b = false;
    EXPECT_FALSE(parseBool(bad, &b)) << '"' << bad << '"';
  }
  bool b = false;
  EXPECT_FALSE(parseBool(nullptr, &b));
}

}  // namespace
}  // namespace fccl
