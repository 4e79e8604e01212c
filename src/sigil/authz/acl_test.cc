#include "sigil/authz/acl.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sigil/authz/acl_policy.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::authz {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::sigil::testing::StatusIs;

AclPolicy Parse(std::string_view text) {
  Result<AclPolicy> p = ParseAclPolicy("test", text);
  EXPECT_TRUE(p.ok()) << p.error() << "\n" << text;
  return p.ok() ? *p : AclPolicy{};
}

// The message of the parse error `text` must produce.
std::string ParseError(std::string_view text) {
  Result<AclPolicy> p = ParseAclPolicy("test", text);
  EXPECT_THAT(p, StatusIs(StatusCode::kInvalidArgument)) << text;
  return p.error().message();
}

Acl CompileText(std::string_view text) {
  AclPolicy p = Parse(text);
  return Acl::Compile({&p});
}

AclRule Rule(std::string path, bool prefix, bool has_plus, uint32_t caps) {
  return AclRule{std::move(path), prefix, has_plus, caps};
}

constexpr uint32_t kWrite = kCapCreate | kCapRead | kCapUpdate | kCapDelete | kCapList;

// ----- Parsing -------------------------------------------------------------------------------

TEST(AclPolicyParseTest, HclSyntaxForms) {
  AclPolicy p = Parse(R"(
# hash comment
// slash comment
/* block
   comment */ path "secret/data/*" {
  capabilities = ["read", "list",]   # trailing comma
}
path "esc\"aped\\\u00e9\x41" { capabilities = [ "update" ] }
path
  "spread/out"
{
  capabilities
    =
  [
    "create"
    ,
    "delete"
  ]
  comment = "ignored", policy = ""
}
"path" "quoted/key" { capabilities = [,"patch",,] }
path "no/caps" {}
)");
  EXPECT_EQ(p.name, "test");
  EXPECT_THAT(p.rules, ElementsAre(Rule("secret/data/", true, false, kCapRead | kCapList),
                                   Rule("esc\"aped\\\xc3\xa9" "A", false, false, kCapUpdate),
                                   Rule("spread/out", false, false, kCapCreate | kCapDelete),
                                   Rule("quoted/key", false, false, kCapPatch), Rule("no/caps", false, false, 0)));
  EXPECT_TRUE(p.warnings.empty());
  EXPECT_TRUE(Parse("").rules.empty());
  EXPECT_TRUE(Parse("  # only a comment\n").rules.empty());
  EXPECT_TRUE(Parse("name = \"ignored\"").rules.empty());
}

TEST(AclPolicyParseTest, RepeatedListKeysAppendAndCapabilityNames) {
  AclPolicy p = Parse(R"(path "a" {
    capabilities = ["read"]
    capabilities = ["list", "sudo", "subscribe", "recover"]
  })");
  EXPECT_EQ(p.rules[0].capabilities, kCapRead | kCapList | kCapSudo | kCapSubscribe | kCapRecover);
}

TEST(AclPolicyParseTest, PathForms) {
  AclPolicy p = Parse(R"(
path "/lead/slash" {}
path "//two" {}
path "*" {}
path "+" {}
path "+/x" {}
path "a/+/b*" {}
path "a/+b" {}
path "a+/b" {}
path "a/*/b" {}
path "a**" {}
)");
  EXPECT_THAT(p.rules, ElementsAre(Rule("lead/slash", false, false, 0), Rule("/two", false, false, 0), Rule("", true, false, 0),
                                   Rule("+", false, true, 0), Rule("+/x", false, true, 0), Rule("a/+/b", true, true, 0),
                                   Rule("a/+b", false, true, 0),  // Vault's test: any "/+"
                                   Rule("a+/b", false, false, 0),
                                   Rule("a/*/b", false, false, 0),  // '*' is a glob only at the end
                                   Rule("a*", true, false, 0)));
  EXPECT_THAT(ParseError("path \"foo/+*\" { capabilities = [\"read\"] }"),
              HasSubstr("line 1: path \"foo/+*\": invalid use of wildcards ('+*' is forbidden)"));
  EXPECT_THAT(ParseError("path \"a+*b\" {}"), HasSubstr("'+*' is forbidden"));
  EXPECT_EQ(ParseError("path \"secret/data/{{identity.entity.id}}/*\" { capabilities = [\"read\"] }"),
            "line 1: path \"secret/data/{{identity.entity.id}}/*\": templated paths (\"{{identity...}}\") are not supported "
            "by sigil");
}

TEST(AclPolicyParseTest, DenyKeepsOnlyDeny) {
  EXPECT_EQ(Parse(R"(path "a" { capabilities = ["read", "deny", "update"] })").rules[0].capabilities, uint32_t{kCapDeny});
  // Vault stops reading at "deny", so a bad name after it loads and one before it does not.
  EXPECT_EQ(Parse(R"(path "a" { capabilities = ["deny", "banana"] })").rules[0].capabilities, uint32_t{kCapDeny});
  EXPECT_THAT(ParseError(R"(path "a" { capabilities = ["banana", "deny"] })"), HasSubstr("invalid capability \"banana\""));
}

