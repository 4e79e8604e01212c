// kms_test: sigil's KMS v2 client (the EncryptionConfiguration kms provider) against sigil's
// own KMS v2 plugin, in one process over a real unix socket and gRPC. The byte format is
// checked against an independent implementation in tests/integration/test_kms.py; here: the
// envelope's behaviour (seeds, rotation, staleness, outages, the write-seed TTL, the cache) and
// the plugin's (keys, rotation, refusals, audit).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "sigil/crypto/random.h"
#include "sigil/kms/envelope.h"
#include "sigil/kms/plugin.h"
#include "sigil/proto/kmsv2.pb.h"
#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::kms {
namespace {

using ::sigil::testing::StatusIs;

constexpr std::string_view kAad = "/registry/secrets/default/db";

class KmsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sigil-kms-test-" + crypto::RandomUuid());
    std::filesystem::create_directories(dir_);
    socket_ = (dir_ / "kms.sock").string();
    barrier_ = std::move(barrier::Barrier::Open(&backend_, seal_.get(), nullptr, &clock_)).value();
    store_ = std::make_unique<store::ObjectStore>(barrier_.get());
    StartPlugin();
  }
  void TearDown() override {
    provider_.reset();
    plugin_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartPlugin() {
    Plugin::Options o;
    o.socket_path = socket_;
    o.audit = [this](const PluginCall& c) {
      if (int ms = audit_delay_ms_.load(); ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      std::lock_guard<std::mutex> l(mu_);
      calls_.push_back(c);
      return refuse_audit_ ? UnavailableError("audit down") : OkStatus();
    };
    o.health = [this]() { return unhealthy_ ? UnavailableError("audit trail stopped") : OkStatus(); };
    auto p = Plugin::Start(std::move(o), store_.get(), &clock_);
    ASSERT_TRUE(p.ok()) << p.error();
    plugin_ = std::move(p).value();
  }
  // A provider of the plugin, as one server's EncryptionConfiguration makes it.
  std::unique_ptr<Provider> NewProvider(std::chrono::milliseconds timeout = std::chrono::seconds(3)) {
    ProviderOptions o;
    o.name = "sigil";
    o.write_seed_ttl = std::chrono::seconds(180);
    return Provider::Start(NewGrpcClient(socket_, timeout), o, &clock_);
  }
  void StartProvider(std::chrono::milliseconds timeout = std::chrono::seconds(3)) { provider_ = NewProvider(timeout); }
  std::string Write(std::string_view plaintext) {
    auto v = provider_->Encrypt(plaintext, kAad);
    EXPECT_TRUE(v.ok()) << v.error();
    return v.ok() ? *v : "";
  }
  k8s::kmsv2::EncryptedObject Decode(std::string_view stored) {
    k8s::kmsv2::EncryptedObject o;
    std::string_view body = stored.substr(provider_->prefix().size());
    EXPECT_TRUE(o.ParseFromArray(body.data(), static_cast<int>(body.size())));
    return o;
  }

  std::filesystem::path dir_;
  std::string socket_;
  ManualClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Seal> seal_ = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<store::ObjectStore> store_;
  std::unique_ptr<Plugin> plugin_;
  std::unique_ptr<Provider> provider_;
  std::mutex mu_;
  std::vector<PluginCall> calls_;
  std::atomic<bool> refuse_audit_ = false;
  std::atomic<bool> unhealthy_ = false;
  std::atomic<int> audit_delay_ms_ = 0;
  int Decrypts() {
    std::lock_guard<std::mutex> l(mu_);
    int n = 0;
    for (const PluginCall& c : calls_) n += c.method == "Decrypt";
    return n;
  }
};

TEST_F(KmsTest, WritesTheKmsV2FormatWithOneSeedAndReadsItBack) {
  StartProvider();
  ASSERT_TRUE(provider_->Health().ok());
  std::string a = Write("first value");
  std::string b = Write("second value");
  EXPECT_TRUE(a.starts_with("k8s:enc:kms:v2:sigil:"));
  k8s::kmsv2::EncryptedObject oa = Decode(a), ob = Decode(b);
  EXPECT_EQ(oa.encrypteddeksourcetype(), k8s::kmsv2::HKDF_SHA256_XNONCE_AES_GCM_SEED);
  EXPECT_EQ(oa.keyid(), plugin_->Keys().back().key_id);
  // info(32) | nonce(12) | ciphertext | tag(16)
  EXPECT_EQ(oa.encrypteddata().size(), 32 + 12 + std::string("first value").size() + 16);
  // One seed for both writes (no Encrypt per write), and a fresh info for each.
  EXPECT_EQ(oa.encrypteddeksource(), ob.encrypteddeksource());
  EXPECT_NE(oa.encrypteddata().substr(0, 32), ob.encrypteddata().substr(0, 32));
  bool stale = false;
  auto back = provider_->Decrypt(a, kAad, &stale, true);
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back->view(), "first value");
  EXPECT_FALSE(stale);
  // Bound to its storage key.
  EXPECT_THAT(provider_->Decrypt(a, "/registry/secrets/default/other", &stale, true), StatusIs(StatusCode::kDataLoss));
  // Exactly one Encrypt (the seed) so far, audited; reads of our own seed needed no Decrypt.
  std::lock_guard<std::mutex> l(mu_);
  ASSERT_EQ(calls_.size(), 1u);
  EXPECT_EQ(calls_[0].method, "Encrypt");
  EXPECT_EQ(calls_[0].key_id, oa.keyid());
  EXPECT_TRUE(calls_[0].ok);
}

