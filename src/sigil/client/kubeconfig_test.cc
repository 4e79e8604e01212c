#include "sigil/client/kubeconfig.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "sigil/base/encoding.h"
#include "sigil/base/file.h"
#include "sigil/client/commands.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::client {
namespace {

using ::sigil::testing::StatusIs;

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sigil-kc-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    std::string p = (dir_ / name).string();
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p;
  }
  std::filesystem::path dir_;
};

TEST_F(KubeconfigTest, RenderedKubeconfigLoadsBack) {
  SecretBytes key(std::string_view("-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n"));
  std::string text = RenderKubeconfig("sigil", "https://127.0.0.1:8443", "CA PEM", "admin", "CERT PEM", key);
  auto ep = LoadKubeconfig(Write("kc", text), "");
  ASSERT_TRUE(ep.ok()) << ep.error();
  EXPECT_EQ(ep->server, "https://127.0.0.1:8443");
  EXPECT_EQ(ep->ca_pem, "CA PEM");
  EXPECT_EQ(ep->cert_pem, "CERT PEM");
  EXPECT_EQ(ep->key_pem.view(), key.view());
  EXPECT_EQ(ep->namespace_, "default");
}

TEST_F(KubeconfigTest, NamedContextFilesAndTokenFile) {
  Write("ca.crt", "FILE CA");
  Write("tok", "abc123\n");
  std::string kc = Write("kc", R"(apiVersion: v1
kind: Config
current-context: a
contexts:
- {name: a, context: {cluster: c1, user: u1}}
- {name: b, context: {cluster: c2, user: u2, namespace: team}}
clusters:
- {name: c1, cluster: {server: "https://a:1"}}
- {name: c2, cluster: {server: "https://b:2", certificate-authority: ca.crt}}
users:
- {name: u1, user: {token: t1}}
- {name: u2, user: {tokenFile: tok}}
)");
  auto a = LoadKubeconfig(kc, "");
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_EQ(a->server, "https://a:1");
  EXPECT_EQ(a->token.view(), "t1");
  auto b = LoadKubeconfig(kc, "b");
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(b->ca_pem, "FILE CA");
  EXPECT_EQ(b->token.view(), "abc123");
  EXPECT_EQ(b->namespace_, "team");
  EXPECT_THAT(LoadKubeconfig(kc, "nope"), StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(KubeconfigTest, RefusesPlainHttpSkipVerifyAndReadableFiles) {
  auto base = [](const std::string& cluster) {
    return "current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: " + cluster +
           "}]\nusers: [{name: u, user: {}}]\n";
  };
  EXPECT_THAT(LoadKubeconfig(Write("h", base("{server: 'http://x:1'}")), ""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(LoadKubeconfig(Write("s", base("{server: 'https://x:1', insecure-skip-tls-verify: true}")), ""),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_FALSE(LoadKubeconfig(Write("r", base("{server: 'https://x:1'}"), 0644), "").ok());
  EXPECT_TRUE(LoadKubeconfig(Write("ok", base("{server: 'https://x:1'}")), "").ok());
}

TEST(SecretRefTest, Parses) {
  EXPECT_EQ(ParseSecretRef("ns/name", "d")->ns, "ns");
  EXPECT_EQ(ParseSecretRef("name", "d")->ns, "d");
  EXPECT_FALSE(ParseSecretRef("a/b/c", "d").ok());
  EXPECT_FALSE(ParseSecretRef("/x", "d").ok());
}

TEST(HttpClientTest, UnreachableServerIsUnavailable) {
  Endpoint ep;
  ep.server = "https://127.0.0.1:1";
  EXPECT_THAT(Request(ep, "GET", "/version"), StatusIs(StatusCode::kUnavailable));
  ep.server = "http://127.0.0.1:1";
  EXPECT_THAT(Request(ep, "GET", "/version"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace sigil::client
