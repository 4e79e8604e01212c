#include "sigil/registry/validation.h"

#include <gtest/gtest.h>

#include "sigil/registry/selectors.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::registry {
namespace {

using ::sigil::testing::StatusIs;

TEST(ValidationTest, Names) {
  EXPECT_TRUE(IsDns1123Subdomain("db-creds.v2").empty());
  for (const char* bad : {"", "Upper", "-lead", "trail-", "a..b", "a/b", "a_b", "..", "%2e%2e"}) {
    EXPECT_FALSE(IsDns1123Subdomain(bad).empty()) << bad;
  }
  EXPECT_EQ(IsDns1123Subdomain(std::string(254, 'a')).front(), "must be no more than 253 characters");
  EXPECT_EQ(IsDns1123Subdomain("A")[0],
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
  EXPECT_TRUE(IsDns1123Label("kube-system").empty());
  EXPECT_FALSE(IsDns1123Label("a.b").empty());
}

TEST(ValidationTest, ConfigKeys) {
  EXPECT_TRUE(IsConfigMapKey("tls.crt").empty());
  EXPECT_TRUE(IsConfigMapKey(".dockerconfigjson").empty());
  EXPECT_EQ(IsConfigMapKey("a b")[0],
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
            "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')");
  EXPECT_EQ(IsConfigMapKey("..")[0], "must not be '..'");
  EXPECT_EQ(IsConfigMapKey("..x")[0], "must not start with '..'");
  EXPECT_FALSE(IsConfigMapKey("").empty());
}

TEST(ValidationTest, InvalidStatusShape) {
  FieldErrors errs = {{FieldError::Type::kRequired, "data[tls.key]", "", ""},
                      {FieldError::Type::kInvalid, "type", "x", "field is immutable"}};
  Json j = Invalid("Secret", "t1", errs).ToJson();
  EXPECT_EQ(j["code"], 422);
  EXPECT_EQ(j["reason"], "Invalid");
  EXPECT_EQ(j["message"], "Secret \"t1\" is invalid: [data[tls.key]: Required value, type: Invalid value: \"x\": field is immutable]");
  EXPECT_EQ(j["details"]["causes"][0]["reason"], "FieldValueRequired");
  EXPECT_EQ(j["details"]["causes"][1]["field"], "type");
  EXPECT_EQ(NotFound("secrets", "x").ToJson()["message"], "secrets \"x\" not found");
}

TEST(SelectorTest, LabelSelectors) {
  auto s = LabelSelector::Parse("app=demo,tier in (x, y),!gone,env!=prod,has");
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_TRUE(s->Matches({{"app", "demo"}, {"tier", "y"}, {"has", ""}}));
  EXPECT_FALSE(s->Matches({{"app", "demo"}, {"tier", "z"}, {"has", ""}}));
  EXPECT_FALSE(s->Matches({{"app", "demo"}, {"tier", "x"}, {"has", ""}, {"gone", "1"}}));
  EXPECT_FALSE(s->Matches({{"app", "demo"}, {"tier", "x"}, {"has", ""}, {"env", "prod"}}));
  EXPECT_FALSE(s->Matches({{"app", "demo"}, {"tier", "x"}}));
  EXPECT_TRUE(LabelSelector::Parse("")->Matches({}));
  EXPECT_TRUE(LabelSelector::Parse("t notin (a)")->Matches({{"t", "b"}}));
  EXPECT_THAT(LabelSelector::Parse("a in x"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(LabelSelector::Parse("a=b,,c"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(LabelSelector::Parse("bad key!=x"), StatusIs(StatusCode::kInvalidArgument));
}

TEST(SelectorTest, FieldSelectors) {
  std::set<std::string> supported = {"metadata.name", "type"};
  auto f = FieldSelector::Parse("type=Opaque,metadata.name!=foo", supported);
  ASSERT_TRUE(f.ok());
  auto get = [](std::string name) {
    return [name](const std::string& field) { return field == "type" ? std::string("Opaque") : name; };
  };
  EXPECT_TRUE(f->Matches(get("bar")));
  EXPECT_FALSE(f->Matches(get("foo")));
  auto bad = FieldSelector::Parse("data.x=1", supported);
  EXPECT_THAT(bad, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(bad.error().message(), "field label not supported: data.x");
}

}  // namespace
}  // namespace sigil::registry