TEST(AclPolicyParseTest, LegacyPolicyField) {
  AclPolicy p = Parse(R"(
path "r" { policy = "read" }
path "w" { policy = "write" }
path "s" { policy = "sudo" }
path "d" { policy = "deny" }
path "mix" {
  policy = "read"
  capabilities = ["update", "sudo"]
}
path "deny-wins" {
  policy = "deny"
  capabilities = ["read", "update", "sudo"]
}
path "last" {
  policy = "write"
  policy = "read"
}
)");
  ASSERT_EQ(p.rules.size(), 7u);
  EXPECT_EQ(p.rules[0].capabilities, kCapRead | kCapList);
  EXPECT_EQ(p.rules[1].capabilities, kWrite);
  EXPECT_EQ(p.rules[2].capabilities, kWrite | kCapSudo);
  EXPECT_EQ(p.rules[3].capabilities, uint32_t{kCapDeny});
  EXPECT_EQ(p.rules[4].capabilities, kCapRead | kCapList | kCapUpdate | kCapSudo);
  EXPECT_EQ(p.rules[5].capabilities, uint32_t{kCapDeny});
  EXPECT_EQ(p.rules[6].capabilities, kCapRead | kCapList);
  EXPECT_THAT(ParseError("path \"/\" {\n\tpolicy = \"banana\"\n}"), HasSubstr("line 2: path \"/\": invalid policy \"banana\""));
}

TEST(AclPolicyParseTest, DuplicatePathsStaySeparateRules) {
  AclPolicy p = Parse(R"(
path "secret/a" { capabilities = ["read"] }
path "secret/a" { capabilities = ["update"] }
)");
  EXPECT_THAT(p.rules, ElementsAre(Rule("secret/a", false, false, kCapRead), Rule("secret/a", false, false, kCapUpdate)));
  EXPECT_EQ(Acl::Compile({&p}).Capabilities("secret/a"), kCapRead | kCapUpdate);
}

