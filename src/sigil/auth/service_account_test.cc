// ServiceAccountAuthenticator's time and audience rules, on tokens signed here with a fresh
// RSA key: exp (required, 60 s leeway), nbf and iat (not in the future beyond the leeway), and
// aud (one accepted audience; the issuers when no audiences are configured). Time is a
// ManualClock, so the boundaries are exact and nothing sleeps.
#include "sigil/auth/service_account.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <string>

#include "sigil/base/encoding.h"

namespace sigil::auth {
namespace {

using Json = nlohmann::json;

constexpr char kIssuer[] = "https://kubernetes.default.svc";

std::string PublicPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PUBKEY(bio, key), 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  return pem;
}

// header.claims.signature, RS256 (RSASSA-PKCS1-v1_5 with SHA-256) as kube-apiserver signs.
std::string SignRs256(EVP_PKEY* key, const Json& claims) {
  std::string input = Base64UrlEncode(Json{{"alg", "RS256"}, {"typ", "JWT"}}.dump()) + "." +
                      Base64UrlEncode(claims.dump());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EXPECT_EQ(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key), 1);
  EXPECT_EQ(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()),
            1);
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()),
            1);
  EVP_MD_CTX_free(ctx);
  sig.resize(len);
  return input + "." + Base64UrlEncode(sig);
}

class ServiceAccountTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    key_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
  }
  static void TearDownTestSuite() { EVP_PKEY_free(key_); }

  // An authenticator that accepts kIssuer and, when given, only `audiences`.
  std::unique_ptr<ServiceAccountAuthenticator> Make(std::vector<std::string> audiences = {}) {
    ServiceAccountConfig c;
    c.issuers = {kIssuer};
    c.audiences = std::move(audiences);
    EXPECT_TRUE(c.keys.AddPem(PublicPem(key_)).ok());
    return std::make_unique<ServiceAccountAuthenticator>(std::move(c), &clock_);
  }

  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch())
        .count();
  }

  // Valid claims for system:serviceaccount:team-a:builder, issued now, valid for 10 minutes.
  Json Claims() const {
    return {
        {"iss", kIssuer},
        {"aud", {kIssuer}},
        {"sub", "system:serviceaccount:team-a:builder"},
        {"iat", Now()},
        {"nbf", Now()},
        {"exp", Now() + 600},
        {"kubernetes.io",
         {{"namespace", "team-a"}, {"serviceaccount", {{"name", "builder"}, {"uid", "sa-uid"}}}}}};
  }

  std::string Sign(const Json& claims) const { return SignRs256(key_, claims); }

  // Whether `token` is refused as unauthenticated, for a reason containing `why`, with a
  // message that does not quote the token. Used as EXPECT_TRUE(Refused(...)).
  ::testing::AssertionResult Refused(const ServiceAccountAuthenticator& a, const std::string& token,
                                     const std::string& why) {
    auto r = a.Authenticate(token);
    if (r.ok())
      return ::testing::AssertionFailure() << "accepted as " << r->user << "; wanted: " << why;
    const Status& st = r.error();
    if (st.code() != StatusCode::kUnauthenticated || st.message().find(why) == std::string::npos) {
      return ::testing::AssertionFailure()
             << "refused with " << st.ToString() << "; wanted: " << why;
    }
    if (st.message().find(token.substr(token.rfind('.') + 1)) != std::string::npos) {
      return ::testing::AssertionFailure() << "the message quotes the token";
    }
    return ::testing::AssertionSuccess();
  }

  static EVP_PKEY* key_;
  ManualClock clock_;
};

EVP_PKEY* ServiceAccountTest::key_ = nullptr;

TEST_F(ServiceAccountTest, ValidTokenYieldsTheServiceAccount) {
  auto id = Make()->Authenticate(Sign(Claims()));
  ASSERT_TRUE(id.ok()) << id.error();
  EXPECT_EQ(id->user, "system:serviceaccount:team-a:builder");
  EXPECT_EQ(id->uid, "sa-uid");
  EXPECT_EQ(id->groups,
            (std::vector<std::string>{"system:serviceaccounts", "system:serviceaccounts:team-a",
                                      "system:authenticated"}));
}

