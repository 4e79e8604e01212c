// Redaction by position: every place a Secret's value can sit in a body the Kubernetes face
// audits holds a keyed hash afterwards, and a body that cannot be understood is not recorded.
// Each test names the position it covers; the ones marked "key-name Redact" failed on the
// former Auditor::Redact, which looked for keys named data, stringData and annotations.
#include "sigil/audit/redaction.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sigil/audit/auditor.h"
#include "sigil/base/clock.h"
#include "sigil/base/encoding.h"
#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::audit {
namespace {

using Json = nlohmann::ordered_json;

constexpr char kJson[] = "application/json";
constexpr char kJsonPatch[] = "application/json-patch+json";
constexpr char kMerge[] = "application/merge-patch+json";
constexpr char kStrategic[] = "application/strategic-merge-patch+json";
constexpr char kApply[] = "application/apply-patch+yaml";
constexpr char kLastApplied[] = "kubectl.kubernetes.io/last-applied-configuration";

std::string B64(const std::string& s) { return Base64Encode(s); }
bool IsHash(const Json& v) {
  return v.is_string() && v.get_ref<const std::string&>().starts_with("hmac-sha256:");
}

class RedactionTest : public ::testing::Test {
 protected:
  RedactionTest() {
    auto b = barrier::Barrier::Open(&backend_, seal_.get(), nullptr, &clock_);
    barrier_ = std::move(b).value();
    store_ = std::make_unique<store::ObjectStore>(barrier_.get());
    auditor_ =
        std::move(Auditor::Open(store_.get(), Policy::Everything(Level::kRequestResponse, {}),
                                {{dir_.path() + "/a.log", 0, false}}))
            .value();
  }

  std::optional<Json> Secret(std::string_view content_type, Json body,
                             std::string_view subresource = "") {
    return auditor_->RedactedBody("", "secrets", subresource, content_type, std::move(body));
  }
  std::string H(std::string_view v) const { return auditor_->Hash(v); }

  // No canary appears in the output raw, base64-encoded (at every alignment) or hex-encoded.
  static void ExpectNoRaw(const std::optional<Json>& out,
                          const std::vector<std::string>& canaries) {
    if (!out) return;
    std::string text = out->dump();
    for (const std::string& c : canaries) {
      std::vector<std::string> forms = {c, HexEncode(c)};
      for (const char* pad : {"", "x", "xx"}) {
        std::string e = Base64Encode(std::string(pad) + c);
        forms.push_back(e.substr(4, e.size() > 8 ? e.size() - 8 : 0));
      }
      for (const std::string& f : forms) {
        if (f.empty()) continue;
        EXPECT_TRUE(text.find(f) == std::string::npos)
            << "\"" << c << "\" (as \"" << f << "\") in " << text;
      }
    }
  }

  ManualClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Seal> seal_ = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<store::ObjectStore> store_;
  testing::TempDir dir_;
  std::unique_ptr<Auditor> auditor_;
};

// ---- the two cases found in review ---------------------------------------------------------

// key-name Redact: the op's path is /metadata/annotations, above the annotation.
TEST_F(RedactionTest, JsonPatchReplacingAnnotationsHashesLastApplied) {
  const std::string applied = R"({"data":{"p":"aHVudGVyMg=="}})";
  Json patch = Json::array({{{"op", "replace"},
                             {"path", "/metadata/annotations"},
                             {"value", {{kLastApplied, applied}, {"team", "a"}}}}});
  auto out = Secret(kJsonPatch, patch);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)[0]["value"][kLastApplied], H(applied));
  EXPECT_EQ((*out)[0]["value"]["team"], "a");
  EXPECT_EQ((*out)[0]["path"], "/metadata/annotations");
  ExpectNoRaw(out, {"hunter2"});
}

