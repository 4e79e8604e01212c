// The transit engine in process, on the memory backend with a manual clock: rotation on use
// after auto_rotate_period, trim, derived keys, and restore refusing damaged backups.
#include "sigil/engines/transit.h"

#include <gtest/gtest.h>

#include "sigil/base/encoding.h"
#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::engines {
namespace {

class TransitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    barrier_ = std::move(barrier::Barrier::Open(&backend_, seal_.get(), nullptr, &clock_)).value();
    store_ = std::make_unique<store::ObjectStore>(barrier_.get());
    engine_ = NewTransit(Mount{"transit/", "transit"}, Storage(store_.get(), "/sigil/logical/t/"), &clock_);
  }
  Response Call(Operation op, std::string path, Json data = Json::object()) {
    Request r;
    r.op = op;
    r.path = std::move(path);
    r.data = std::move(data);
    Result<Response> out = engine_->Handle(r);
    EXPECT_TRUE(out.ok()) << out.error();
    return out.ok() ? std::move(out).value() : Response::Error(500, "failed");
  }
  Response Write(std::string path, Json data = Json::object()) { return Call(Operation::kUpdate, std::move(path), std::move(data)); }

  ManualClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Seal> seal_ = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<store::ObjectStore> store_;
  std::unique_ptr<SecretsEngine> engine_;
};

TEST_F(TransitTest, AutoRotationHappensOnTheFirstUseAfterThePeriod) {
  ASSERT_EQ(Write("keys/k", {{"auto_rotate_period", "1h"}}).status, 204);
  std::string b64 = Base64Encode("x");
  EXPECT_EQ(Write("encrypt/k", {{"plaintext", b64}}).data["key_version"], 1);
  clock_.Advance(std::chrono::minutes(59));
  EXPECT_EQ(Write("encrypt/k", {{"plaintext", b64}}).data["key_version"], 1);
  clock_.Advance(std::chrono::minutes(2));
  Response after = Write("encrypt/k", {{"plaintext", b64}});
  EXPECT_EQ(after.data["key_version"], 2);  // rotated first, then used
  EXPECT_EQ(Call(Operation::kRead, "keys/k").data["latest_version"], 2);
  clock_.Advance(std::chrono::hours(2));
  EXPECT_EQ(Call(Operation::kRead, "keys/k").data["latest_version"], 3);  // a read rotates too
  EXPECT_EQ(Write("keys/k/config", {{"auto_rotate_period", "30m"}}).status, 400);
  ASSERT_EQ(Write("keys/k/config", {{"auto_rotate_period", 0}}).status, 204);
  clock_.Advance(std::chrono::hours(24));
  EXPECT_EQ(Write("encrypt/k", {{"plaintext", b64}}).data["key_version"], 3);
}

TEST_F(TransitTest, TrimDropsOldVersionsWithinTheMinimums) {
  ASSERT_EQ(Write("keys/k").status, 204);
  std::string old_ct = Write("encrypt/k", {{"plaintext", Base64Encode("old")}}).data["ciphertext"];
  ASSERT_EQ(Write("keys/k/rotate").status, 204);
  ASSERT_EQ(Write("keys/k/rotate").status, 204);
  EXPECT_EQ(Write("keys/k/trim", {{"min_available_version", 2}}).status, 400);  // above min_decryption_version
  ASSERT_EQ(Write("keys/k/config", {{"min_decryption_version", 2}}).status, 204);
  ASSERT_EQ(Write("keys/k/trim", {{"min_available_version", 2}}).status, 204);
  Json key = Call(Operation::kRead, "keys/k").data;
  EXPECT_EQ(key["keys"].size(), 2u);
  EXPECT_FALSE(key["keys"].contains("1"));
  EXPECT_EQ(Write("decrypt/k", {{"ciphertext", old_ct}}).status, 400);
  EXPECT_EQ(Write("encrypt/k", {{"plaintext", Base64Encode("x")}, {"key_version", 1}}).status, 400);  // trimmed
  EXPECT_EQ(Write("hmac/k", {{"input", Base64Encode("x")}, {"key_version", 1}}).status, 400);
  EXPECT_EQ(Write("keys/k/config", {{"min_decryption_version", 1}}).status, 400);  // below what is kept
  EXPECT_EQ(Write("keys/k/trim", {{"min_available_version", 1}}).status, 400);     // cannot go back
}

TEST_F(TransitTest, DerivedKeysNeedAContextAndRestoreRefusesDamagedBackups) {
  ASSERT_EQ(Write("keys/d", {{"derived", true}, {"exportable", true}, {"allow_plaintext_backup", true}}).status, 204);
  Response no_context = Write("encrypt/d", {{"plaintext", Base64Encode("x")}});
  EXPECT_EQ(no_context.status, 400);
  EXPECT_NE(no_context.error.find("context"), std::string::npos);
  EXPECT_EQ(Write("keys/e", {{"type", "ed25519"}, {"derived", true}}).status, 400);  // sigil derives symmetric keys only

  std::string backup = Call(Operation::kRead, "backup/d").data["backup"];
  Json doc = Json::parse(Base64Decode(backup).value());
  auto restore = [&](const Json& d) {
    return Write("restore/copy", {{"backup", Base64Encode(d.dump())}, {"force", true}}).status;
  };
  EXPECT_EQ(restore(doc), 204);
  Json bad_type = doc;
  bad_type["key"]["type"] = "rsa-1024";
  EXPECT_EQ(restore(bad_type), 400);
  Json short_key = doc;
  short_key["key"]["versions"]["1"]["key"] = Base64Encode("short");
  EXPECT_EQ(restore(short_key), 400);
  Json future = doc;
  future["key"]["versions"]["7"] = future["key"]["versions"]["1"];
  EXPECT_EQ(restore(future), 400);  // beyond latest_version
  Json no_latest = doc;
  no_latest["key"]["latest_version"] = 2;
  EXPECT_EQ(restore(no_latest), 400);  // the latest version's material is missing
  EXPECT_EQ(Write("restore/copy", {{"backup", "not base64!"}}).status, 400);
}

}  // namespace
}  // namespace sigil::engines