TEST(AclPolicyParseTest, UnenforcedFieldsParseWithWarnings) {
  AclPolicy p = Parse(R"(
path "secret/restricted" {
  capabilities = ["create"]
  allowed_parameters = {
    "foo" = []
    "bar" = ["zip", "zap"]
  }
  denied_parameters { "*" = [] }
  required_parameters = ["name", "id"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = 90
  mfa_methods = ["totp"]
  subscribe_event_types = ["kv*"]
  control_group = { ttl = "4h" factor "ops" { identity { group_names = ["ops"] approvals = 1 } } }
}
path "secret/denied" {
  capabilities = ["deny"]
  allowed_parameters = { "x" = [] }
  min_wrapping_ttl = "not a duration"
}
)");
  ASSERT_EQ(p.rules.size(), 2u);
  EXPECT_EQ(p.rules[0].capabilities, uint32_t{kCapCreate});
  // A deny rule ignores them, as Vault does; it has nothing to constrain.
  EXPECT_THAT(p.warnings, ElementsAre("path \"secret/restricted\": allowed_parameters is accepted but not enforced by sigil",
                                      "path \"secret/restricted\": denied_parameters is accepted but not enforced by sigil",
                                      "path \"secret/restricted\": required_parameters is accepted but not enforced by sigil",
                                      "path \"secret/restricted\": min_wrapping_ttl is accepted but not enforced by sigil",
                                      "path \"secret/restricted\": max_wrapping_ttl is accepted but not enforced by sigil",
                                      "path \"secret/restricted\": mfa_methods is accepted but not enforced by sigil",
                                      "path \"secret/restricted\": subscribe_event_types is accepted but not enforced by sigil",
                                      "path \"secret/restricted\": control_group is accepted but not enforced by sigil"));
}

TEST(AclPolicyParseTest, WrappingTtls) {
  for (const char* ttl : {"300", "\"300\"", "\"300s\"", "\"5m\"", "\"1h30m\"", "\"1.5h\"", "\"2d\"", "\"\"", "\"0\""}) {
    EXPECT_EQ(ParseAclPolicy("t", std::string("path \"a\" { min_wrapping_ttl = ") + ttl + " }").ok(), true) << ttl;
  }
  EXPECT_THAT(ParseError("path \"a\" {\n min_wrapping_ttl = \"5 minutes\"\n}"),
              HasSubstr("line 2: path \"a\": invalid duration in \"min_wrapping_ttl\""));
  EXPECT_THAT(ParseError("path \"a\" { max_wrapping_ttl = [1] }"), HasSubstr("invalid duration in \"max_wrapping_ttl\""));
  EXPECT_THAT(ParseError("path \"/\" {\n\tpolicy = \"read\"\n\tmin_wrapping_ttl = 400\n\tmax_wrapping_ttl = 200\n}"),
              HasSubstr("max_wrapping_ttl cannot be less than min_wrapping_ttl"));
  SIGIL_EXPECT_OK(ParseAclPolicy("t", "path \"a\" {\n min_wrapping_ttl = \"1h\"\n max_wrapping_ttl = \"3600s\"\n}"));
}

// vault/policy_test.go's rawPolicy (HashiCorp Vault and OpenBao), minus OpenBao's extensions.
TEST(AclPolicyParseTest, VaultRawPolicy) {
  AclPolicy p = Parse(R"(# Developer policy
name = "dev"
# Deny all paths by default
path "*" {
	policy = "deny"
}
# Allow full access to staging
path "stage/*" {
	policy = "sudo"
}
# Limited read privilege to production
path "prod/version" {
	policy = "read"
	comment = "this comment is stored but not parsed"
}
# Also tests stripping of leading slash and parsing of min/max as string and integer
path "/foo/bar" {
	policy = "read"
	min_wrapping_ttl = 300
	max_wrapping_ttl = "1h"
}
path "foo/bar" {
	capabilities = ["create", "sudo"]
	min_wrapping_ttl = "300s"
	max_wrapping_ttl = 3600
}
path "foo/bar" {
	capabilities = ["create", "sudo"]
	allowed_parameters = {
	  "zip" = []
	  "zap" = []
	}
}
path "baz/bar" {
	capabilities = ["create", "sudo"]
	denied_parameters = {
	  "zip" = []
	  "zap" = []
	}
}
path "test/types" {
	capabilities = ["create", "sudo"]
	allowed_parameters = {
		"map" = [{"good" = "one"}]
		"int" = [1, 2]
	}
	denied_parameters = {
		"string" = ["test"]
		"bool" = [false]
	}
}
path "test/req" {
	capabilities = ["create", "sudo"]
	required_parameters = ["foo"]
}
path "test/patch" {
	capabilities = ["patch"]
}
path "test/mfa" {
	capabilities = ["create", "sudo"]
	mfa_methods = ["my_totp", "my_totp2"]
}
path "test/+/segment" {
	capabilities = ["create", "sudo"]
}
path "test/segment/at/end/+" {
	capabilities = ["create", "sudo"]
}
path "test/segment/at/end/v2/+/" {
	capabilities = ["create", "sudo"]
}
path "test/+/wildcard/+/*" {
	capabilities = ["create", "sudo"]
}
path "test/+/wildcard/+/end*" {
	capabilities = ["create", "sudo"]
}
path "test/control_group" {
	capabilities = ["list"]
        control_group = {
		"ttl" = "48m"
        }
}
)");
  const uint32_t cs = kCapCreate | kCapSudo;
  EXPECT_EQ(p.name, "test");  // the name in the text is ignored, as Vault's policy store does
  EXPECT_THAT(p.rules, ElementsAre(Rule("", true, false, kCapDeny), Rule("stage/", true, false, kWrite | kCapSudo),
                                   Rule("prod/version", false, false, kCapRead | kCapList),
                                   Rule("foo/bar", false, false, kCapRead | kCapList), Rule("foo/bar", false, false, cs),
                                   Rule("foo/bar", false, false, cs), Rule("baz/bar", false, false, cs),
                                   Rule("test/types", false, false, cs), Rule("test/req", false, false, cs),
                                   Rule("test/patch", false, false, kCapPatch), Rule("test/mfa", false, false, cs),
                                   Rule("test/+/segment", false, true, cs), Rule("test/segment/at/end/+", false, true, cs),
                                   Rule("test/segment/at/end/v2/+/", false, true, cs),
                                   Rule("test/+/wildcard/+/", true, true, cs), Rule("test/+/wildcard/+/end", true, true, cs),
                                   Rule("test/control_group", false, false, kCapList)));
  EXPECT_EQ(p.warnings.size(), 11u);
}

TEST(AclPolicyParseTest, VaultBadPolicies) {
  EXPECT_THAT(ParseError("name = \"test\"\nbad  = \"foo\"\nnope = \"yes\""), HasSubstr("line 2: invalid key \"bad\""));
  EXPECT_THAT(ParseError("path \"/\" {\n\tcapabilities = [\"read\"]\n\tcapabilites  = [\"read\"]\n}"),
              HasSubstr("line 3: path \"/\": invalid key \"capabilites\""));
  EXPECT_THAT(ParseError("path \"/\" {\n\tcapabilities = [\"read\", \"banana\"]\n}"),
              HasSubstr("line 2: path \"/\": invalid capability \"banana\""));
  ParseError("name{}");
  // OpenBao's extensions are not HashiCorp Vault's.
  EXPECT_THAT(ParseError("path \"a\" { capabilities = [\"scan\"] }"), HasSubstr("invalid capability \"scan\""));
  EXPECT_THAT(ParseError("path \"a\" { pagination_limit = 5 }"), HasSubstr("invalid key \"pagination_limit\""));
  EXPECT_THAT(ParseError("path \"a\" { expiration = \"2006-01-02T15:04:05Z\" }"), HasSubstr("invalid key \"expiration\""));
}

TEST(AclPolicyParseTest, SyntaxErrorsAreLineNumbered) {
  EXPECT_EQ(ParseError("\n\npath \"secret/*\" = { capabilities = [\"read\"] }"),
            "line 3: expected \"{\" after the path string, got \"=\"");
  EXPECT_EQ(ParseError("path \"a\" {\n  capabilities = [\"read\"]\n  capabilities = [\"raed\"]\n}"),
            "line 3: path \"a\": invalid capability \"raed\"");
  EXPECT_EQ(ParseError("path \"a\" {\n capabilities = [\"read\"]\n"), "line 3: unexpected end of input: missing \"}\"");
  EXPECT_EQ(ParseError("path \"a\" {\n capabilities = [\"read\"\n}"), "line 3: expected \",\" or \"]\" in a list, got \"}\"");
  EXPECT_EQ(ParseError("path \"a\" {\n capabilities = [\"read\" \"list\"]\n}"),
            "line 2: expected \",\" or \"]\" in a list, got string \"list\"");
  EXPECT_EQ(ParseError("path \"a\n\" {}"), "line 1: unterminated string");
  EXPECT_EQ(ParseError("path \"a\" {\n capabilities: [\"read\"]\n}"),
            "line 2: unexpected \":\" (HCL assigns with \"=\"; \":\" is for the JSON form)");
  EXPECT_EQ(ParseError("/* never closed\npath \"a\" {}"), "line 1: unterminated /* comment");
  EXPECT_EQ(ParseError("path \"a\" { capabilities = [\"read\"] }\n}"), "line 2: unexpected \"}\"");
  EXPECT_EQ(ParseError("path \"a\" { capabilities = \"read\" }"),
            "line 1: path \"a\": \"capabilities\" must be a list of strings");
  EXPECT_EQ(ParseError("path \"a\" { capabilities = [1] }"), "line 1: path \"a\": \"capabilities\" must be a list of strings");
  EXPECT_EQ(ParseError("path \"a\" { min_wrapping_ttl = 30s }"),
            "line 1: invalid number \"30s\" (quote durations such as \"30s\")");
  EXPECT_EQ(ParseError("path \"a\\q\" {}"), "line 1: invalid escape \"\\\\q\" in a string");
  EXPECT_EQ(ParseError("path {\n capabilities = [\"read\"]\n}"), "line 1: expected a quoted path string after \"path\"");
  EXPECT_EQ(ParseError("path = \"x\""), "line 1: expected a quoted path string after \"path\"");
  EXPECT_THAT(ParseError("path \"a\" \"b\" { }"), HasSubstr("path \"a\": invalid key \"b\""));
  EXPECT_THAT(ParseError("path \"a\" { x = <<EOF\nhi\nEOF\n}"), HasSubstr("heredoc strings are not supported"));
  EXPECT_THAT(ParseError("path \"a\" { \x01 }"), HasSubstr("unexpected character \"\\x01\""));
}

TEST(AclPolicyParseTest, ErrorsQuoteOnlyAShortToken) {
  const std::string secretish(5000, 'k');
  std::string msg = ParseError("path \"a\" { capabilities = [\"" + secretish + "\"] }");
  EXPECT_LT(msg.size(), 120u);
  EXPECT_THAT(msg, HasSubstr("kkk...\""));
  msg = ParseError("path \"" + secretish + "\" { capabilities = [\"x\"] }");
  EXPECT_LT(msg.size(), 120u);
  // Quotes and control characters are escaped, so a message cannot forge lines.
  msg = ParseError("path \"a\" { capabilities = [\"x\\n\\\"y\"] }");
  EXPECT_THAT(msg, HasSubstr("\"x\\x0a\\\"y\""));
}

TEST(AclPolicyParseTest, Json) {
  AclPolicy p = Parse(R"(  {
    "name": "ignored",
    "path": {
      "secret/*": {"capabilities": ["read", "list"]},
      "secret/+/db": {"policy": "write", "allowed_parameters": {"a": []}},
      "secret/deny": {"capabilities": ["deny"]}
    }
  })");
  EXPECT_THAT(p.rules, ElementsAre(Rule("secret/", true, false, kCapRead | kCapList), Rule("secret/+/db", false, true, kWrite),
                                   Rule("secret/deny", false, false, kCapDeny)));
  EXPECT_THAT(p.warnings, ElementsAre("path \"secret/+/db\": allowed_parameters is accepted but not enforced by sigil"));
  // HCL 1's JSON reader also takes lists of blocks.
  p = Parse(R"({"path": [{"a": {"capabilities": ["read"]}}, {"a": [{"capabilities": ["update"]}]}]})");
  EXPECT_THAT(p.rules, ElementsAre(Rule("a", false, false, kCapRead), Rule("a", false, false, kCapUpdate)));

  EXPECT_EQ(ParseError("{\n\"path\": {\"a\": {\"capabilities\": [\"read\"]}\n"), "line 3: invalid JSON");
  EXPECT_EQ(ParseError(R"({"path": {"a": {"capabilities": ["raed"]}}})"), "path \"a\": invalid capability \"raed\"");
  EXPECT_EQ(ParseError(R"({"paths": {}})"), "invalid key \"paths\" (a policy holds only \"name\" and \"path\" blocks)");
  EXPECT_EQ(ParseError(R"({"path": {"a": {"capabilities": null}}})"), "null is not a valid value in a policy");
  EXPECT_EQ(ParseError(R"({"path": {"a": "read"}})"), "path \"a\" must be followed by a block { ... }");
}