// key-name Redact: "data/pw" (no leading slash, answered 422) matched no known path.
TEST_F(RedactionTest, JsonPatchWithAPathThatIsNotAPointerHashesTheValue) {
  Json patch =
      Json::array({{{"op", "add"}, {"path", "data/pw"}, {"value", B64("refused-canary")}}});
  auto out = Secret(kJsonPatch, patch);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)[0]["value"], H(B64("refused-canary")));
  EXPECT_EQ((*out)[0]["path"], "data/pw");
  ExpectNoRaw(out, {"refused-canary"});
}

// ---- full objects ----------------------------------------------------------------------------

TEST_F(RedactionTest, SecretValuesAndLastAppliedBecomeHashesAndTheRestStays) {
  const std::string applied = R"({"apiVersion":"v1","kind":"Secret","stringData":{"q":"hunter3"}})";
  Json secret = {
      {"kind", "Secret"},
      {"apiVersion", "v1"},
      {"metadata",
       {{"name", "s"},
        {"namespace", "team"},
        {"resourceVersion", "7"},
        {"labels", {{"app", "db"}}},
        {"annotations", {{kLastApplied, applied}, {"team", "a"}}},
        {"managedFields", Json::array({{{"manager", "kubectl"},
                                        {"fieldsV1", {{"f:data", {{"f:p", Json::object()}}}}}}})}}},
      {"data", {{"p", B64("hunter2")}, {"bad", "not base64!"}}},
      {"stringData", {{"q", "hunter3"}}},
      {"type", "Opaque"},
      {"immutable", false}};
  auto out = Secret(kJson, secret);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)["data"]["p"],
            H("hunter2"));  // the decoded value: what `sigil audit hash` matches
  EXPECT_EQ((*out)["data"]["bad"], H("not base64!"));
  EXPECT_EQ((*out)["stringData"]["q"], H("hunter3"));
  EXPECT_EQ((*out)["metadata"]["annotations"][kLastApplied], H(applied));
  EXPECT_EQ((*out)["metadata"]["annotations"]["team"], "a");
  EXPECT_EQ((*out)["metadata"]["labels"]["app"], "db");
  EXPECT_EQ((*out)["metadata"]["managedFields"], secret["metadata"]["managedFields"]);
  EXPECT_EQ((*out)["metadata"]["name"], "s");
  EXPECT_EQ((*out)["type"], "Opaque");
  EXPECT_EQ((*out)["immutable"], false);
  ExpectNoRaw(out, {"hunter2", "hunter3", "not base64!"});
}

TEST_F(RedactionTest, ListsWatchEventsTablesAndStatusesAreRedactedWhereValuesSit) {
  Json item = {
      {"metadata", {{"name", "s"}, {"annotations", {{kLastApplied, "list-canary-applied"}}}}},
      {"data", {{"p", B64("list-canary")}}}};
  Json list = {{"kind", "SecretList"},
               {"apiVersion", "v1"},
               {"metadata", {{"resourceVersion", "9"}, {"continue", "abc"}}},
               {"items", Json::array({item, item})}};
  auto out = Secret(kJson, list);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)["items"][1]["data"]["p"], H("list-canary"));
  EXPECT_EQ((*out)["metadata"]["continue"], "abc");
  ExpectNoRaw(out, {"list-canary"});

  Json event = {{"type", "MODIFIED"},
                {"object", {{"kind", "Secret"}, {"data", {{"p", B64("watch-canary")}}}}}};
  out = Secret(kJson, event);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)["type"], "MODIFIED");
  EXPECT_EQ((*out)["object"]["data"]["p"], H("watch-canary"));

  // kubectl get: a Table whose rows carry PartialObjectMetadata (annotations included).
  Json table = {
      {"kind", "Table"},
      {"apiVersion", "meta.k8s.io/v1"},
      {"metadata", {{"resourceVersion", "9"}}},
      {"columnDefinitions", Json::array({{{"name", "Name"}, {"type", "string"}}})},
      {"rows",
       Json::array({{{"cells", {"s", "Opaque", 1, "3m"}},
                     {"object",
                      {{"kind", "PartialObjectMetadata"},
                       {"metadata",
                        {{"name", "s"}, {"annotations", {{kLastApplied, "table-canary"}}}}}}}}})}};
  out = Secret(kJson, table);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)["rows"][0]["object"]["metadata"]["annotations"][kLastApplied],
            H("table-canary"));
  EXPECT_EQ((*out)["rows"][0]["cells"], table["rows"][0]["cells"]);
  ExpectNoRaw(out, {"table-canary"});

  Json status = {{"kind", "Status"},
                 {"apiVersion", "v1"},
                 {"metadata", Json::object()},
                 {"status", "Failure"},
                 {"message", "the JSON patch could not be applied (error 107)"},
                 {"reason", "Invalid"},
                 {"details", {{"name", "s"}, {"kind", "secrets"}}},
                 {"code", 422}};
  EXPECT_EQ(Secret(kJson, status), status);
}

