// csi/: the parameters a SecretProviderClass and the driver hand the provider. The fetches
// themselves are tested against a real server in tests/integration/test_csi_provider.py.
#include <nlohmann/json.hpp>

#include "sigil/csi/provider.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::csi {
namespace {

using ::sigil::testing::StatusIs;

std::string Attrs(nlohmann::json extra, bool with_token = true) {
  nlohmann::json a = {{"csi.storage.k8s.io/pod.name", "app-0"},
                      {"csi.storage.k8s.io/pod.namespace", "team-a"}};
  if (with_token) {
    a["csi.storage.k8s.io/serviceAccount.tokens"] =
        R"({"sigil":{"token":"jwt-1","expirationTimestamp":"2030-01-01T00:00:00Z"}})";
  }
  for (auto& [k, v] : extra.items()) a[k] = v;
  return a.dump();
}

std::string Error(const Result<Parameters>& r) { return r.ok() ? "" : r.error().message(); }

TEST(ParseMountTest, KubernetesSecretsWithThePodsToken) {
  SIGIL_ASSERT_OK_AND_ASSIGN(
      Parameters p,
      ParseMount(Attrs({{"objects",
                         "- {objectName: db-password, secretName: db, secretKey: password}\n"
                         "- {objectName: conf/key, secretName: tls, secretNamespace: shared, "
                         "secretKey: tls.key, filePermission: 0400, encoding: base64}\n"}}),
                 "420"));
  EXPECT_TRUE(p.role.empty());
  EXPECT_EQ(p.token.view(), "jwt-1");
  EXPECT_EQ(p.mode, 0644);
  ASSERT_EQ(p.objects.size(), 2u);
  EXPECT_EQ(p.objects[0].secret_namespace, "team-a");  // the pod's
  EXPECT_EQ(p.objects[1].secret_namespace, "shared");
  EXPECT_EQ(p.objects[1].mode, 0400);
  EXPECT_EQ(p.objects[1].encoding, "base64");
}

TEST(ParseMountTest, VaultPathsAsVaultCsiProviderTakesThem) {
  SIGIL_ASSERT_OK_AND_ASSIGN(
      Parameters p,
      ParseMount(
          Attrs({{"roleName", "app"},
                 {"vaultKubernetesMountPath", "auth/k8s/"},
                 {"objects",
                  "- objectName: api\n  secretPath: /v1/secret/data/app\n  secretKey: token\n"
                  "- objectName: whole.json\n  secretPath: database/creds/ro\n"}}),
          ""));
  EXPECT_EQ(p.role, "app");
  EXPECT_EQ(p.auth_mount, "k8s");
  EXPECT_EQ(p.objects[0].path, "secret/data/app");
  EXPECT_EQ(p.objects[1].path, "database/creds/ro");
  EXPECT_TRUE(p.objects[1].key.empty());
}

TEST(ParseMountTest, RefusalsNameTheParameter) {
  struct Case {
    std::string attrs, permission, message;
  };
  std::vector<Case> cases = {
      {Attrs({{"objects", "- {objectName: a, secretName: db, secretKey: k}"}}, false), "420",
       "needs tokenRequests"},
      {Attrs({{"objects", "- {objectName: ../a, secretName: db, secretKey: k}"}}), "420",
       "objects[0].objectName: must not start with '..'"},
      {Attrs({{"objects",
               "- {objectName: a, secretName: db, secretKey: k}\n- {objectName: a, secretName: db, "
               "secretKey: j}"}}),
       "420", "\"a\" is given twice"},
      {Attrs({{"objects", "- {objectName: a, secretName: db}"}}), "420", "secretKey: required"},
      {Attrs({{"objects", "- {objectName: a, secretPath: secret/data/x, secretKey: k}"}}), "420",
       "secretPath needs roleName"},
      {Attrs({{"roleName", "r"}, {"objects", "- {objectName: a, secretPath: secret/../sys/seal}"}}),
       "420", "secretPath: not a valid path"},
      {Attrs({{"objects", "- {objectName: a, secretName: db, secretKey: k, method: PUT}"}}), "420",
       "only GET"},
      {Attrs({{"objects", "array:\n  - |\n    objectName: a"}}), "420", "YAML list"},
      {Attrs({{"objects", "- {objectName: a, secretName: db, secretKey: k, colour: red}"}}), "420",
       "unknown field \"colour\""},
      {Attrs({{"objects", "- {objectName: a, secretName: db, secretKey: k}"}}), "999",
       "permission must be a file mode"},
      {Attrs(
           {{"audience", "vault"}, {"objects", "- {objectName: a, secretName: db, secretKey: k}"}}),
       "420", "no service-account token for audience \"vault\""},
      {Attrs({{"vaultSkipTLSVerify", "true"},
              {"objects", "- {objectName: a, secretName: db, secretKey: k}"}}),
       "420", "not supported"},
      {Attrs({}), "420", "the objects parameter is required"},
      {"[1]", "420", "not a JSON object"},
  };
  for (const Case& c : cases) {
    auto r = ParseMount(c.attrs, c.permission);
    EXPECT_THAT(r, StatusIs(StatusCode::kInvalidArgument)) << c.attrs;
    EXPECT_NE(Error(r).find(c.message), std::string::npos) << c.attrs << " gave: " << Error(r);
    EXPECT_EQ(Error(r).find("jwt-1"), std::string::npos);  // the token never in a message
  }
}

}  // namespace
}  // namespace sigil::csi