TEST(AclPolicyParseTest, Limits) {
  std::string big = "path \"a\" { capabilities = [\"read\"] }\n";
  while (big.size() <= kMaxAclPolicyBytes) big += "# padding padding padding padding padding padding padding\n";
  EXPECT_EQ(ParseError(big), "policy is larger than 1 MiB");

  std::string deep_hcl = "path \"a\" { allowed_parameters = { x = " + std::string(40, '[') + std::string(40, ']') + " } }";
  EXPECT_THAT(ParseError(deep_hcl), HasSubstr("nested deeper than 16 levels"));
  std::string deep_json = "{\"path\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(ParseError(deep_json), "nested deeper than 16 levels");
  std::string many = "path \"a\" { allowed_parameters = { x = [";
  for (int i = 0; i < 100001; ++i) many += "1,";
  EXPECT_EQ(ParseError(many + "] } }"), "line 1: more than 100000 values");
  many = "{\"path\": {\"a\": {\"allowed_parameters\": {\"x\": [";
  for (int i = 0; i < 100001; ++i) many += "1,";
  EXPECT_EQ(ParseError(many + "1]}}}}"), "more than 100000 values");
  std::string deep_blocks;
  for (int i = 0; i < 30; ++i) deep_blocks += "a {";
  EXPECT_THAT(ParseError(deep_blocks), HasSubstr("nested deeper than 16 levels"));
}

TEST(AclPolicyParseTest, CapabilityNamesInVaultOrder) {
  EXPECT_THAT(CapabilityList(kCapAllGrants),
              ElementsAre("sudo", "read", "list", "update", "delete", "create", "patch", "subscribe", "recover"));
  EXPECT_THAT(CapabilityList(0), ElementsAre("deny"));
  EXPECT_THAT(CapabilityList(kCapDeny), ElementsAre("deny"));
  EXPECT_EQ(CapabilityNames(kCapRead | kCapCreate | kCapList), "read, list, create");
}

