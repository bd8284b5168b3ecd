// env_test.cc - the strict FCCL_* value parsers: whole-string numbers in int64 range, and the
// boolean spellings true/false/1/0/yes/no. A rejected value must not be taken as 0. The table
// (readEnvFrom): every text variable rejects a misspelled value with one warning naming the
// variable, the value and the accepted values, and keeps the default.
#include "src/base/env.h"
#include <gtest/gtest.h>
#include <string>
#include <utility>
#include <vector>
#include "src/base/debug.h"

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

// ---- The table: every text variable is checked, a bad value warns and keeps the default ----

struct FakeEnv {
  std::vector<std::pair<std::string, std::string>> vars;
  Env read(std::vector<std::string>* warnings, std::vector<std::string>* set = nullptr) const {
    std::vector<std::string> ignored;
    return readEnvFrom(
        [this](const char* name) -> const char* {
          for (const auto& kv : vars)
            if (kv.first == name) return kv.second.c_str();
          return nullptr;
        },
        set ? set : &ignored, warnings);
  }
};

// One warning naming the variable, the value and (part of) the accepted values.
void expectOneWarning(const std::vector<std::string>& w, const std::string& name, const std::string& value,
                      const std::string& accepted) {
  ASSERT_EQ(w.size(), 1u) << name << "=" << value;
  EXPECT_NE(w[0].find(name + "=\"" + value + "\""), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("accepted: "), std::string::npos) << w[0];
  EXPECT_NE(w[0].find(accepted), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("using the default"), std::string::npos) << w[0];
}

TEST(EnvTable, DefaultsWithNothingSet) {
  std::vector<std::string> w;
  Env e = FakeEnv{}.read(&w);
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(e.debug, "WARN");
  EXPECT_EQ(e.algo, "");
  EXPECT_EQ(e.overlap, "auto");
  EXPECT_EQ(e.shmDir, "fccl");
  EXPECT_EQ(e.timeoutMs, 300000);
}