TEST_F(RedactionTest, HistoryVersionsAndRollback) {
  Json versions = {
      {"kind", "SecretVersionList"},
      {"apiVersion", "sigil.dev/v1"},
      {"metadata", {{"namespace", "d"}, {"name", "s"}}},
      {"keep", 10},
      {"current", 2},
      {"versions",
       Json::array(
           {{{"version", 1}, {"operation", "create"}, {"keys", {"p"}}, {"deleted", false}}})}};
  EXPECT_EQ(Secret(kJson, versions, "versions"), versions);  // key names only: nothing to hash

  Json version = {{"kind", "SecretVersion"},
                  {"apiVersion", "sigil.dev/v1"},
                  {"version", 1},
                  {"operation", "update"},
                  {"keys", {"p"}},
                  {"object",
                   {{"kind", "Secret"},
                    {"metadata", {{"annotations", {{kLastApplied, "version-canary-applied"}}}}},
                    {"data", {{"p", B64("version-canary")}}}}}};
  auto out = Secret(kJson, version, "versions");
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)["object"]["data"]["p"], H("version-canary"));
  EXPECT_EQ((*out)["keys"], version["keys"]);
  ExpectNoRaw(out, {"version-canary", "version-canary-applied"});

  Json rollback = {{"version", 3}};
  EXPECT_EQ(Secret(kJson, rollback, "rollback"), rollback);
  Json rolled = {{"kind", "Secret"}, {"data", {{"p", B64("rollback-canary")}}}};
  out = Secret(kJson, rolled, "rollback");
  ASSERT_TRUE(out);
  ExpectNoRaw(out, {"rollback-canary"});
  // Patches are no body of these subresources.
  EXPECT_FALSE(Secret(kJsonPatch, Json::array(), "rollback"));
}

// ---- JSON patches (RFC 6902) -----------------------------------------------------------------

