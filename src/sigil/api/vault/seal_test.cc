// The endpoints that answer in every state (SealEndpoints), against a SealControl that records
// what it is asked and answers from a fixed state: the wire shapes and status codes here; the
// real seal behind them is tested in barrier/shamir_seal_test.cc and, end to end through hvac,
// in tests/integration/test_vault_seal.py.
#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>

#include "sigil/api/vault/seal_control.h"
#include "sigil/base/encoding.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::vault {
namespace {

using TestJson = nlohmann::json;

class FixedSeal final : public SealControl {
 public:
  SealStatus state;
  std::vector<std::string> shares_seen;  // hex of what Unseal received
  int resets = 0;

  SealStatus Status() override { return state; }
  Result<Initialized> Initialize(int shares, int threshold) override {
    if (state.initialized) return FailedPreconditionError("Vault is already initialized");
    if (threshold > shares) return InvalidArgumentError("secret threshold cannot be larger than secret shares");
    Initialized out;
    for (int i = 0; i < shares; ++i) out.shares.push_back(SecretBytes(std::string(33, static_cast<char>('a' + i))));
    out.root_token = SecretBytes(std::string_view("root-token"));
    return out;
  }
  Result<SealStatus> Unseal(SecretBytes share) override {
    shares_seen.push_back(HexEncode(share.view()));
    if (share.size() != 33) return InvalidArgumentError("invalid key: a key share of this seal is 33 bytes");
    state.progress++;
    return state;
  }
  SealStatus ResetUnseal() override {
    ++resets;
    state.progress = 0;
    return state;
  }
  sigil::Status Seal() override { return OkStatus(); }
  Result<RekeyStatus> RekeyStatusNow() override {
    if (state.sealed) return UnavailableError("Vault is sealed");
    return RekeyStatus{};
  }
  Result<RekeyStatus> RekeyInit(int, int) override { return UnavailableError("Vault is sealed"); }
  sigil::Status RekeyCancel() override { return OkStatus(); }
  Result<RekeyUpdate> RekeyAdd(SecretBytes, std::string_view) override { return InvalidArgumentError("incorrect nonce supplied"); }
  Result<KeyStatus> Rotate() override { return KeyStatus{}; }
  Result<KeyStatus> CurrentKey() override { return KeyStatus{}; }
};

struct Answer {
  int status = 0;
  std::string content_type;
  TestJson body;
  std::string raw;
};

class SealEndpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seal_.state.type = "shamir";
    seal_.state.initialized = true;
    seal_.state.sealed = true;
    seal_.state.threshold = 3;
    seal_.state.shares = 5;
    endpoints_.Register(&router_);
  }
  Answer Send(std::string_view method, const std::string& target, const std::string& body = "") {
    http::Request req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    if (!body.empty()) req.body().assign(body.data(), body.size());
    req.prepare_payload();
    std::string_view path(target);
    const http::Handler* h = router_.Find(path.substr(0, path.find('?')));
    EXPECT_NE(h, nullptr) << target;
    std::promise<http::Response> done;
    (*h)(req, http::RequestContext{}, [&](http::Response r) { done.set_value(std::move(r)); });
    http::Response res = done.get_future().get();
    Answer a;
    a.status = res.result_int();
    if (auto it = res.find(boost::beast::http::field::content_type); it != res.end()) a.content_type = std::string(it->value());
    a.raw.assign(res.body().data(), res.body().size());
    a.body = TestJson::parse(a.raw, nullptr, false);
    return a;
  }

  ManualClock clock_;
  FixedSeal seal_;
  SealEndpoints endpoints_{&seal_, &clock_, "9.9.9"};
  http::Router router_;
};

TEST_F(SealEndpointsTest, HealthReportsEachStateWithItsCode) {
  Answer sealed = Send("GET", "/v1/sys/health");
  EXPECT_EQ(sealed.status, 503);
  EXPECT_EQ(sealed.body["sealed"], true);
  EXPECT_EQ(sealed.body["version"], "9.9.9");
  EXPECT_FALSE(sealed.body.contains("cluster_id"));  // omitted while sealed
  EXPECT_EQ(Send("GET", "/v1/sys/health?sealedcode=299").status, 299);
  seal_.state.initialized = false;
  EXPECT_EQ(Send("GET", "/v1/sys/health").status, 501);
  EXPECT_EQ(Send("GET", "/v1/sys/health?uninitcode=200").status, 200);
  seal_.state.initialized = true;
  seal_.state.sealed = false;
  seal_.state.cluster_id = "cid";
  Answer active = Send("GET", "/v1/sys/health");
  EXPECT_EQ(active.status, 200);
  EXPECT_EQ(active.body["cluster_id"], "cid");
  EXPECT_FALSE(active.body.contains("data"));  // raw, no envelope
  // Regression: a 204 with a body made Beast throw on the worker thread, which ended the
  // server (any anonymous client could). 1xx, 204 and 304 are sent without one.
  Answer no_content = Send("GET", "/v1/sys/health?activecode=204");
  EXPECT_EQ(no_content.status, 204);
  EXPECT_TRUE(no_content.raw.empty());
  EXPECT_EQ(Send("GET", "/v1/sys/health?activecode=abc").status, 400);
  EXPECT_EQ(Send("GET", "/v1/sys/health?standbyok=maybe").status, 400);
  Answer head = Send("HEAD", "/v1/sys/health");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.raw.empty());
  EXPECT_EQ(Send("POST", "/v1/sys/health").status, 405);
}