// ----- Evaluation ----------------------------------------------------------------------------

// The examples of Vault's policies.mdx ("Policy syntax").
TEST(AclTest, DocumentedExamples) {
  Acl acl = CompileText(R"(
path "secret/*" { capabilities = ["create", "read", "update", "patch", "delete", "list"] }
path "secret/super-secret" { capabilities = ["deny"] }
path "secret/restricted" { capabilities = ["create"] }
path "kv/foo" { capabilities = ["read"] }
path "kv/bar/*" { capabilities = ["read"] }
path "kv/zip-*" { capabilities = ["read"] }
path "kv/+/teamb" { capabilities = ["read"] }
path "kv/+/+/teamc" { capabilities = ["read"] }
)");
  EXPECT_TRUE(acl.Allows("secret/anything/deep", kCapPatch, false));
  EXPECT_EQ(acl.Capabilities("secret/super-secret"), uint32_t{kCapDeny});
  EXPECT_EQ(acl.Capabilities("secret/restricted"), uint32_t{kCapCreate});  // the exact rule, not secret/*
  EXPECT_TRUE(acl.Allows("kv/foo", kCapRead, false));
  EXPECT_FALSE(acl.Allows("kv/food", kCapRead, false));
  EXPECT_FALSE(acl.Allows("kv/foo/bar", kCapRead, false));
  EXPECT_TRUE(acl.Allows("kv/bar/zip", kCapRead, false));
  EXPECT_TRUE(acl.Allows("kv/bar/zip/zap", kCapRead, false));
  EXPECT_FALSE(acl.Allows("kv/bars/zip", kCapRead, false));
  EXPECT_TRUE(acl.Allows("kv/zip-zap", kCapRead, false));
  EXPECT_TRUE(acl.Allows("kv/zip-zap/zong", kCapRead, false));
  EXPECT_FALSE(acl.Allows("kv/zip/zap", kCapRead, false));
  EXPECT_TRUE(acl.Allows("kv/a/teamb", kCapRead, false));
  EXPECT_FALSE(acl.Allows("kv/a/b/teamb", kCapRead, false));
  EXPECT_TRUE(acl.Allows("kv/foo/bar/teamc", kCapRead, false));
  EXPECT_FALSE(acl.Allows("kv/foo/teamc", kCapRead, false));
  EXPECT_FALSE(acl.Allows("kv/foo/bar/teamc/x", kCapRead, false));

  // "secret/*" vs "secret/+/+/foo/*": same first wildcard, both globs, the latter has more "+".
  Acl docs = CompileText(R"(
path "secret/*" { capabilities = ["read"] }
path "secret/+/+/foo/*" { capabilities = ["update"] }
)");
  EXPECT_EQ(docs.Capabilities("secret/a/b/foo/c"), uint32_t{kCapRead});
}