TEST_F(RedactionTest, JsonPatchValuesAreRedactedByWhereTheirPathPointsAtOrAboveOrBelow) {
  Json whole = {{"apiVersion", "v1"},
                {"kind", "Secret"},
                {"metadata", {{"name", "s"}}},
                {"data", {{"p", B64("jp-root")}}}};
  Json patch = Json::array({
      {{"op", "replace"}, {"path", ""}, {"value", whole}},  // 0
      {{"op", "add"},
       {"path", "/metadata"},
       {"value", {{"name", "s"}, {"annotations", {{kLastApplied, "jp-meta"}}}}}},     // 1
      {{"op", "replace"}, {"path", "/data"}, {"value", {{"x", B64("jp-data")}}}},     // 2
      {{"op", "add"}, {"path", "/stringData"}, {"value", {{"y", "jp-stringdata"}}}},  // 3
      {{"op", "add"}, {"path", "/data/p"}, {"value", B64("jp-data-p")}},              // 4
      {{"op", "test"}, {"path", "/data/p"}, {"value", B64("jp-test")}},               // 5
      {{"op", "add"}, {"path", "/stringData/q"}, {"value", "jp-stringdata-q"}},       // 6
      {{"op", "add"},
       {"path", "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration"},
       {"value", "jp-ann"}},                                                              // 7
      {{"op", "add"}, {"path", "/data/p/deeper"}, {"value", "jp-below"}},                 // 8
      {{"op", "add"}, {"path", "/data/~2bad"}, {"value", "jp-bad-escape"}},               // 9
      {{"op", "add"}, {"path", "/metadata/labels/a"}, {"value", "visible"}},              // 10
      {{"op", "add"}, {"path", "/metadata/annotations/team"}, {"value", "visible-too"}},  // 11
      {{"op", "move"}, {"from", "/data/p"}, {"path", "/data/q"}},                         // 12
      {{"op", "remove"}, {"path", "/data/q"}},                                            // 13
      {{"op", "replace"},
       {"path", "/items/0/data/p"},
       {"value", B64("jp-items")}},  // 14 key-name Redact
      {{"op", "add"},
       {"path", "/metadata/annotations"},
       {"value", {{kLastApplied, {{"data", {{"p", "jp-nested"}}}}}}}},  // 15 key-name Redact
  });
  auto out = Secret(kJsonPatch, patch);
  ASSERT_TRUE(out);
  Json o = *out;  // a copy: operator[] on a missing member must not be undefined
  EXPECT_EQ(o[0]["value"]["data"]["p"], H("jp-root"));
  EXPECT_EQ(o[0]["value"]["metadata"]["name"], "s");
  EXPECT_EQ(o[1]["value"]["annotations"][kLastApplied], H("jp-meta"));
  EXPECT_EQ(o[2]["value"]["x"], H("jp-data"));
  EXPECT_EQ(o[3]["value"]["y"], H("jp-stringdata"));
  EXPECT_EQ(o[4]["value"], H("jp-data-p"));
  EXPECT_EQ(o[5]["value"], H("jp-test"));
  EXPECT_EQ(o[6]["value"], H("jp-stringdata-q"));
  EXPECT_EQ(o[7]["value"], H("jp-ann"));
  EXPECT_TRUE(IsHash(o[8]["value"]));
  EXPECT_EQ(o[9]["value"], H("jp-bad-escape"));
  EXPECT_EQ(o[10]["value"], "visible");
  EXPECT_EQ(o[11]["value"], "visible-too");
  EXPECT_EQ(o[12], patch[12]);
  EXPECT_EQ(o[13], patch[13]);
  EXPECT_EQ(o[14]["value"], H("jp-items"));
  EXPECT_TRUE(IsHash(o[15]["value"][kLastApplied]));
  ExpectNoRaw(out, {"jp-root", "jp-meta", "jp-data", "jp-stringdata", "jp-data-p", "jp-test",
                    "jp-ann", "jp-below", "jp-bad-escape", "jp-items", "jp-nested"});
}

// key-name Redact: members it did not know, operations that are not objects, paths that are
// not strings.
TEST_F(RedactionTest, JsonPatchOperationsOfUnknownShapeAreHashed) {
  Json patch = Json::array({
      {{"op", "add"},
       {"path", "/data/p"},
       {"val", B64("typo-canary")}},  // "val": refused, still recorded
      "string-op-canary",
      Json::array({"array-op-canary"}),
      {{"op", "add"}, {"path", Json::array({"data", "p"})}, {"value", "array-path-canary"}},
      {{"op", Json::object({{"x", "op-canary"}})}, {"path", "/metadata/labels/a"}, {"value", "v"}},
      {{"op", "add"}, {"path", "/data/p"}, {"value", nullptr}},
      {{"op", "add"}, {"path", "/data/p"}, {"value", 1234567}},
  });
  auto out = Secret(kJsonPatch, patch);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)[0]["val"], H(B64("typo-canary")));
  EXPECT_EQ((*out)[1], H("string-op-canary"));
  EXPECT_TRUE((*out)[2].is_string());
  EXPECT_EQ((*out)[3]["value"], H("array-path-canary"));
  EXPECT_TRUE((*out)[4]["op"].is_string());
  EXPECT_TRUE((*out)[5]["value"].is_null());
  EXPECT_EQ((*out)[6]["value"], H("1234567"));
  ExpectNoRaw(out, {"typo-canary", "string-op-canary", "array-op-canary", "array-path-canary",
                    "op-canary", "1234567"});
  // A JSON patch is an array: anything else is not understood, so not recorded.
  EXPECT_FALSE(Secret(kJsonPatch, Json{{"data", {{"p", B64("object-canary")}}}}));
  EXPECT_FALSE(Secret(kJsonPatch, Json("x")));
}

