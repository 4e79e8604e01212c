#include "sigil/core/authentication.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::core {
namespace {

class AuthenticationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    barrier_ = std::move(barrier::Barrier::Open(&backend_, seal_.get(), nullptr, &clock_)).value();
    store_ = std::make_unique<store::ObjectStore>(barrier_.get());
    std::vector<std::string> warnings;
    authenticator_ = std::make_unique<auth::Authenticator>(nullptr, auth::TokenFile::Parse("good-token,alice,u1,devs\n", "f", &warnings).value());
    auditor_ = std::move(audit::Auditor::Open(store_.get(), audit::Policy::Everything(audit::Level::kMetadata, {}),
                                              {{dir_.path() + "/a.log", 0, false}}))
                   .value();
  }
  Credentials Bearer(std::string_view header) {
    Credentials c;
    c.authorization_header = header;
    c.remote = "10.0.0.7:4242";
    c.method = "GET";
    c.uri = "/api/v1/namespaces/default/secrets?limit=1";
    c.user_agent = "kubectl/v1.32.0";
    return c;
  }
  std::string Trail() {
    std::ifstream f(dir_.path() + "/a.log");
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

  ManualClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Seal> seal_ = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<store::ObjectStore> store_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  auth::FailureThrottle throttle_{&clock_};
  testing::TempDir dir_;
  std::unique_ptr<audit::Auditor> auditor_;
};

TEST_F(AuthenticationTest, AcceptedTokenGivesTheIdentity) {
  Authentication a(authenticator_.get(), &throttle_, auditor_.get(), &clock_);
  Authenticated r = a.Authenticate(Bearer("Bearer good-token"));
  ASSERT_NE(r.identity, nullptr);
  EXPECT_EQ(r.identity->user, "alice");
  EXPECT_TRUE(Trail().empty()) << "success is audited by the pipeline, not here";
}

TEST_F(AuthenticationTest, RefusedTokenIsAuditedAsAnonymousAndThrottled) {
  Authentication a(authenticator_.get(), &throttle_, auditor_.get(), &clock_);
  std::chrono::milliseconds last{0};
  for (int i = 0; i < 8; ++i) {
    Authenticated r = a.Authenticate(Bearer("Bearer wrong-token"));
    EXPECT_EQ(r.identity, nullptr);
    EXPECT_FALSE(r.unavailable);
    last = r.delay;
  }
  EXPECT_GT(last.count(), 0) << "repeated failures from one address are slowed down";
  std::string trail = Trail();
  EXPECT_NE(trail.find("\"username\":\"system:anonymous\""), std::string::npos) << trail;
  EXPECT_NE(trail.find("\"code\":401"), std::string::npos);
  EXPECT_NE(trail.find("\"sourceIPs\":[\"10.0.0.7\"]"), std::string::npos);
  EXPECT_EQ(trail.find("wrong-token"), std::string::npos) << "a credential never reaches the trail";
}

TEST_F(AuthenticationTest, NoCredentialIsNotThrottled) {
  Authentication a(authenticator_.get(), &throttle_, nullptr, &clock_);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(a.Authenticate(Bearer("")).delay.count(), 0);
}

}  // namespace
}  // namespace sigil::core