// vault/acl_test.go TestACL_SegmentWildcardPriority: in each pair the update rule wins.
TEST(AclTest, VaultSegmentWildcardPriority) {
  struct Case {
    const char* policy;
    const char* path;
  };
  const Case cases[] = {
      {R"(path "+/*" { capabilities = ["read"] }
          path "*" { capabilities = ["update"] })", "foo/bar/bar/baz"},
      {R"(path "+/*" { capabilities = ["read"] }
          path "foo/+/*" { capabilities = ["update"] })", "foo/bar/bar/baz"},
      {R"(path "foo/+/+/*" { capabilities = ["read"] }
          path "foo/+/bar/baz" { capabilities = ["update"] })", "foo/bar/bar/baz"},
      {R"(path "foo/+/+/baz" { capabilities = ["read"] }
          path "foo/+/bar/baz" { capabilities = ["update"] })", "foo/bar/bar/baz"},
      {R"(path "foo/+/(ar/baz" { capabilities = ["read"] }
          path "foo/(ar/+/baz" { capabilities = ["update"] })", "foo/(ar/(ar/baz"},
      {R"(path "foo/bar/+/baz*" { capabilities = ["read"] }
          path "foo/bar/+/baz" { capabilities = ["update"] })", "foo/bar/bar/baz"},
      {R"(path "foo/bar/+/b*" { capabilities = ["read"] }
          path "foo/bar/+/ba*" { capabilities = ["update"] })", "foo/bar/bar/baz"},
  };
  for (const Case& c : cases) {
    Acl acl = CompileText(c.policy);
    EXPECT_EQ(acl.Capabilities(c.path), uint32_t{kCapUpdate}) << c.policy;
  }
}

TEST(AclTest, PriorityRulesOneByOne) {
  struct Case {
    const char* lower;
    const char* higher;
    const char* path;
    const char* why;
  };
  const Case cases[] = {
      {"secret/*", "secret/foo*", "secret/food", "a: the glob starts later"},
      {"secret/+/bar", "secret/foo/*", "secret/foo/bar", "a: the first wildcard comes later"},
      {"secret/foo/*", "secret/foo/+", "secret/foo/bar", "b: the glob ends in '*'"},
      {"secret/+/+/baz", "secret/+/bar/baz", "secret/foo/bar/baz", "c: more '+' segments"},
      {"secret/+/b*", "secret/+/ba*", "secret/x/baz", "d: shorter"},
  };
  for (const Case& c : cases) {
    std::string text = std::string("path \"") + c.lower + "\" { capabilities = [\"read\"] }\npath \"" + c.higher +
                       "\" { capabilities = [\"update\"] }";
    Acl acl = CompileText(text);
    EXPECT_EQ(acl.Capabilities(c.path), uint32_t{kCapUpdate}) << c.why;
  }
  // Rule e (lexicographic order) never decides between two rules that match one path, as
  // Vault's comment says; rule c comes first here.
  Acl tie = CompileText(R"(
path "+/x/+" { capabilities = ["read"] }
path "+/+/y" { capabilities = ["update"] }
)");
  EXPECT_EQ(tie.Capabilities("a/x/y"), uint32_t{kCapRead});  // c: fewer "+" beats lexicographic order
}

// Vault counts the first '+' of the written path, even a literal one inside a segment
// ("+y" is not a wildcard), and a later glob does not help "x/+y/z*" against "x/+y/+".
TEST(AclTest, LiteralPlusQuirkMatchesVault) {
  Acl acl = CompileText(R"(
path "x/+y/+" { capabilities = ["read"] }
path "x/+y/z*" { capabilities = ["update"] }
)");
  EXPECT_EQ(acl.Capabilities("x/+y/zz"), uint32_t{kCapRead});
  EXPECT_EQ(acl.Capabilities("x/ay/zz"), 0u);  // "+y" is literal
}

TEST(AclTest, ExactBeatsEverythingAndGlobIsAStringPrefix) {
  Acl acl = CompileText(R"(
path "secret/*" { capabilities = ["read"] }
path "secret/+" { capabilities = ["update"] }
path "secret/exact" { capabilities = ["list"] }
)");
  EXPECT_EQ(acl.Capabilities("secret/exact"), uint32_t{kCapList});
  EXPECT_EQ(acl.Capabilities("secret/other"), uint32_t{kCapUpdate});  // b: '+' beats the glob
  EXPECT_EQ(acl.Capabilities("secret/a/b"), uint32_t{kCapRead});
  EXPECT_EQ(acl.Capabilities("secret"), 0u);
  EXPECT_EQ(acl.Capabilities("/secret/exact"), uint32_t{kCapList});  // leading '/'s are stripped
  EXPECT_EQ(acl.Capabilities("///secret/exact"), uint32_t{kCapList});
  EXPECT_EQ(CompileText("path \"*\" { capabilities = [\"read\"] }").Capabilities(""), uint32_t{kCapRead});
}

TEST(AclTest, PlusMatchesExactlyOneSegmentWhichMayBeEmpty) {
  Acl acl = CompileText(R"(
path "a/+/c" { capabilities = ["read"] }
path "b/+" { capabilities = ["read"] }
path "+" { capabilities = ["list"] }
)");
  EXPECT_EQ(acl.Capabilities("a/x/c"), uint32_t{kCapRead});
  EXPECT_EQ(acl.Capabilities("a//c"), uint32_t{kCapRead});
  EXPECT_EQ(acl.Capabilities("a/x/y/c"), 0u);
  EXPECT_EQ(acl.Capabilities("a/c"), 0u);
  EXPECT_EQ(acl.Capabilities("b/"), uint32_t{kCapRead});
  EXPECT_EQ(acl.Capabilities("b/x/"), 0u);
  EXPECT_EQ(acl.Capabilities("anything"), uint32_t{kCapList});
  EXPECT_EQ(acl.Capabilities("any/thing"), 0u);
}

TEST(AclTest, ChosenRuleIsFinalEvenWhenEmpty) {
  Acl acl = CompileText(R"(
path "secret/*" { capabilities = ["read"] }
path "secret/x" {}
path "secret/y/*" {}
)");
  EXPECT_EQ(acl.Capabilities("secret/x"), 0u);
  EXPECT_EQ(acl.Capabilities("secret/y/z"), 0u);
  EXPECT_EQ(acl.Capabilities("secret/z"), uint32_t{kCapRead});
  EXPECT_THAT(acl.SysCapabilities("secret/x"), ElementsAre("deny"));
}

TEST(AclTest, PoliciesMergeOnTheSamePatternOnly) {
  AclPolicy reader = Parse(R"(
path "secret/*" { capabilities = ["read"] }
path "secret/+/db" { capabilities = ["read"] }
path "shared" { capabilities = ["read"] }
)");
  AclPolicy writer = Parse(R"(
path "secret/*" { capabilities = ["update"] }
path "secret/+/db" { capabilities = ["create"] }
path "shared" { capabilities = ["update"] }
)");
  AclPolicy denier = Parse(R"(
path "shared" { capabilities = ["deny"] }
path "secret/hidden/*" { capabilities = ["deny"] }
)");
  Acl two = Acl::Compile({&reader, &writer});
  EXPECT_EQ(two.Capabilities("secret/x"), kCapRead | kCapUpdate);
  EXPECT_EQ(two.Capabilities("secret/a/db"), kCapRead | kCapCreate);
  EXPECT_EQ(two.Capabilities("shared"), kCapRead | kCapUpdate);
  for (const auto& order : {std::vector<const AclPolicy*>{&reader, &writer, &denier},
                            std::vector<const AclPolicy*>{&denier, &writer, nullptr, &reader}}) {
    Acl acl = Acl::Compile(order);
    EXPECT_EQ(acl.Capabilities("shared"), uint32_t{kCapDeny});            // deny on the same pattern
    EXPECT_EQ(acl.Capabilities("secret/hidden/x"), uint32_t{kCapDeny});   // a higher-priority deny
    EXPECT_EQ(acl.Capabilities("secret/hidden"), kCapRead | kCapUpdate);  // "secret/hidden/*" needs the '/'
    EXPECT_FALSE(acl.Allows("shared", kCapRead, false));
    EXPECT_FALSE(acl.Allows("secret/hidden/x", kCapRead, false));
  }
}

TEST(AclTest, RootAndEmpty) {
  Acl root = Acl::Compile({}, /*root=*/true);
  EXPECT_TRUE(root.root());
  EXPECT_EQ(root.Capabilities("sys/anything"), kCapAllGrants);
  EXPECT_TRUE(root.Allows("sys/audit/x", kCapUpdate, true));
  EXPECT_THAT(root.SysCapabilities("x"), ElementsAre("root"));
  AclPolicy deny_all = Parse("path \"*\" { capabilities = [\"deny\"] }");
  EXPECT_TRUE(Acl::Compile({&deny_all}, true).Allows("x", kCapRead, true));

  AclPolicy empty = Parse("");
  for (const Acl& acl : {Acl(), Acl::Compile({}), Acl::Compile({&empty}), Acl::Compile({nullptr})}) {
    EXPECT_FALSE(acl.root());
    EXPECT_EQ(acl.Capabilities("secret/x"), 0u);
    EXPECT_EQ(acl.ListCapabilities("secret/"), 0u);
    EXPECT_FALSE(acl.Allows("secret/x", kCapRead, false));
    EXPECT_THAT(acl.SysCapabilities("secret/x"), ElementsAre("deny"));
  }
}

TEST(AclTest, AllowsChecksSudoAndDeny) {
  Acl acl = CompileText(R"(
path "sys/audit/*" { capabilities = ["update", "sudo"] }
path "sys/mounts/*" { capabilities = ["update"] }
)");
  EXPECT_TRUE(acl.Allows("sys/audit/file", kCapUpdate, true));
  EXPECT_FALSE(acl.Allows("sys/audit/file", kCapRead, true));
  EXPECT_TRUE(acl.Allows("sys/mounts/x", kCapUpdate, false));
  EXPECT_FALSE(acl.Allows("sys/mounts/x", kCapUpdate, true));
  EXPECT_FALSE(acl.Allows("sys/mounts/x", static_cast<Capability>(0), false));
}

// The fallbacks of a list request, and Vault's PR 23874 case (a wildcard rule without the
// trailing '/' allows listing the path with it).
TEST(AclTest, ListRequestsTryThePathWithoutTheTrailingSlash) {
  Acl acl = CompileText(R"(
path "sys/policies/acl" { capabilities = ["list"] }
path "+/team/acl" { capabilities = ["list"] }
path "kv/metadata/*" { capabilities = ["list"] }
)");
  EXPECT_TRUE(acl.Allows("sys/policies/acl/", kCapList, false));
  EXPECT_FALSE(acl.Allows("sys/policies/acl/", kCapRead, false));  // only a list request falls back
  EXPECT_TRUE(acl.Allows("ns/team/acl/", kCapList, false));
  EXPECT_EQ(acl.Capabilities("ns/team/acl/"), 0u);
  EXPECT_TRUE(acl.Allows("kv/metadata/", kCapList, false));
  EXPECT_FALSE(acl.Allows("kv/metadata", kCapList, false));
  EXPECT_THAT(acl.SysCapabilities("sys/policies/acl/"), ElementsAre("list"));  // sys/capabilities models a list
}

// OpenBao's TestACL_ListScanWildcardDeny: a deny under a listable prefix holds for a list of the
// denied directory itself. HashiCorp Vault allows "foo/metadata/private/" here.
TEST(AclTest, ListPrefersTheMoreSpecificWildcardRule) {
  Acl acl = CompileText(R"(
path "foo/metadata/*" { capabilities = ["list"] }
path "foo/metadata/private/*" { capabilities = ["deny"] }
path "foo/metadata/private/granted/*" { capabilities = ["list"] }
)");
  const std::pair<const char*, bool> cases[] = {
      {"foo", false},
      {"foo/metadata", true},
      {"foo/metadata/test", true},
      {"foo/metadata/private", false},
      {"foo/metadata/private/internal", false},
      {"foo/metadata/private/granted", true},
      {"foo/metadata/private/granted/test", true},
  };
  for (const auto& [path, allowed] : cases) {
    EXPECT_EQ(acl.Allows(std::string(path) + "/", kCapList, false), allowed) << path;
  }
}

// vault/acl_test.go's aclPolicy and aclPolicy2 (without OpenBao's "scan"), with the cases of
// TestACL_Single, TestACL_Layered and TestACL_Capabilities. `sudo` is Vault's RootPrivs.
constexpr const char* kVaultAclPolicy = R"(
name = "DeV"
path "dev/*" { policy = "sudo" }
path "stage/*" { policy = "write" }
path "stage/aws/*" {
	policy = "read"
	capabilities = ["update", "sudo"]
}
path "stage/aws/policy/*" { policy = "sudo" }
path "prod/*" { policy = "read" }
path "prod/aws/*" { policy = "deny" }
path "sys/*" { policy = "deny" }
path "foo/bar" { capabilities = ["read", "create", "sudo"] }
path "baz/quux" { capabilities = ["read", "create", "patch"] }
path "test/+/segment" { capabilities = ["read"] }
path "+/segment/at/front" { capabilities = ["read"] }
path "test/segment/at/end/+" { capabilities = ["read"] }
path "test/segment/at/end/v2/+/" { capabilities = ["read"] }
path "test/+/wildcard/+/*" { capabilities = ["read"] }
path "test/+/wildcardglob/+/end*" { capabilities = ["read"] }
path "1/2/*" { capabilities = ["create"] }
path "1/2/+" { capabilities = ["read"] }
path "1/2/+/+" { capabilities = ["update"] }
)";

