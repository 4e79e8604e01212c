#include "sigil/api/kubernetes/yaml_json.h"

#include <gtest/gtest.h>

namespace sigil::kube {
namespace {

TEST(YamlToJsonTest, ResolvesPlainScalarsAndKeepsQuotedOnesAsStrings) {
  auto j = YamlToJson("apiVersion: v1\nkind: Secret\nimmutable: true\nn: 12\nf: 1.5\nz: ~\nq: \"12\"\ns: 'true'\nt: !!str 7\n");
  ASSERT_TRUE(j.ok()) << j.error().message();
  EXPECT_EQ(*j, Json::parse(R"({"apiVersion":"v1","kind":"Secret","immutable":true,"n":12,"f":1.5,"z":null,"q":"12","s":"true","t":"7"})"));
}

TEST(YamlToJsonTest, JsonIsYaml) {
  auto j = YamlToJson(R"({"kind":"Secret","data":{"a":"YQ=="},"x":[1,"2",null]})");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(*j, Json::parse(R"({"kind":"Secret","data":{"a":"YQ=="},"x":[1,"2",null]})"));
}

TEST(YamlToJsonTest, RefusesMalformedRepeatedKeysAndManyDocuments) {
  EXPECT_FALSE(YamlToJson("a: [1, 2\n").ok());
  auto dup = YamlToJson("a: 1\na: 2\n");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message().find("line 2"), std::string::npos);
  EXPECT_FALSE(YamlToJson("a: 1\n---\nb: 2\n").ok());
  EXPECT_FALSE(YamlToJson("? [a]\n: 1\n").ok());
}

TEST(YamlToJsonTest, RefusesDeepNestingAndAliasBombs) {
  EXPECT_FALSE(YamlToJson(std::string(5000, '[') + std::string(5000, ']')).ok());
  std::string deep;
  for (int i = 0; i < 300; ++i) deep += "- ";
  EXPECT_FALSE(YamlToJson(deep + "x\n").ok());
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + prev;
    bomb += "]\n";
    prev = c;
  }
  auto j = YamlToJson(bomb);  // 10^10 nodes if expanded
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.error().message().find("too many nodes"), std::string::npos);
}

TEST(YamlToJsonTest, ErrorsDoNotQuoteTheInput) {
  auto j = YamlToJson("password: \"hunter2\nsecret");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.error().message().find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace sigil::kube

namespace sigil::kube {
namespace {

TEST(YamlToJsonTest, AliasesCopyAndSelfReferenceIsRefused) {
  auto j = YamlToJson("base: &b {a: 1}\nx: *b\nk: &k key\n*k : 2\n");
  ASSERT_TRUE(j.ok()) << j.error().message();
  EXPECT_EQ(*j, Json::parse(R"({"base":{"a":1},"x":{"a":1},"k":"key","key":2})"));
  auto self = YamlToJson("- &a [1, *a]\n");
  ASSERT_FALSE(self.ok());
  EXPECT_NE(self.error().message().find("contains it"), std::string::npos);
}

}  // namespace
}  // namespace sigil::kube