TEST_F(ServiceAccountTest, ExpiredTokenIsRefusedAfterTheLeeway) {
  auto a = Make();
  std::string token = Sign(Claims());  // exp = now + 600
  EXPECT_TRUE(a->Authenticate(token).ok());
  clock_.Advance(std::chrono::seconds(600 + 60));  // exp + leeway: still valid
  EXPECT_TRUE(a->Authenticate(token).ok());
  clock_.Advance(std::chrono::seconds(1));  // one second past it
  EXPECT_TRUE(Refused(*a, token, "expired"));
  clock_.Advance(std::chrono::hours(24 * 365));
  EXPECT_TRUE(Refused(*a, token, "expired"));
}

TEST_F(ServiceAccountTest, TokenWithoutUsableExpiryIsRefused) {
  auto a = Make();
  Json c = Claims();
  c.erase("exp");
  EXPECT_TRUE(Refused(*a, Sign(c), "no expiry"));  // a legacy secret-based token
  c["exp"] = std::to_string(Now() + 600);          // a string is not a NumericDate
  EXPECT_TRUE(Refused(*a, Sign(c), "no expiry"));
  c["exp"] = nullptr;
  EXPECT_TRUE(Refused(*a, Sign(c), "no expiry"));
  c["exp"] = Now() - 3600;  // long expired when issued
  EXPECT_TRUE(Refused(*a, Sign(c), "expired"));
}

TEST_F(ServiceAccountTest, TokenNotYetValidIsRefusedUntilNbf) {
  auto a = Make();
  Json c = Claims();
  c["iat"] = Now();
  c["nbf"] = Now() + 61;  // beyond the 60 s leeway
  std::string token = Sign(c);
  EXPECT_TRUE(Refused(*a, token, "not valid yet"));
  clock_.Advance(std::chrono::seconds(1));  // nbf - leeway reached
  EXPECT_TRUE(a->Authenticate(token).ok());
  c["nbf"] = std::to_string(Now());
  EXPECT_TRUE(Refused(*a, Sign(c), "malformed nbf"));
}

TEST_F(ServiceAccountTest, TokenIssuedInTheFutureIsRefused) {
  auto a = Make();
  Json c = Claims();
  c.erase("nbf");
  c["iat"] = Now() + 61;
  std::string token = Sign(c);
  EXPECT_TRUE(Refused(*a, token, "issued in the future"));
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_TRUE(a->Authenticate(token).ok());
}

TEST_F(ServiceAccountTest, AudienceMustBeAcceptedAndDefaultsToTheIssuers) {
  auto a = Make();  // no audiences configured: the issuer is the audience
  Json c = Claims();
  c["aud"] = kIssuer;  // a plain string is a list of one
  EXPECT_TRUE(a->Authenticate(Sign(c)).ok());
  c["aud"] = {"vault", kIssuer};  // one accepted among others is enough
  EXPECT_TRUE(a->Authenticate(Sign(c)).ok());
  c["aud"] = {"vault"};
  EXPECT_TRUE(Refused(*a, Sign(c), "audience is not accepted"));
  c["aud"] = "vault";
  EXPECT_TRUE(Refused(*a, Sign(c), "audience is not accepted"));
  c["aud"] = Json::array();
  EXPECT_TRUE(Refused(*a, Sign(c), "audience is not accepted"));
  c["aud"] = {1};
  EXPECT_TRUE(Refused(*a, Sign(c), "audience is not accepted"));
  c.erase("aud");
  EXPECT_TRUE(Refused(*a, Sign(c), "audience is not accepted"));
}

TEST_F(ServiceAccountTest, ConfiguredAudiencesReplaceTheIssuer) {
  auto a = Make({"sigil", "api"});
  Json c = Claims();
  c["aud"] = {"api"};
  EXPECT_TRUE(a->Authenticate(Sign(c)).ok());
  c["aud"] = {kIssuer};  // the issuer is no longer an audience once audiences are set
  EXPECT_TRUE(Refused(*a, Sign(c), "audience is not accepted"));
  c["aud"] = {"sigil-other"};  // exact match, not a prefix
  EXPECT_TRUE(Refused(*a, Sign(c), "audience is not accepted"));
}

}  // namespace
}  // namespace sigil::auth