constexpr const char* kVaultAclPolicy2 = R"(
name = "OpS"
path "dev/hide/*" { policy = "deny" }
path "stage/aws/policy/*" {
	policy = "deny"
	# This should have no effect
	capabilities = ["read", "update", "sudo"]
}
path "prod/*" { policy = "write" }
path "sys/seal" { policy = "sudo" }
path "foo/bar" { capabilities = ["deny"] }
path "baz/quux" { capabilities = ["deny"] }
)";

struct OpCase {
  Capability op;
  const char* path;
  bool allowed;
  bool sudo;
};

void CheckOps(const Acl& acl, const std::vector<OpCase>& cases) {
  for (const OpCase& c : cases) {
    EXPECT_EQ(acl.Allows(c.path, c.op, false), c.allowed) << c.path << " " << CapabilityNames(c.op);
    const uint32_t caps = c.op == kCapList ? acl.ListCapabilities(c.path) : acl.Capabilities(c.path);
    EXPECT_EQ((caps & kCapSudo) != 0, c.sudo) << c.path;
  }
}

TEST(AclTest, VaultSinglePolicy) {
  Acl acl = CompileText(kVaultAclPolicy);
  CheckOps(acl, {
                    {kCapRead, "root", false, false},
                    {kCapRead, "dev/foo", true, true},
                    {kCapUpdate, "dev/foo", true, true},
                    {kCapDelete, "stage/foo", true, false},
                    {kCapList, "stage/aws/foo", true, true},
                    {kCapUpdate, "stage/aws/foo", true, true},
                    {kCapUpdate, "stage/aws/policy/foo", true, true},
                    {kCapDelete, "prod/foo", false, false},
                    {kCapUpdate, "prod/foo", false, false},
                    {kCapRead, "prod/foo", true, false},
                    {kCapList, "prod/foo", true, false},
                    {kCapRead, "prod/aws/foo", false, false},
                    {kCapRead, "foo/bar", true, true},
                    {kCapList, "foo/bar", false, true},
                    {kCapUpdate, "foo/bar", false, true},
                    {kCapCreate, "foo/bar", true, true},
                    {kCapRead, "baz/quux", true, false},
                    {kCapCreate, "baz/quux", true, false},
                    {kCapPatch, "baz/quux", true, false},
                    {kCapList, "baz/quux", false, false},
                    {kCapUpdate, "baz/quux", false, false},
                    {kCapRead, "test/foo/bar/segment", false, false},
                    {kCapRead, "test/foo/segment", true, false},
                    {kCapRead, "test/bar/segment", true, false},
                    {kCapRead, "test/segment/at/frond", false, false},
                    {kCapRead, "test/segment/at/front", true, false},
                    {kCapRead, "test/segment/at/end/foo", true, false},
                    {kCapRead, "test/segment/at/end/foo/", false, false},
                    {kCapRead, "test/segment/at/end/v2/foo/", true, false},
                    {kCapRead, "test/segment/wildcard/at/foo/", true, false},
                    {kCapRead, "test/segment/wildcard/at/end", true, false},
                    {kCapRead, "test/segment/wildcard/at/end/", true, false},
                    {kCapRead, "1/2/3/4", false, false},
                    {kCapRead, "1/2/3", true, false},
                    {kCapUpdate, "1/2/3", false, false},
                    {kCapUpdate, "1/2/3/4", true, false},
                    {kCapCreate, "1/2/3/4/5", true, false},
                });
  EXPECT_THAT(acl.SysCapabilities("dev"), ElementsAre("deny"));
  EXPECT_THAT(acl.SysCapabilities("dev/"), ElementsAre("sudo", "read", "list", "update", "delete", "create"));
  EXPECT_THAT(acl.SysCapabilities("stage/aws/test"), ElementsAre("sudo", "read", "list", "update"));
}

