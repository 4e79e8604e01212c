#include "sigil/server/config.h"

#include <gtest/gtest.h>

#include "sigil/testing/status_matchers.h"

namespace sigil::server {
namespace {

using ::sigil::testing::StatusIs;

TEST(ConfigTest, ParsesEveryKey) {
  auto c = ParseConfig(R"(
listen: "0.0.0.0:9443"
data_dir: /var/lib/sigil
log: {level: debug, format: json}
tls: {hosts: [sigil.example.com]}
seal: {type: key-file, key_file: /etc/sigil/root.key}
encryption_config: /etc/sigil/enc.yaml
storage: {type: lmdb, max_size_mb: 2048, watch_history: 500, watch_history_max_mb: 16}
limits: {max_body_bytes: 1000, max_header_bytes: 2000, read_timeout_seconds: 5, idle_timeout_seconds: 6,
         handshake_timeout_seconds: 7, shutdown_grace_seconds: 8}
threads: 3
)");
  ASSERT_TRUE(c.ok()) << c.error();
  SIGIL_ASSERT_OK(c->Validate());
  EXPECT_EQ(c->http.address, "0.0.0.0");
  EXPECT_EQ(c->http.port, 9443);
  EXPECT_EQ(c->log_format, "json");
  EXPECT_EQ(c->tls_hosts, std::vector<std::string>{"sigil.example.com"});
  EXPECT_EQ(c->storage_max_bytes, uint64_t{2048} << 20);
  EXPECT_EQ(c->watch_history, 500u);
  EXPECT_EQ(c->watch_history_bytes, uint64_t{16} << 20);
  EXPECT_EQ(c->http.max_body_bytes, 1000u);
  EXPECT_EQ(c->http.read_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c->http.shutdown_grace, std::chrono::seconds(8));
  EXPECT_EQ(c->http.threads, 3);
}

TEST(ConfigTest, RejectsMistakes) {
  EXPECT_THAT(ParseConfig("lisen: x"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseConfig("log: {levl: x}"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseConfig("threads: many"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseConfig("storage: {type: etcd}"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseConfig("storage: {watch_history_max_mb: 0}"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(ParseConfig("{}")->watch_history_bytes, uint64_t{64} << 20);  // the documented default
  EXPECT_THAT(ParseConfig("limits: {read_timeout_seconds: 0}"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseConfig("listen: [unclosed"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseConfig("- a list"), StatusIs(StatusCode::kInvalidArgument));
  auto c = ParseConfig("listen: 127.0.0.1:99999\n");
  ASSERT_TRUE(c.ok());
  EXPECT_THAT(c->Validate(), StatusIs(StatusCode::kInvalidArgument));
}

TEST(ConfigTest, ProductionNeedsDataDirAndKeyFileDevDoesNot) {
  Config c;
  EXPECT_THAT(c.Validate(), StatusIs(StatusCode::kInvalidArgument));
  c.data_dir = "/tmp/x";
  auto s = c.Validate();
  EXPECT_THAT(s, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_NE(s.message().find("generate-root-key"), std::string::npos);
  c.seal_key_file = "/tmp/k";
  SIGIL_EXPECT_OK(c.Validate());
  Config dev;
  dev.dev = true;
  SIGIL_EXPECT_OK(dev.Validate());
  EXPECT_EQ(dev.seal_type, "dev");
  // A data_dir with --dev used to be ignored without a word (issue 16): refused, saying why.
  dev.data_dir = "/tmp/keep";
  Status st = dev.Validate();
  EXPECT_THAT(st, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_NE(st.message().find("temporary directory"), std::string::npos) << st.message();
  Config bad;
  bad.data_dir = "/x";
  bad.seal_key_file = "/k";
  bad.seal_type = "dev";
  EXPECT_THAT(bad.Validate(), StatusIs(StatusCode::kInvalidArgument));
}

TEST(ConfigTest, ListenForms) {
  Config c;
  c.listen = "[::1]:0";
  SIGIL_ASSERT_OK(c.ApplyListen());
  EXPECT_EQ(c.http.address, "::1");
  EXPECT_EQ(c.http.port, 0);
  c.listen = "8443";
  EXPECT_THAT(c.ApplyListen(), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace sigil::server