// ---- merge, strategic-merge and apply patches: partial Secrets ---------------------------------

TEST_F(RedactionTest, MergePatchesAndApplyConfigurationsArePartialSecrets) {
  const std::string applied = R"({"data":{"p":"bWVyZ2UtY2FuYXJ5"}})";  // base64 of merge-canary
  Json merge = {{"metadata", {{"annotations", {{kLastApplied, applied}, {"other", nullptr}}}}},
                {"data", {{"p", B64("merge-canary")}, {"gone", nullptr}}},
                {"stringData", nullptr}};
  auto out = Secret(kMerge, merge);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)["metadata"]["annotations"][kLastApplied], H(applied));
  EXPECT_TRUE((*out)["metadata"]["annotations"]["other"].is_null());
  EXPECT_EQ((*out)["data"]["p"], H("merge-canary"));
  EXPECT_TRUE((*out)["data"]["gone"].is_null());  // a deletion shows as null
  EXPECT_TRUE((*out)["stringData"].is_null());
  ExpectNoRaw(out, {"merge-canary"});

  Json strategic = {{"$patch", "replace"},
                    {"$retainKeys", {"data"}},
                    {"data", {{"$patch", "replace"}, {"p", B64("smp-canary")}}}};
  out = Secret(kStrategic, strategic);
  ASSERT_TRUE(out);
  ExpectNoRaw(out, {"smp-canary"});

  // Apply YAML arrives converted to JSON; YAML scalars may come as numbers or booleans.
  Json apply = {{"apiVersion", "v1"},
                {"kind", "Secret"},
                {"metadata", {{"name", "s"}}},
                {"stringData", {{"pin", 8675309}, {"on", true}, {"pw", "apply-canary"}}}};
  out = Secret(kApply, apply);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)["stringData"]["pin"], H("8675309"));
  EXPECT_EQ((*out)["stringData"]["pw"], H("apply-canary"));
  ExpectNoRaw(out, {"8675309", "apply-canary"});
  // A merge patch is an object.
  EXPECT_FALSE(Secret(kMerge, Json::array({B64("array-canary")})));
  EXPECT_FALSE(Secret(kApply, Json("apply-string-canary")));
}

// ---- hostile shapes: redacted or not recorded, never raw ---------------------------------------

