// Vault's password policies: HCL and JSON forms, the checks, and passwords that follow the
// rules.
#include "sigil/authz/password_policy.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace sigil::authz {
namespace {

TEST(PasswordPolicyTest, GeneratedPasswordsFollowEveryRule) {
  auto p = ParsePasswordPolicy(R"(
    length = 24
    rule "charset" {
      charset = "abcdefghijklmnopqrstuvwxyz"
      min-chars = 2
    }
    rule "charset" { charset = "0123456789" min-chars = 3 }
    rule "charset" {
      charset = "!@#"
      min-chars = 1
    }
  )");
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->length, 24);
  ASSERT_EQ(p->rules.size(), 3u);
  EXPECT_EQ(p->alphabet.size(), 26u + 10u + 3u);
  for (int i = 0; i < 200; ++i) {
    auto pw = GeneratePassword(*p);
    ASSERT_TRUE(pw.ok());
    std::string_view s = pw->view();
    ASSERT_EQ(s.size(), 24u);
    EXPECT_GE(std::count_if(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; }), 2);
    EXPECT_GE(std::count_if(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }), 3);
    EXPECT_GE(std::count_if(s.begin(), s.end(), [](char c) { return c == '!' || c == '@' || c == '#'; }), 1);
  }
}

TEST(PasswordPolicyTest, TheJsonFormIsTheSamePolicy) {
  auto p = ParsePasswordPolicy(R"({"length": 8, "rule": [{"charset": {"charset": "ab", "min-chars": 1}},
                                                         {"charset": {"charset": "cd", "min-chars": 1}}]})");
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->alphabet, "abcd");
  EXPECT_EQ(p->rules.size(), 2u);
}

TEST(PasswordPolicyTest, BadPoliciesSayWhatIsWrong) {
  auto error = [](std::string_view text) {
    auto p = ParsePasswordPolicy(text);
    return p.ok() ? std::string("ok") : p.error().message();
  };
  EXPECT_EQ(error(R"(rule "charset" { charset = "ab" })"), "length is required");
  EXPECT_EQ(error(R"(length = 2
rule "charset" { charset = "ab" })"), "length must be from 4 to 1024");
  EXPECT_EQ(error("length = 10"), "at least one charset rule is required");
  EXPECT_EQ(error(R"(length = 4
rule "charset" { charset = "ab" min-chars = 5 })"), "the rules' min-chars add up to more than the length");
  EXPECT_NE(error(R"(length = 10
rule "charset" { charset = "a b" })").find("printable ASCII"), std::string::npos);
  EXPECT_NE(error(R"(length = 10
rule "dice" { sides = 6 })").find("unknown rule type"), std::string::npos);
  EXPECT_NE(error("length = \"ten\"\nrule \"charset\" { charset = \"ab\" }").find("line 1: length must be a number"), std::string::npos);
  EXPECT_NE(error("length = 10\nflavour = \"x\"").find("line 2: unknown field"), std::string::npos);
  EXPECT_NE(error("length = ").find("line 1"), std::string::npos);
}

}  // namespace
}  // namespace sigil::authz