TEST_F(KmsTest, RotationInThePluginMakesANewSeedAndOldValuesReadStale) {
  StartProvider();
  std::string old_value = Write("before rotation");
  std::string old_key = provider_->key_id();
  auto rotated = plugin_->Rotate();
  ASSERT_TRUE(rotated.ok());
  ASSERT_TRUE(provider_->Probe().ok());
  EXPECT_EQ(provider_->key_id(), *rotated);
  EXPECT_NE(*rotated, old_key);
  std::string new_value = Write("after rotation");
  EXPECT_EQ(Decode(new_value).keyid(), *rotated);
  EXPECT_NE(Decode(new_value).encrypteddeksource(), Decode(old_value).encrypteddeksource());
  bool stale = false;
  ASSERT_EQ(provider_->Decrypt(old_value, kAad, &stale, true)->view(), "before rotation");
  EXPECT_TRUE(stale);
  stale = false;
  ASSERT_EQ(provider_->Decrypt(new_value, kAad, &stale, true)->view(), "after rotation");
  EXPECT_FALSE(stale);
}

TEST_F(KmsTest, AnotherProcessReadsThroughOneDecryptPerSeed) {
  StartProvider();
  std::string v1 = Write("one"), v2 = Write("two");
  // A second provider (another server) has never seen this seed: one Decrypt opens both.
  auto other = NewProvider();  // another server: it has never seen this seed
  size_t before;
  {
    std::lock_guard<std::mutex> l(mu_);
    before = calls_.size();
  }
  bool stale = false;
  EXPECT_EQ(other->Decrypt(v1, kAad, &stale, true)->view(), "one");
  EXPECT_EQ(other->Decrypt(v2, kAad, &stale, true)->view(), "two");
  std::lock_guard<std::mutex> l(mu_);
  int decrypts = 0;
  for (size_t i = before; i < calls_.size(); ++i) decrypts += calls_[i].method == "Decrypt";
  EXPECT_EQ(decrypts, 1);
}

TEST_F(KmsTest, PluginDownCachedSeedsKeepReadingAndWritesStopAfterTheSeedTtl) {
  StartProvider(std::chrono::milliseconds(300));
  std::string v = Write("kept");
  plugin_.reset();  // the plugin is gone
  EXPECT_FALSE(provider_->Probe().ok());
  bool stale = false;
  EXPECT_EQ(provider_->Decrypt(v, kAad, &stale, true)->view(), "kept");  // cached seed
  EXPECT_TRUE(provider_->Encrypt("still", kAad).ok());             // within the seed's 3 minutes
  clock_.Advance(std::chrono::minutes(4));
  auto w = provider_->Encrypt("too late", kAad);
  ASSERT_THAT(w, StatusIs(StatusCode::kUnavailable));
  EXPECT_NE(w.error().message().find("expired at"), std::string::npos) << w.error();
  EXPECT_EQ(provider_->Decrypt(v, kAad, &stale, true)->view(), "kept");  // reads go on
  // The plugin returns: the next probe restores writes with the same key (and seed).
  StartPlugin();
  ASSERT_TRUE(provider_->Probe().ok());
  EXPECT_TRUE(provider_->Encrypt("back", kAad).ok());
}