TEST(EnvTable, MisspelledTextValuesWarnAndKeepTheDefault) {
  struct Case {
    const char* name;
    const char* value;
    const char* accepted;  // a piece of the accepted values the warning must list
    std::string Env::*field;
    const char* kept;
  } cases[] = {
      {"FCCL_DEBUG", "INFOO", "NONE, VERSION, WARN, INFO, TRACE", &Env::debug, "WARN"},
      {"FCCL_DEBUG_SUBSYS", "INIT,COLLL", "BOOTSTRAP", &Env::debugSubsys, ""},
      {"FCCL_DEBUG_SUBSYS", "INIT,", "FUSION", &Env::debugSubsys, ""},
      {"FCCL_ALGO", "rnig", "ring, direct", &Env::algo, ""},
      {"FCCL_OVERLAP", "sometimes", "auto, 1, 0", &Env::overlap, "auto"},
      {"FCCL_SOCKET_FAMILY", "AF_INET4", "AF_INET, AF_INET6", &Env::socketFamily, ""},
      {"FCCL_COMM_ID", "localhost", "host:port", &Env::commId, ""},
      {"FCCL_COMM_ID", "localhost:99999", "host:port", &Env::commId, ""},
      {"FCCL_COMM_ID", "::1:5000", "IPv6", &Env::commId, ""},
      {"FCCL_SOCKET_IFNAME", "^eth0,,lo", "name", &Env::socketIfname, ""},
      {"FCCL_SOCKET_IFNAME", "averyveryverylongname", "15", &Env::socketIfname, ""},
      {"FCCL_SHM_PREFIX", "my/prefix", "A-Z", &Env::shmDir, "fccl"},
      {"FCCL_JIT_CACHE", "relative/dir", "absolute path", &Env::jitCache, "/"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> w;
    Env e = FakeEnv{{{c.name, c.value}, {"HOME", "/home/x"}}}.read(&w);
    expectOneWarning(w, c.name, c.value, c.accepted);
    if (std::string(c.name) == "FCCL_JIT_CACHE")
      EXPECT_EQ(e.*c.field, "/home/x/.cache/fccl-jit");
    else
      EXPECT_EQ(e.*c.field, c.kept) << c.name << "=" << c.value;
  }
}

TEST(EnvTable, ValidTextValuesAreTakenAsTheTableSpellsThem) {
  std::vector<std::string> w, set;
  Env e = FakeEnv{{{"FCCL_DEBUG", "info"},
                   {"FCCL_DEBUG_SUBSYS", "^coll,Tuning"},
                   {"FCCL_ALGO", "Ring"},
                   {"FCCL_OVERLAP", "0"},
                   {"FCCL_SOCKET_FAMILY", "af_inet6"},
                   {"FCCL_COMM_ID", "[::1]:29500"},
                   {"FCCL_SOCKET_IFNAME", "=lo"},
                   {"FCCL_SHM_PREFIX", "job-42.a_b"},
                   {"FCCL_JIT_CACHE", "/tmp/cache"}}}
              .read(&w, &set);
  EXPECT_TRUE(w.empty()) << w[0];
  EXPECT_EQ(set.size(), 9u);
  EXPECT_EQ(e.debug, "INFO");
  EXPECT_EQ(e.debugSubsys, "^coll,Tuning");
  EXPECT_EQ(e.algo, "ring");
  EXPECT_EQ(e.overlap, "0");
  EXPECT_EQ(e.socketFamily, "AF_INET6");
  EXPECT_EQ(e.commId, "[::1]:29500");
  EXPECT_EQ(e.socketIfname, "=lo");
  EXPECT_EQ(e.shmDir, "job-42.a_b");
  EXPECT_EQ(e.jitCache, "/tmp/cache");
  // host:port with a name and with an IPv4 address.
  for (const char* id : {"node7:1234", "10.0.0.1:65535"}) {
    std::vector<std::string> w2;
    FakeEnv fake{{{"FCCL_COMM_ID", id}}};
    EXPECT_EQ(fake.read(&w2).commId, id);
    EXPECT_TRUE(w2.empty()) << id;
  }
}

TEST(EnvTable, EmptyTextValueIsUnset) {
  std::vector<std::string> w;
  Env e = FakeEnv{{{"FCCL_ALGO", ""}, {"FCCL_DEBUG", ""}}}.read(&w);
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(e.algo, "");
  EXPECT_EQ(e.debug, "WARN");
}

TEST(EnvTable, BadNumbersNameTheAcceptedValues) {
  std::vector<std::string> w;
  Env e = FakeEnv{{{"FCCL_TIMEOUT", "5s"}}}.read(&w);
  expectOneWarning(w, "FCCL_TIMEOUT", "5s", "seconds");
  EXPECT_EQ(e.timeoutMs, 300000);
  w.clear();
  e = FakeEnv{{{"FCCL_JIT", "maybe"}}}.read(&w);
  expectOneWarning(w, "FCCL_JIT", "maybe", "true");
  EXPECT_TRUE(e.jit);
}

TEST(LogSubsys, Parse) {
  uint64_t m = 0;
  ASSERT_TRUE(logParseSubsys("INIT,coll", &m));
  EXPECT_EQ(m, uint64_t(kLogInit | kLogColl));
  ASSERT_TRUE(logParseSubsys("^NET", &m));
  EXPECT_EQ(m, ~uint64_t(kLogNet));
  ASSERT_TRUE(logParseSubsys("ALL", &m));
  EXPECT_EQ(m, uint64_t(kLogAll));
  m = 7;
  for (const char* bad : {"", "^", "INIT,", "INITT", "INIT,,COLL"})
    EXPECT_FALSE(logParseSubsys(bad, &m)) << bad;
  EXPECT_EQ(m, 7u);
}

}  // namespace
}  // namespace fccl