// key-name Redact: data, stringData and annotations that are not objects, and unknown fields.
TEST_F(RedactionTest, HostileShapesAreHashedWhole) {
  for (const char* ct : {kJson, kMerge, kStrategic, kApply}) {
    SCOPED_TRACE(ct);
    Json body = {{"data", Json::array({"h-array-canary", Json::array({"h-nested-canary"})})},
                 {"stringData", 31337424242},
                 {"metadata",
                  {{"annotations", Json::array({"h-annotation-canary"})},
                   {"labels", {{"ok", "fine"}}},
                   {"annotation", {{kLastApplied, "h-typo-canary"}}}}},
                 {"dat", {{"p", "h-unknown-canary"}}},
                 {"items", Json::array({"h-item-canary", {{"data", "h-item-data-canary"}}})},
                 {"object", "h-object-canary"},
                 {"type", {{"nested", "h-type-canary"}}},
                 {"rows", Json::array({{{"cells", Json::array({{{"x", "h-cell-canary"}}})},
                                        {"object", {{"stringData", {{"a", "h-row-canary"}}}}}}})}};
    auto out = Secret(ct, body);
    ASSERT_TRUE(out);
    EXPECT_TRUE((*out)["data"].is_string());
    EXPECT_TRUE((*out)["stringData"].is_string());
    EXPECT_EQ((*out)["metadata"]["labels"]["ok"], "fine");
    ExpectNoRaw(out, {"h-array-canary", "h-nested-canary", "31337424242", "h-annotation-canary",
                      "h-typo-canary", "h-unknown-canary", "h-item-canary", "h-item-data-canary",
                      "h-object-canary", "h-type-canary", "h-cell-canary", "h-row-canary"});
  }
  // Values that are structures are hashed as their JSON text.
  auto out = Secret(
      kJson, Json{{"data", {{"p", {{"x", Json::array({"deep-canary"})}}}}},
                  {"metadata", {{"annotations", {{kLastApplied, {{"data", "deep-applied"}}}}}}}});
  ASSERT_TRUE(out);
  EXPECT_TRUE(IsHash((*out)["data"]["p"]));
  ExpectNoRaw(out, {"deep-canary", "deep-applied"});
  // Not objects at all.
  EXPECT_FALSE(Secret(kJson, Json("a-bare-string-canary")));
  EXPECT_FALSE(Secret(kJson, Json::array({{{"data", {{"p", "x"}}}}})));
  EXPECT_FALSE(Secret(kJson, Json(42)));
}

TEST_F(RedactionTest, TooDeeplyNestedBodiesAreNotRecorded) {
  Json doc = {{"data", {{"p", B64("deepest-canary")}}}};
  for (int i = 0; i < 200; ++i) doc = Json{{"items", Json::array({doc})}};
  EXPECT_FALSE(Secret(kJson, doc));
  Json op = Json::array({{{"op", "add"}, {"path", ""}, {"value", doc}}});
  EXPECT_FALSE(Secret(kJsonPatch, op));
}

// ---- what is recorded for which resource -------------------------------------------------------

TEST_F(RedactionTest, UnknownResourcesSubresourcesAndMediaTypesRecordNothing) {
  Json secret = {{"data", {{"p", B64("x")}}}};
  EXPECT_FALSE(auditor_->RedactedBody("", "secrets", "status", kJson, secret));
  EXPECT_FALSE(auditor_->RedactedBody("", "secrets", "proxy", kJson, secret));
  EXPECT_FALSE(auditor_->RedactedBody("", "configmaps", "", kJson, secret));
  EXPECT_FALSE(auditor_->RedactedBody("", "", "", kJson, secret));  // a non-resource request
  EXPECT_FALSE(auditor_->RedactedBody("authentication.k8s.io", "tokenreviews", "", kJson,
                                      Json{{"spec", {{"token", "t"}}}}));
  EXPECT_FALSE(auditor_->RedactedBody("", "secrets", "", "text/plain", secret));
  EXPECT_FALSE(
      auditor_->RedactedBody("", "secrets", "", "application/vnd.kubernetes.protobuf", secret));
  EXPECT_FALSE(auditor_->RedactedBody("", "secrets", "", "Application/JSON", secret));
  // A Secret in another group's path is still redacted as one.
  auto out = auditor_->RedactedBody("example.com", "secrets", "", kJson, secret);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)["data"]["p"], H("x"));
  // Parameters after the media type are ignored.
  out = auditor_->RedactedBody("", "secrets", "", "application/json; charset=utf-8", secret);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)["data"]["p"], H("x"));
}