TEST_F(KmsTest, NoPluginAtStartRefusesWritesAndReadsClearly) {
  plugin_.reset();
  StartProvider(std::chrono::milliseconds(200));
  EXPECT_FALSE(provider_->Health().ok());
  auto w = provider_->Encrypt("x", kAad);
  ASSERT_THAT(w, StatusIs(StatusCode::kUnavailable));
  EXPECT_NE(w.error().message().find("has no DEK seed yet"), std::string::npos) << w.error();
  StartPlugin();
  ASSERT_TRUE(provider_->Probe().ok());
  EXPECT_TRUE(provider_->Encrypt("x", kAad).ok());
}

TEST_F(KmsTest, MalformedStoredObjectsAreDataLossNotCrashes) {
  StartProvider();
  std::string v = Write("value");
  bool stale = false;
  for (size_t cut : {size_t{0}, size_t{5}, v.size() - provider_->prefix().size() - 1}) {
    std::string t = v.substr(0, provider_->prefix().size() + cut);
    auto r = provider_->Decrypt(t, kAad, &stale, true);
    EXPECT_FALSE(r.ok());
  }
  k8s::kmsv2::EncryptedObject o = Decode(v);
  o.set_encrypteddeksourcetype(static_cast<k8s::kmsv2::EncryptedDEKSourceType>(7));
  std::string bad = provider_->prefix() + o.SerializeAsString();
  EXPECT_THAT(provider_->Decrypt(bad, kAad, &stale, true), StatusIs(StatusCode::kDataLoss));
  o = Decode(v);
  o.set_keyid(std::string(1025, 'k'));
  bad = provider_->prefix() + o.SerializeAsString();
  EXPECT_THAT(provider_->Decrypt(bad, kAad, &stale, true), StatusIs(StatusCode::kDataLoss));
  o = Decode(v);
  (*o.mutable_annotations())["not a domain"] = "x";
  bad = provider_->prefix() + o.SerializeAsString();
  EXPECT_THAT(provider_->Decrypt(bad, kAad, &stale, true), StatusIs(StatusCode::kDataLoss));
  // A wrapped seed the plugin does not recognise: the plugin refuses, the read fails.
  o = Decode(v);
  o.set_encrypteddeksource(std::string(60, 'g'));
  bad = provider_->prefix() + o.SerializeAsString();
  EXPECT_FALSE(provider_->Decrypt(bad, kAad, &stale, true).ok());
}

TEST_F(KmsTest, PluginKeysPersistAcrossRestartsAndTheSocketIsPrivate) {
  StartProvider();
  std::string v = Write("durable");
  std::string key = plugin_->Keys().back().key_id;
  provider_.reset();
  plugin_.reset();
  EXPECT_FALSE(std::filesystem::exists(socket_));  // removed at stop
  StartPlugin();
  EXPECT_EQ(plugin_->Keys().back().key_id, key);
  struct stat st {};
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  StartProvider();
  bool stale = false;
  EXPECT_EQ(provider_->Decrypt(v, kAad, &stale, true)->view(), "durable");
}

TEST_F(KmsTest, AnUnauditableCallIsRefused) {
  refuse_audit_ = true;
  StartProvider(std::chrono::milliseconds(500));
  EXPECT_FALSE(provider_->Health().ok());  // its seed could not be wrapped
  EXPECT_THAT(provider_->Encrypt("x", kAad), StatusIs(StatusCode::kUnavailable));
  refuse_audit_ = false;
  ASSERT_TRUE(provider_->Probe().ok());
  EXPECT_TRUE(provider_->Encrypt("x", kAad).ok());
}

// Review regressions: the current seed never needs the plugin, however old; the storage commit
// path never calls the plugin; readers of one seed share one Decrypt, and a failure is not
// retried for a second.
TEST_F(KmsTest, TheCurrentSeedIsAlwaysAtHandAndAReplacedOneIsKeptADay) {
  StartProvider(std::chrono::milliseconds(300));
  std::string v = Write("today");
  ASSERT_TRUE(plugin_->Rotate().ok());
  ASSERT_TRUE(provider_->Probe().ok());
  std::string w = Write("after rotation");
  plugin_.reset();
  clock_.Advance(std::chrono::hours(23));
  bool stale = false;
  EXPECT_EQ(provider_->Decrypt(v, kAad, &stale, true)->view(), "today");  // the replaced seed: kept
  clock_.Advance(std::chrono::hours(2));
  EXPECT_EQ(provider_->Decrypt(w, kAad, &stale, true)->view(), "after rotation");  // the current one: always
  EXPECT_FALSE(provider_->Decrypt(v, kAad, &stale, true).ok());  // the replaced one, a day after: needs the plugin
}

