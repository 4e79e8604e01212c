#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "sigil/auth/authenticator.h"
#include "sigil/auth/service_account.h"
#include "sigil/auth/service_account_issuer.h"
#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::auth {
namespace {

using ::sigil::testing::StatusIs;

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    barrier_ = std::move(barrier::Barrier::Open(&backend_, seal_.get(), nullptr, &clock_)).value();
    store_ = std::make_unique<store::ObjectStore>(barrier_.get());
    tokens_ = std::move(TokenStore::Open(store_.get(), &clock_)).value();
  }
  ManualClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Seal> seal_ = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<store::ObjectStore> store_;
  std::unique_ptr<TokenStore> tokens_;
};

TEST_F(AuthTest, TokensAreRandomHashedAndExpire) {
  Identity alice{"alice", "u1", {"dev"}, {}, ""};
  auto t = tokens_->Create(alice, std::chrono::seconds(60));
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->view().starts_with("sgl_"));
  EXPECT_EQ(t->size(), 47u);
  auto other = tokens_->Create(alice, std::chrono::seconds(0));
  EXPECT_NE(t->view(), other->view());
  auto id = tokens_->Lookup(t->view());
  ASSERT_TRUE(id.ok() && id->has_value());
  EXPECT_EQ((*id)->user, "alice");
  EXPECT_EQ((*id)->groups, (std::vector<std::string>{"dev", "system:authenticated"}));
  // Nothing in storage holds the token.
  storage::RangeRequest all;
  all.prefix = "";
  auto everything = backend_.Range(all);
  ASSERT_TRUE(everything.ok());
  for (const auto& kv : everything->kvs) {
    EXPECT_EQ(kv.key.find(t->view()), std::string::npos);
    EXPECT_EQ(kv.value.find(t->view()), std::string::npos);
  }
  // Wrong, truncated and foreign tokens are unknown.
  std::string wrong(t->view());
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(tokens_->Lookup(wrong)->has_value());
  EXPECT_FALSE(tokens_->Lookup(t->view().substr(0, 20))->has_value());
  EXPECT_FALSE(tokens_->Lookup("")->has_value());
  clock_.Advance(std::chrono::seconds(61));
  EXPECT_FALSE(tokens_->Lookup(t->view())->has_value());
  EXPECT_TRUE(tokens_->Lookup(other->view())->has_value());  // no expiry
  ASSERT_TRUE(tokens_->Revoke(other->view()).ok());
  EXPECT_FALSE(tokens_->Lookup(other->view())->has_value());
  EXPECT_THAT(tokens_->Revoke(other->view()), StatusIs(StatusCode::kNotFound));
}

TEST_F(AuthTest, RootTokenIsMadeOnceAndSurvivesReopen) {
  auto root = tokens_->CreateRootOnce();
  ASSERT_TRUE(root.ok() && root->has_value());
  EXPECT_FALSE(tokens_->CreateRootOnce()->has_value());
  auto reopened = std::move(TokenStore::Open(store_.get(), &clock_)).value();
  auto id = reopened->Lookup((*root)->view());
  ASSERT_TRUE(id.ok() && id->has_value());
  EXPECT_EQ((*id)->user, "sigil-root");
  EXPECT_EQ((*id)->groups, (std::vector<std::string>{"system:masters", "system:authenticated"}));
}

// Vault tokens: the tree, and what a revocation racing a child's creation leaves.
TEST_F(AuthTest, VaultTokenTreeRevokesDescendantsAndRefusesAChildOfARevokedParent) {
  TokenSpec spec;
  spec.policies = {"app", "default"};
  spec.ttl = std::chrono::hours(1);
  auto parent = tokens_->CreateVault(spec);
  SIGIL_ASSERT_OK(parent);
  EXPECT_TRUE(parent->first.view().starts_with("hvs."));
  EXPECT_EQ(parent->first.size(), 36u);
  spec.parent = parent->second.key;
  spec.parent_revision = parent->second.revision;
  auto child = tokens_->CreateVault(spec);
  SIGIL_ASSERT_OK(child);
  spec.parent = child->second.key;
  spec.parent_revision = child->second.revision;
  auto grandchild = tokens_->CreateVault(spec);
  SIGIL_ASSERT_OK(grandchild);
  auto id = tokens_->Lookup(grandchild->first.view());
  SIGIL_ASSERT_OK(id);
  ASSERT_TRUE(id->has_value());
  EXPECT_EQ((*id)->policies, (std::vector<std::string>{"app", "default"}));
  EXPECT_EQ((*id)->token_accessor, grandchild->second.accessor);
  EXPECT_EQ((*id)->user, "vault-token:" + grandchild->second.accessor);

  SIGIL_ASSERT_OK(tokens_->RevokeTree(parent->second.key));
  for (const auto* t : {&*parent, &*child, &*grandchild}) {
    auto gone = tokens_->Find(t->first.view());
    SIGIL_ASSERT_OK(gone);
    EXPECT_FALSE(gone->has_value());
    auto by_accessor = tokens_->FindByAccessor(t->second.accessor);
    SIGIL_ASSERT_OK(by_accessor);
    EXPECT_FALSE(by_accessor->has_value());
  }
  auto left = tokens_->Accessors();
  SIGIL_ASSERT_OK(left);
  EXPECT_TRUE(left->empty());
  // A child whose creation read its parent before the revocation cannot be made after it.
  spec.parent = parent->second.key;
  spec.parent_revision = parent->second.revision;
  EXPECT_THAT(tokens_->CreateVault(spec), StatusIs(StatusCode::kAborted));
}