TEST(AclTest, VaultLayeredPolicies) {
  AclPolicy p1 = Parse(kVaultAclPolicy);
  AclPolicy p2 = Parse(kVaultAclPolicy2);
  CheckOps(Acl::Compile({&p1, &p2}), {
                                         {kCapRead, "root", false, false},
                                         {kCapRead, "dev/foo", true, true},
                                         {kCapUpdate, "dev/foo", true, true},
                                         {kCapRead, "dev/hide/foo", false, false},
                                         {kCapUpdate, "dev/hide/foo", false, false},
                                         {kCapDelete, "stage/foo", true, false},
                                         {kCapList, "stage/aws/foo", true, true},
                                         {kCapUpdate, "stage/aws/foo", true, true},
                                         {kCapUpdate, "stage/aws/policy/foo", false, false},
                                         {kCapDelete, "prod/foo", true, false},
                                         {kCapUpdate, "prod/foo", true, false},
                                         {kCapRead, "prod/foo", true, false},
                                         {kCapList, "prod/foo", true, false},
                                         {kCapRead, "prod/aws/foo", false, false},
                                         {kCapRead, "sys/status", false, false},
                                         {kCapUpdate, "sys/seal", true, true},
                                         {kCapRead, "foo/bar", false, false},
                                         {kCapList, "foo/bar", false, false},
                                         {kCapUpdate, "foo/bar", false, false},
                                         {kCapCreate, "foo/bar", false, false},
                                         {kCapRead, "baz/quux", false, false},
                                         {kCapList, "baz/quux", false, false},
                                         {kCapUpdate, "baz/quux", false, false},
                                         {kCapCreate, "baz/quux", false, false},
                                         {kCapPatch, "baz/quux", false, false},
                                     });
}

}  // namespace
}  // namespace sigil::authz