TEST_F(KmsTest, TheCommitPathNeverCallsThePluginAndReadersShareOneDecrypt) {
  StartProvider();
  std::string v = Write("shared");
  auto other = NewProvider();  // another server: it has never seen this seed
  int before = Decrypts();
  bool stale = false;
  auto r = other->Decrypt(v, kAad, &stale, /*may_call_out=*/false);
  ASSERT_THAT(r, StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(Decrypts(), before);
  audit_delay_ms_ = 200;  // a slow Decrypt: the readers overlap
  std::vector<std::thread> readers;
  std::atomic<int> ok = 0;
  for (int i = 0; i < 8; ++i) {
    readers.emplace_back([&] {
      bool s = false;
      auto got = other->Decrypt(v, kAad, &s, true);
      if (got.ok() && got->view() == "shared") ++ok;
    });
  }
  for (auto& t : readers) t.join();
  audit_delay_ms_ = 0;
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(Decrypts(), before + 1);
}

TEST_F(KmsTest, AFailedDecryptIsNotRetriedForASecond) {
  StartProvider();
  std::string v = Write("x");
  auto other = NewProvider();  // another server: it has never seen this seed
  refuse_audit_ = true;  // every plugin call is refused
  bool stale = false;
  EXPECT_FALSE(other->Decrypt(v, kAad, &stale, true).ok());
  int after_first = Decrypts();
  EXPECT_FALSE(other->Decrypt(v, kAad, &stale, true).ok());
  EXPECT_EQ(Decrypts(), after_first);  // answered from the failure memory
  refuse_audit_ = false;
  clock_.Advance(std::chrono::seconds(2));
  EXPECT_EQ(other->Decrypt(v, kAad, &stale, true)->view(), "x");
}

TEST_F(KmsTest, StoppingDoesNotWaitForAHungPlugin) {
  StartProvider(std::chrono::seconds(20));
  ASSERT_TRUE(plugin_->Rotate().ok());
  audit_delay_ms_ = 3000;  // the re-seed's Encrypt hangs in the plugin
  clock_.Advance(std::chrono::seconds(30));       // the health result is stale: the poller probes
  (void)provider_->Health();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto t = std::chrono::steady_clock::now();
  provider_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t, std::chrono::milliseconds(1500));
  audit_delay_ms_ = 0;
}

TEST_F(KmsTest, ThePluginReportsWhenItCannotServe) {
  StartProvider();
  unhealthy_ = true;
  Status s = provider_->Probe();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("got unexpected healthz status: unhealthy: audit trail stopped"), std::string::npos) << s;
  unhealthy_ = false;
  EXPECT_TRUE(provider_->Probe().ok());
}

TEST_F(KmsTest, ThePluginNeverTakesOverALiveSocketOrAnOpenDirectory) {
  Plugin::Options o;
  o.socket_path = socket_;
  o.audit = [](const PluginCall&) { return OkStatus(); };
  EXPECT_THAT(Plugin::Start(o, store_.get(), &clock_), StatusIs(StatusCode::kFailedPrecondition));  // plugin_ serves there
  auto open_dir = dir_ / "open";
  std::filesystem::create_directories(open_dir);
  std::filesystem::permissions(open_dir, std::filesystem::perms::all);
  o.socket_path = (open_dir / "kms.sock").string();
  auto r = Plugin::Start(o, store_.get(), &clock_);
  ASSERT_THAT(r, StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_NE(r.error().message().find("writable by group or others"), std::string::npos);
  // A socket that is not ours is left alone at stop.
  plugin_.reset();
  StartPlugin();
  std::filesystem::rename(socket_, socket_ + ".moved");
  { std::ofstream(socket_) << "someone else's"; }
  plugin_.reset();
  EXPECT_TRUE(std::filesystem::exists(socket_));
}

}  // namespace
}  // namespace sigil::kms