TEST_F(SealEndpointsTest, UnsealTakesHexOrBase64AndRefusesTheRest) {
  std::string share(33, '\x07');
  Answer hex = Send("PUT", "/v1/sys/unseal", TestJson{{"key", HexEncode(share)}}.dump());
  ASSERT_EQ(hex.status, 200) << hex.raw;
  EXPECT_EQ(hex.body["progress"], 1);
  EXPECT_EQ(hex.body["t"], 3);
  EXPECT_EQ(hex.body["n"], 5);
  EXPECT_EQ(hex.body["type"], "shamir");
  Answer b64 = Send("POST", "/v1/sys/unseal", TestJson{{"key", Base64Encode(share)}}.dump());
  ASSERT_EQ(b64.status, 200) << b64.raw;
  ASSERT_EQ(seal_.shares_seen.size(), 2u);
  EXPECT_EQ(seal_.shares_seen[0], seal_.shares_seen[1]);
  Answer junk = Send("PUT", "/v1/sys/unseal", TestJson{{"key", "!!not a key!!"}}.dump());
  EXPECT_EQ(junk.status, 400);
  EXPECT_EQ(junk.body["errors"][0], "'key' must be a valid hex or base64 string");
  EXPECT_EQ(junk.content_type, "application/json");
  Answer missing = Send("PUT", "/v1/sys/unseal", "{}");
  EXPECT_EQ(missing.status, 400);
  Answer short_share = Send("PUT", "/v1/sys/unseal", TestJson{{"key", Base64Encode("short")}}.dump());
  EXPECT_EQ(short_share.status, 400);
  EXPECT_EQ(seal_.state.progress, 2);  // a refused share counts for nothing
  Answer reset = Send("PUT", "/v1/sys/unseal", TestJson{{"reset", true}}.dump());
  EXPECT_EQ(reset.status, 200);
  EXPECT_EQ(reset.body["progress"], 0);
  EXPECT_EQ(seal_.resets, 1);
  EXPECT_EQ(Send("GET", "/v1/sys/unseal").status, 405);
}

TEST_F(SealEndpointsTest, InitAnswersVaultsShapeAndErrors) {
  EXPECT_EQ(Send("GET", "/v1/sys/init").body["initialized"], true);
  EXPECT_EQ(Send("PUT", "/v1/sys/init", TestJson{{"secret_shares", 5}, {"secret_threshold", 3}}.dump()).status, 400);
  seal_.state.initialized = false;
  EXPECT_EQ(Send("GET", "/v1/sys/init").body["initialized"], false);
  Answer pgp = Send("PUT", "/v1/sys/init", TestJson{{"secret_shares", 1}, {"secret_threshold", 1}, {"pgp_keys", {"k"}}}.dump());
  EXPECT_EQ(pgp.status, 400);
  Answer ok = Send("PUT", "/v1/sys/init", TestJson{{"secret_shares", 2}, {"secret_threshold", 2}}.dump());
  ASSERT_EQ(ok.status, 200) << ok.raw;
  ASSERT_EQ(ok.body["keys"].size(), 2u);
  EXPECT_EQ(ok.body["keys"][0], HexEncode(std::string(33, 'a')));
  EXPECT_EQ(ok.body["keys_base64"][1], Base64Encode(std::string(33, 'b')));
  EXPECT_EQ(ok.body["root_token"], "root-token");
  EXPECT_FALSE(ok.body.contains("data"));
}

TEST_F(SealEndpointsTest, SealedAnswersForLeaderAndRekeyAndDeepBodiesAreRefused) {
  Answer leader = Send("GET", "/v1/sys/leader");  // as Vault without HA storage: sealed or not
  EXPECT_EQ(leader.status, 200);
  EXPECT_EQ(leader.body["ha_enabled"], false);
  EXPECT_EQ(Send("GET", "/v1/sys/rekey/init").status, 503);
  EXPECT_EQ(Send("PUT", "/v1/sys/rekey/update", TestJson{{"key", HexEncode(std::string(33, 'x'))}, {"nonce", "n"}}.dump()).status,
            400);
  std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(Send("PUT", "/v1/sys/unseal", deep).status, 400);
  seal_.state.sealed = false;
  Answer up = Send("GET", "/v1/sys/leader");
  EXPECT_EQ(up.status, 200);
  EXPECT_EQ(up.body["ha_enabled"], false);
}

}  // namespace
}  // namespace sigil::vault