TEST_F(RedactionTest, NonSecretKindsAreRecordedAsTheyAre) {
  Json role = {
      {"kind", "Role"},
      {"metadata", {{"name", "r"}, {"annotations", {{kLastApplied, R"({"kind":"Role"})"}}}}},
      {"rules", Json::array({{{"verbs", {"get"}}, {"resources", {"secrets"}}}})}};
  EXPECT_EQ(auditor_->RedactedBody("rbac.authorization.k8s.io", "roles", "", kJson, role), role);
  EXPECT_EQ(
      auditor_->RedactedBody("rbac.authorization.k8s.io", "clusterrolebindings", "", kMerge, role),
      role);
  Json ns = {{"kind", "Namespace"}, {"metadata", {{"name", "team"}}}};
  EXPECT_EQ(auditor_->RedactedBody("", "namespaces", "", kJson, ns), ns);
  Json review = {{"kind", "SelfSubjectAccessReview"},
                 {"spec", {{"resourceAttributes", {{"verb", "get"}}}}}};
  EXPECT_EQ(
      auditor_->RedactedBody("authorization.k8s.io", "selfsubjectaccessreviews", "", kJson, review),
      review);
  // RBAC kinds under a group that does not serve them are unknown.
  EXPECT_FALSE(auditor_->RedactedBody("", "roles", "", kJson, role));
  EXPECT_FALSE(auditor_->RedactedBody("rbac.authorization.k8s.io", "roles", "status", kJson, role));
}

// The redaction itself, with a stand-in hash: the same positions without an Auditor.
TEST(RedactBodyTest, UsesTheGivenHash) {
  auto hash = [](std::string_view v) { return "H(" + std::to_string(v.size()) + ")"; };
  auto out =
      RedactBody("", "secrets", "", "application/json", Json{{"data", {{"p", B64("abc")}}}}, hash);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)["data"]["p"], "H(3)");
}

// Regression (hostile review): a refused request's record carried `?access_token=...` as sent.
TEST(RedactQueryTest, CredentialParametersLoseTheirValues) {
  EXPECT_EQ(RedactQuery("/api/v1/secrets"), "/api/v1/secrets");
  EXPECT_EQ(RedactQuery("/api/v1/secrets?access_token=abc&limit=5"), "/api/v1/secrets?access_token=REDACTED&limit=5");
  EXPECT_EQ(RedactQuery("/x?watch=1&Token=t&X-Vault-Token=v&client_secret=s&password=p&jwt=j&sig=q&api_key=k&continue=c"),
            "/x?watch=1&Token=REDACTED&X-Vault-Token=REDACTED&client_secret=REDACTED&password=REDACTED&jwt=REDACTED"
            "&sig=REDACTED&api_key=REDACTED&continue=c");
  // Percent-encoded names are decoded before they are judged; names without a value stay.
  EXPECT_EQ(RedactQuery("/x?access%5Ftoken=abc&%74oken=z&token&labelSelector=a%3Db"),
            "/x?access%5Ftoken=REDACTED&%74oken=REDACTED&token&labelSelector=a%3Db");
  EXPECT_EQ(RedactQuery("/x?"), "/x?");
  EXPECT_EQ(RedactQuery("/x?&&a=1&"), "/x?&&a=1&");
  // Review: `;` separators, fragments, more names, and credential-shaped values under any name.
  EXPECT_EQ(RedactQuery("/x?limit=1;access_token=X"), "/x?limit=1;access_token=REDACTED");
  EXPECT_EQ(RedactQuery("/x?a=1#access_token=X"), "/x?a=1#REDACTED");
  EXPECT_EQ(RedactQuery("/x#t=1"), "/x#REDACTED");
  EXPECT_EQ(RedactQuery("/x?pass=a&passphrase=b&pw=c&bearer=d&session=e&cookie=f&code=g&assertion=h&otp=i&pretty=true"),
            "/x?pass=REDACTED&passphrase=REDACTED&pw=REDACTED&bearer=REDACTED&session=REDACTED&cookie=REDACTED&code=REDACTED"
            "&assertion=REDACTED&otp=REDACTED&pretty=true");
  EXPECT_EQ(RedactQuery("/x?q=sgl_abc&r=hvs.def&s=eyJhbGciOi&sgl_bare&watch=1"), "/x?q=REDACTED&r=REDACTED&s=REDACTED&REDACTED&watch=1");
}

}  // namespace
}  // namespace sigil::audit