// Requests racing for a limited-use token's uses: exactly num_uses of them authenticate, and none
// fails internally (an update that loses to the last use's delete is a refusal, not an error).
TEST_F(AuthTest, LimitedUseTokenGivesExactlyItsUsesUnderRacingLookups) {
  for (int round = 0; round < 200; ++round) {
    TokenSpec spec;
    spec.policies = {"default"};
    spec.ttl = std::chrono::hours(1);
    spec.num_uses = 6;
    auto made = tokens_->CreateVault(spec);
    SIGIL_ASSERT_OK(made);
    std::atomic<int> granted{0}, refused{0}, failed{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 12; ++i) {
      threads.emplace_back([&] {
        auto id = tokens_->Lookup(made->first.view(), /*use=*/true);
        if (!id.ok()) ++failed;
        else if (id->has_value()) ++granted;
        else ++refused;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(granted.load(), 6);
    EXPECT_EQ(refused.load(), 6);
  }
}

TEST_F(AuthTest, VaultTokenRenewalIsCappedAndExpiryEndsIt) {
  TokenSpec spec;
  spec.policies = {"default"};
  spec.ttl = std::chrono::hours(1);
  spec.explicit_max_ttl = std::chrono::minutes(90);
  auto t = tokens_->CreateVault(spec);
  SIGIL_ASSERT_OK(t);
  clock_.Advance(std::chrono::minutes(30));
  bool capped = false;
  auto r = tokens_->Renew(t->second.key, std::chrono::hours(5), &capped);
  SIGIL_ASSERT_OK(r);
  EXPECT_TRUE(capped);
  EXPECT_EQ(*r->expires, t->second.issued + std::chrono::minutes(90));
  clock_.Advance(std::chrono::minutes(61));
  auto gone = tokens_->Find(t->first.view());
  SIGIL_ASSERT_OK(gone);
  EXPECT_FALSE(gone->has_value());
  spec.renewable = false;
  auto fixed = tokens_->CreateVault(spec);
  SIGIL_ASSERT_OK(fixed);
  EXPECT_THAT(tokens_->Renew(fixed->second.key, std::nullopt, &capped), StatusIs(StatusCode::kInvalidArgument));
}

// Service-account tokens sigil signs (TokenRequest): one key per store, kept across opens; the
// tokens verify with the published JWKS and carry kube-apiserver's claims; the authenticator
// takes them only while their service account exists with the same uid.
TEST_F(AuthTest, IssuedServiceAccountTokensVerifyAndEndWithTheirAccount) {
  auto issuer = std::move(ServiceAccountIssuer::Open(store_.get(), "https://issuer.example", &clock_)).value();
  auto again = std::move(ServiceAccountIssuer::Open(store_.get(), "https://issuer.example", &clock_)).value();
  EXPECT_EQ(issuer->key_id(), again->key_id());  // the stored key, not a new one
  nlohmann::json jwks = issuer->Jwks();
  ASSERT_EQ(jwks["keys"].size(), 1u);
  EXPECT_EQ(jwks["keys"][0]["kid"], issuer->key_id());
  auto issued = issuer->Issue("team-a", "app", "uid-1", {"vault"}, std::chrono::seconds(600));
  ASSERT_TRUE(issued.ok()) << issued.error();
  crypto::JwtKeySet keys;
  ASSERT_TRUE(keys.AddJwks(jwks.dump()).ok());
  auto claims = keys.Verify(issued->token.view());
  ASSERT_TRUE(claims.ok()) << claims.error();
  EXPECT_EQ((*claims)["sub"], "system:serviceaccount:team-a:app");
  EXPECT_EQ((*claims)["aud"], nlohmann::json::array({"vault"}));
  EXPECT_EQ((*claims)["kubernetes.io"]["serviceaccount"]["uid"], "uid-1");
  EXPECT_EQ((*claims)["exp"].get<int64_t>() - (*claims)["iat"].get<int64_t>(), 600);

  bool exists = true;
  ServiceAccountConfig config;
  config.issuers = {"https://issuer.example"};
  config.audiences = {"vault"};
  config.keys = keys;
  config.own_key_id = issuer->key_id();
  config.still_exists = [&](const std::string& ns, const std::string& name, const std::string& uid) {
    return exists && ns == "team-a" && name == "app" && uid == "uid-1";
  };
  ServiceAccountAuthenticator authn(config, &clock_);
  auto id = authn.Authenticate(issued->token.view());
  ASSERT_TRUE(id.ok()) << id.error();
  EXPECT_EQ(id->uid, "uid-1");
  exists = false;
  EXPECT_THAT(authn.Authenticate(issued->token.view()), StatusIs(StatusCode::kUnauthenticated));
  clock_.Advance(std::chrono::seconds(700));
  exists = true;
  EXPECT_THAT(authn.Authenticate(issued->token.view()), StatusIs(StatusCode::kUnauthenticated));  // expired
}

TEST(TokenFileTest, ParsesAsKubeApiserver) {
  std::vector<std::string> warnings;
  auto tf = TokenFile::Parse("t1,alice,u1\n\"t2\",bob,u2,\"dev,ops\"\n,nobody,u3\nt1,carol,u4\n\"q\"\"x\",dan,u5\n", "f", &warnings);
  ASSERT_TRUE(tf.ok()) << tf.error();
  EXPECT_EQ(tf->size(), 3u);
  EXPECT_EQ(tf->Lookup("t1")->user, "carol");  // the last row wins
  EXPECT_EQ(tf->Lookup("t2")->groups, (std::vector<std::string>{"dev", "ops", "system:authenticated"}));
  EXPECT_EQ(tf->Lookup("q\"x")->user, "dan");
  EXPECT_FALSE(tf->Lookup("t3").has_value());
  EXPECT_EQ(warnings.size(), 2u);  // the empty token, the repeated one
  for (const std::string& w : warnings) EXPECT_EQ(w.find("t1"), std::string::npos);
  auto few = TokenFile::Parse("t1,alice\n", "f", &warnings);
  ASSERT_FALSE(few.ok());
  EXPECT_EQ(few.error().message(), "token file 'f' must have at least 3 columns (token, user name, user uid), found 2");
  EXPECT_FALSE(TokenFile::Parse("\"t1,alice,u1\n", "f", &warnings).ok());
}

TEST_F(AuthTest, AuthenticatorPrefersCertificateThenTokens) {
  std::vector<std::string> w;
  Authenticator a(tokens_.get(), TokenFile::Parse("static-token,svc,u9,robots\n", "f", &w).value());
  auto t = tokens_->Create({"alice", "u1", {}, {}, ""}, std::chrono::seconds(0));
  CertificateSubject cert{"bob", {"team-a", "team-b"}, "abcd"};
  auto r = a.Authenticate("Bearer " + std::string(t->view()), &cert);
  ASSERT_TRUE(r.ok() && r->identity);
  EXPECT_EQ(r->identity->user, "bob");
  EXPECT_EQ(r->identity->groups, (std::vector<std::string>{"team-a", "team-b", "system:authenticated"}));
  EXPECT_EQ(r->identity->extra["authentication.kubernetes.io/credential-id"][0], "X509SHA256=abcd");
  EXPECT_EQ(a.Authenticate("bearer " + std::string(t->view()), nullptr)->identity->user, "alice");
  EXPECT_EQ(a.Authenticate("Bearer static-token", nullptr)->identity->user, "svc");
  auto none = a.Authenticate("", nullptr);
  EXPECT_FALSE(none->identity);
  EXPECT_FALSE(none->presented);
  auto bad = a.Authenticate("Bearer nope", nullptr);
  EXPECT_FALSE(bad->identity);
  EXPECT_TRUE(bad->presented);
  auto spaced = a.Authenticate("Bearer  static-token", nullptr);
  EXPECT_FALSE(spaced->identity);
  EXPECT_NE(spaced->warning.find("extra space"), std::string::npos);
  CertificateSubject no_cn{"", {"g"}, "ab"};
  EXPECT_EQ(a.Authenticate("Bearer static-token", &no_cn)->identity->user, "svc");
  EXPECT_FALSE(a.Authenticate("Basic dTpw", nullptr)->presented);
}

TEST(FailureThrottleTest, SlowsDownRepeatedFailuresPerAddress) {
  ManualClock clock;
  FailureThrottle t(&clock);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(t.Fail("10.0.0.1").count(), 0);
  EXPECT_EQ(t.Fail("10.0.0.1").count(), 100);
  EXPECT_EQ(t.Fail("10.0.0.1").count(), 200);
  EXPECT_EQ(t.Fail("10.0.0.2").count(), 0);  // another address is not affected
  for (int i = 0; i < 20; ++i) t.Fail("10.0.0.1");
  EXPECT_EQ(t.Fail("10.0.0.1").count(), 5000);
  clock.Advance(std::chrono::minutes(2));
  EXPECT_EQ(t.Fail("10.0.0.1").count(), 0);  // a new window
}

}  // namespace
}  // namespace sigil::auth
