#include "sigil/barrier/barrier.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "sigil/base/encoding.h"
#include "sigil/crypto/aes.h"
#include "sigil/crypto/random.h"
#include "sigil/base/file.h"
#include "sigil/storage/lmdb_backend.h"
#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::barrier {
namespace {

using ::sigil::testing::StatusIs;
using ::sigil::testing::TempDir;

SecretBytes S(std::string_view s) { return SecretBytes(s); }

class BarrierTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenBarrier(); }
  void OpenBarrier(std::shared_ptr<const EncryptionConfig> config = nullptr) {
    barrier_.reset();
    auto b = Barrier::Open(&backend_, seal_.get(), std::move(config), &clock_);
    ASSERT_TRUE(b.ok()) << b.error();
    barrier_ = std::move(b).value();
  }
  void Put(const std::string& k, std::string_view v) {
    BarrierTxn t;
    t.ops.push_back(BarrierOp::Put(k, S(v)));
    auto r = barrier_->Commit(std::move(t));
    ASSERT_TRUE(r.ok() && r->succeeded) << r.error();
  }
  std::string Raw(const std::string& k) { return (*backend_.Get(k))->value; }
  void SetRaw(const std::string& k, std::string v) {
    storage::Txn t;
    t.ops.push_back(storage::Op::Put(k, std::move(v)));
    ASSERT_TRUE(backend_.Commit(std::move(t)).ok());
  }

  ManualClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<Seal> seal_ = NewDevSeal();
  std::unique_ptr<Barrier> barrier_;
};

TEST_F(BarrierTest, StoresOnlyCiphertextInSigilFormat) {
  Put("/registry/secrets/default/db", "SIGILMARKER-plaintext-password");
  std::string raw = Raw("/registry/secrets/default/db");
  EXPECT_TRUE(raw.starts_with("sigil:enc:v1:"));
  // prefix(13) + term(4) + nonce(12) + ciphertext(len) + tag(16)
  EXPECT_EQ(raw.size(), 13 + 4 + 12 + std::string("SIGILMARKER-plaintext-password").size() + 16);
  EXPECT_EQ(raw.substr(13, 4), std::string("\0\0\0\1", 4));
  std::string all = backend_.RawBytes();
  EXPECT_EQ(all.find("SIGILMARKER"), std::string::npos);
  auto e = barrier_->Get("/registry/secrets/default/db");
  ASSERT_TRUE(e.ok() && e->has_value());
  EXPECT_EQ((*e)->value.view(), "SIGILMARKER-plaintext-password");
  EXPECT_FALSE((*e)->stale);
}

TEST_F(BarrierTest, FlippedTruncatedSwappedOrMovedValuesAreDataLoss) {
  Put("/a", "value-a");
  Put("/b", "value-b");
  std::string a = Raw("/a"), b = Raw("/b");
  for (size_t i = 0; i < a.size(); ++i) {
    std::string flipped = a;
    flipped[i] ^= 0x01;
    SetRaw("/a", flipped);
    auto r = barrier_->Get("/a");
    EXPECT_THAT(r, StatusIs(StatusCode::kDataLoss)) << "byte " << i;
    if (!r.ok()) {
      EXPECT_EQ(r.error().message().find("value-a"), std::string::npos);
    }
  }
  SetRaw("/a", a.substr(0, a.size() - 1));
  EXPECT_THAT(barrier_->Get("/a"), StatusIs(StatusCode::kDataLoss));
  SetRaw("/a", a.substr(0, 20));
  EXPECT_THAT(barrier_->Get("/a"), StatusIs(StatusCode::kDataLoss));
  SetRaw("/a", b);  // swapped / copied from another key: AAD = key catches it
  SetRaw("/b", a);
  EXPECT_THAT(barrier_->Get("/a"), StatusIs(StatusCode::kDataLoss));
  EXPECT_THAT(barrier_->Get("/b"), StatusIs(StatusCode::kDataLoss));
  SetRaw("/c", "injected plaintext");
  EXPECT_THAT(barrier_->Get("/c"), StatusIs(StatusCode::kDataLoss));
  SetRaw("/d", "k8s:enc:aescbc:v1:key1:0123456789abcdef0123456789abcdef");
  EXPECT_THAT(barrier_->Get("/d"), StatusIs(StatusCode::kDataLoss));
}

TEST_F(BarrierTest, RangeFailsWholeOnOneBadValue) {
  Put("/r/1", "one");
  Put("/r/2", "two");
  storage::RangeRequest req;
  req.prefix = "/r/";
  auto ok = barrier_->Range(req);
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok->entries.size(), 2u);
  EXPECT_EQ(ok->entries[1].value.view(), "two");
  std::string raw = Raw("/r/2");
  raw.back() ^= 1;
  SetRaw("/r/2", raw);
  EXPECT_THAT(barrier_->Range(req), StatusIs(StatusCode::kDataLoss));
}

TEST_F(BarrierTest, RotateAddsTermOldValuesStillDecryptAndAreStale) {
  Put("/k/old", "old");
  auto term = barrier_->Rotate();
  ASSERT_TRUE(term.ok());
  EXPECT_EQ(*term, 2u);
  Put("/k/new", "new");
  EXPECT_EQ(Raw("/k/new").substr(13, 4), std::string("\0\0\0\2", 4));
  auto old = barrier_->Get("/k/old");
  EXPECT_EQ((*old)->value.view(), "old");
  EXPECT_TRUE((*old)->stale);
  EXPECT_FALSE((*barrier_->Get("/k/new"))->stale);
  // The rotation is persisted: a fresh Barrier on the same store sees both terms.
  OpenBarrier();
  EXPECT_EQ(barrier_->keyring_info().active_term, 2u);
  EXPECT_EQ(barrier_->keyring_info().terms.size(), 2u);
  EXPECT_EQ((*barrier_->Get("/k/old"))->value.view(), "old");
}

TEST_F(BarrierTest, KeyringIsEncryptedAndReservedAndWrongRootKeyFails) {
  EXPECT_TRUE(Raw(std::string(kKeyringStorageKey)).starts_with("sigil:keyring:v1:"));
  BarrierTxn t;
  t.ops.push_back(BarrierOp::Put(std::string(kKeyringStorageKey), S("x")));
  EXPECT_THAT(barrier_->Commit(std::move(t)), StatusIs(StatusCode::kPermissionDenied));
  auto other = NewDevSeal();
  auto b = Barrier::Open(&backend_, other.get(), nullptr, &clock_);
  EXPECT_THAT(b, StatusIs(StatusCode::kDataLoss));
  EXPECT_NE(b.error().message().find("root key"), std::string::npos);
}

TEST_F(BarrierTest, WatchDeliversDecryptedEvents) {
  std::vector<std::string> seen;
  auto h = barrier_->Watch("/w/", barrier_->CurrentRevision(), [&](const std::vector<BarrierEvent>& evs, const Status& s) {
    EXPECT_TRUE(s.ok());
    for (const auto& e : evs) seen.push_back(std::string(e.entry.value.view()));
  });
  ASSERT_TRUE(h.ok());
  Put("/w/x", "hello");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], "hello");
}

// --- EncryptionConfiguration --------------------------------------------------------------

std::string Key32(char c) { return Base64Encode(std::string(32, c)); }

std::string Config(const std::string& providers, const std::string& resources = "[secrets]") {
  return "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
         "  - resources: " + resources + "\n    providers:\n" + providers;
}

std::shared_ptr<const EncryptionConfig> ParseOrDie(const std::string& text) {
  auto c = EncryptionConfig::Parse(text);
  EXPECT_TRUE(c.ok()) << c.error();
  return std::shared_ptr<const EncryptionConfig>(std::move(c).value());
}

TEST_F(BarrierTest, EachProviderWritesKubeFormat) {
  struct Case {
    std::string provider, prefix;
    size_t overhead;  // bytes after the prefix beyond the plaintext (for a 10-byte plaintext)
  };
  for (const Case& c : {Case{"aesgcm", "k8s:enc:aesgcm:v1:key1:", 12 + 16},
                        Case{"aescbc", "k8s:enc:aescbc:v1:key1:", 16 + 6},  // IV + pad to 16
                        Case{"secretbox", "k8s:enc:secretbox:v1:key1:", 24 + 16}}) {
    OpenBarrier(ParseOrDie(Config("      - " + c.provider + ":\n          keys:\n            - name: key1\n              secret: " + Key32('k') + "\n")));
    Put("/registry/secrets/ns/s1", "0123456789");
    std::string raw = Raw("/registry/secrets/ns/s1");
    EXPECT_TRUE(raw.starts_with(c.prefix)) << c.provider;
    EXPECT_EQ(raw.size(), c.prefix.size() + 10 + c.overhead) << c.provider;
    auto e = barrier_->Get("/registry/secrets/ns/s1");
    ASSERT_TRUE(e.ok()) << e.error();
    EXPECT_EQ((*e)->value.view(), "0123456789");
    EXPECT_FALSE((*e)->stale);
    // Resources without a rule still go through the keyring.
    Put("/registry/namespaces/ns", "ns-object");
    EXPECT_TRUE(Raw("/registry/namespaces/ns").starts_with("sigil:enc:v1:"));
  }
}

TEST_F(BarrierTest, AesGcmBindsStorageKeyButCbcAndSecretboxCannot) {
  OpenBarrier(ParseOrDie(Config("      - aesgcm:\n          keys:\n            - name: k\n              secret: " + Key32('g') + "\n")));
  Put("/registry/secrets/ns/a", "A");
  SetRaw("/registry/secrets/ns/b", Raw("/registry/secrets/ns/a"));
  EXPECT_THAT(barrier_->Get("/registry/secrets/ns/b"), StatusIs(StatusCode::kDataLoss));
}

TEST_F(BarrierTest, SecondKeyAndLaterProvidersReadAsStale) {
  std::string old_only = Config("      - aescbc:\n          keys:\n            - name: old\n              secret: " + Key32('o') + "\n");
  OpenBarrier(ParseOrDie(old_only));
  Put("/registry/secrets/ns/a", "A");
  // Rotation as documented upstream: the new key goes first, the old one second.
  OpenBarrier(ParseOrDie(Config("      - aescbc:\n          keys:\n            - name: new\n              secret: " + Key32('n') +
                                "\n            - name: old\n              secret: " + Key32('o') + "\n")));
  auto e = barrier_->Get("/registry/secrets/ns/a");
  ASSERT_TRUE(e.ok()) << e.error();
  EXPECT_TRUE((*e)->stale);
  Put("/registry/secrets/ns/b", "B");
  EXPECT_TRUE(Raw("/registry/secrets/ns/b").starts_with("k8s:enc:aescbc:v1:new:"));
  // Dropping the old key makes old values undecryptable: a clean kDataLoss.
  OpenBarrier(ParseOrDie(Config("      - aescbc:\n          keys:\n            - name: new\n              secret: " + Key32('n') + "\n")));
  EXPECT_THAT(barrier_->Get("/registry/secrets/ns/a"), StatusIs(StatusCode::kDataLoss));
}

TEST_F(BarrierTest, WrongKeyUnderSameNameIsDataLoss) {
  OpenBarrier(ParseOrDie(Config("      - aesgcm:\n          keys:\n            - name: k\n              secret: " + Key32('1') + "\n")));
  Put("/registry/secrets/ns/a", "A");
  OpenBarrier(ParseOrDie(Config("      - aesgcm:\n          keys:\n            - name: k\n              secret: " + Key32('2') + "\n")));
  auto r = barrier_->Get("/registry/secrets/ns/a");
  EXPECT_THAT(r, StatusIs(StatusCode::kDataLoss));
  EXPECT_NE(r.error().message().find("aesgcm k"), std::string::npos);
}

TEST_F(BarrierTest, IdentityOnlyWhenConfigured) {
  OpenBarrier(ParseOrDie(Config("      - identity: {}\n      - aesgcm:\n          keys:\n            - name: k\n              secret: " + Key32('i') + "\n")));
  Put("/registry/secrets/ns/plain", "visible");
  EXPECT_EQ(Raw("/registry/secrets/ns/plain"), "visible");
  EXPECT_EQ(ParseOrDie(Config("      - identity: {}\n"))->IdentityWriteResources(), std::vector<std::string>{"secrets"});
  // A value encrypted by the second provider is read (stale); identity refuses k8s:enc: data.
  OpenBarrier(ParseOrDie(Config("      - aesgcm:\n          keys:\n            - name: k\n              secret: " + Key32('i') + "\n")));
  Put("/registry/secrets/ns/enc", "hidden");
  OpenBarrier(ParseOrDie(Config("      - identity: {}\n      - aesgcm:\n          keys:\n            - name: k\n              secret: " + Key32('i') + "\n")));
  auto e = barrier_->Get("/registry/secrets/ns/enc");
  ASSERT_TRUE(e.ok()) << e.error();
  EXPECT_EQ((*e)->value.view(), "hidden");
  EXPECT_TRUE((*e)->stale);
}

TEST(EncryptionConfigTest, ValidationMessages) {
  struct Case {
    std::string text, want;
  };
  const Case cases[] = {
      {Config("      - aescbc:\n          keys:\n            - name: k\n              secret: " + Base64Encode("short") + "\n"),
       "resources[0].providers[0].aescbc.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 5, expected one of [16 24 32]"},
      {Config("      - secretbox:\n          keys:\n            - name: k\n              secret: " + Base64Encode(std::string(16, 'x')) + "\n"),
       "secret is not of the expected length, got 16, expected one of [32]"},
      {Config("      - aesgcm:\n          keys:\n            - name: k\n              secret: not*base64\n"),
       "secrets must be base64 encoded"},
      {Config("      - aesgcm:\n          keys: []\n"), "resources[0].providers[0].aesgcm.keys: Required value"},
      {Config("      - identity: {}\n        aescbc: {keys: [{name: k, secret: " + Key32('x') + "}]}\n"),
       "more than one provider specified in a single element"},
      {Config("      - {}\n"), "provider does not contain any of the expected providers"},
      {Config("      - identity: {}\n", "[Secrets]"), "resource name should not contain capital letters"},
      {Config("      - identity: {}\n", "[\"*\"]"), "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources"},
      {Config("      - identity: {}\n", "[secrets, secrets]"), "the same resource cannot be specified multiple times"},
      {Config("      - identity: {}\n", "[\"*.\", secrets]"), "using overlapping resources"},
      // Without a KMS factory (this program speaks no gRPC), a valid kms provider is refused.
      {Config("      - kms: {apiVersion: v2, name: p, endpoint: unix:///tmp/x.sock}\n"), "kms providers are not available in this program"},
      {Config("      - kms: {apiVersion: v1, name: p, endpoint: unix:///tmp/x.sock}\n"), "KMS v1 is deprecated upstream and not supported by sigil"},
      // Without apiVersion: taken as v2 (refused here only for want of a KMS factory).
      {Config("      - kms: {name: p, endpoint: unix:///tmp/x.sock}\n"), "kms providers are not available in this program"},
      {Config("      - kms: {apiVersion: v3, name: p, endpoint: unix:///tmp/x.sock}\n"), "unsupported apiVersion v3 for KMS provider, only v1 and v2 are supported"},
      {Config("      - kms: {apiVersion: v2, name: 'a:b', endpoint: unix:///tmp/x.sock}\n"), "invalid KMS provider name a:b, must not contain ':'"},
      {Config("      - kms: {apiVersion: v2, endpoint: unix:///tmp/x.sock}\n"), "kms.name: Required value"},
      {Config("      - kms: {apiVersion: v2, name: p}\n"), "kms.endpoint: Required value: endpoint is a mandatory field for a kms"},
      {Config("      - kms: {apiVersion: v2, name: p, endpoint: 'tcp://127.0.0.1:1'}\n"), "unsupported scheme \"tcp\" for KMS provider, only unix is supported"},
      {Config("      - kms: {apiVersion: v2, name: p, endpoint: unix:///x, timeout: 0s}\n"), "timeout should be a positive value"},
      {Config("      - kms: {apiVersion: v2, name: p, endpoint: unix:///x, cachesize: 10}\n"), "cachesize is not supported in v2"},
      {Config("      - kms: {apiVersion: v2, name: p, endpoint: unix:///x, timeout: 3}\n"), "must be a duration such as 3s"},
      {Config("      - kms: {apiVersion: v2, name: p, endpoint: unix:///x, timeout: 10m}\n"), "sigil takes at most 5m"},
      // Go durations below a second are fine: refused here only for want of a KMS factory.
      {Config("      - kms: {apiVersion: v2, name: p, endpoint: unix:///x, timeout: 0.5s}\n"), "kms providers are not available"},
      {Config("      - kms: {apiVersion: v2, name: p, endpoint: unix:///x, timeout: 1s500ms}\n"), "kms providers are not available"},
      {Config("      - kms: {apiVersion: v2, name: p, endpoint: unix:///x}\n      - kms: {apiVersion: v2, name: p, endpoint: unix:///y}\n"),
       "duplicate KMS provider name p, names must be unique"},
      {"apiVersion: v2\nkind: Nope\n", "apiVersion/kind must be"},
      {"resources: [", "invalid EncryptionConfiguration"},
      {"- just a list", "not a YAML mapping"},
  };
  for (const Case& c : cases) {
    auto r = EncryptionConfig::Parse(c.text);
    ASSERT_THAT(r, StatusIs(StatusCode::kInvalidArgument)) << c.text;
    EXPECT_NE(r.error().message().find(c.want), std::string::npos) << r.error().message();
    // Key material never appears in an error.
    EXPECT_EQ(r.error().message().find(Key32('x')), std::string::npos);
  }
}

TEST(EncryptionConfigTest, LegacyKindAndResourceMatching) {
  auto c = ParseOrDie(
      "kind: EncryptionConfig\napiVersion: v1\nresources:\n"
      "  - resources: [roles.rbac.authorization.k8s.io]\n    providers: [{identity: {}}]\n"
      "  - resources: [\"*.\"]\n    providers: [{aesgcm: {keys: [{name: k, secret: " + Key32('a') + "}]}}]\n");
  ASSERT_EQ(c->rules().size(), 2u);
  EXPECT_EQ(c->RuleForKey("/registry/roles/ns/r"), &c->rules()[0]);
  EXPECT_EQ(c->RuleForKey("/registry/secrets/ns/s"), &c->rules()[1]);
  EXPECT_EQ(c->RuleForKey("/registry/clusterroles/x"), nullptr);  // rbac group, no "*.*"
  EXPECT_EQ(c->RuleForKey("/sigil/kv/x"), nullptr);
  EXPECT_EQ(GroupResourceForKey("/registry/clusterrolebindings/x"), "clusterrolebindings.rbac.authorization.k8s.io");
}

TEST(EncryptionConfigTest, FileMustBePrivate) {
  TempDir dir;
  std::string p = dir.Sub("enc.yaml");
  SIGIL_ASSERT_OK(file::WriteFileAtomic(p, Config("      - identity: {}\n"), 0644));
  EXPECT_THAT(EncryptionConfig::LoadFile(p), StatusIs(StatusCode::kPermissionDenied));
  ASSERT_EQ(::chmod(p.c_str(), 0600), 0);
  EXPECT_TRUE(EncryptionConfig::LoadFile(p).ok());
}

// --- Seals ---------------------------------------------------------------------------------

TEST(SealTest, KeyFileSeal) {
  TempDir dir;
  std::string p = dir.Sub("root.key");
  SIGIL_ASSERT_OK(GenerateKeyFile(p));
  EXPECT_THAT(GenerateKeyFile(p), StatusIs(StatusCode::kAlreadyExists));
  auto seal = NewKeyFileSeal(p);
  auto k1 = seal->RootKey();
  ASSERT_TRUE(k1.ok()) << k1.error();
  EXPECT_EQ(k1->size(), 32u);
  // Raw 32-byte files work too.
  std::string raw_path = dir.Sub("raw.key");
  SIGIL_ASSERT_OK(file::WriteFileAtomic(raw_path, std::string(32, 'r'), 0400));
  EXPECT_EQ(NewKeyFileSeal(raw_path)->RootKey()->view(), std::string(32, 'r'));
  SIGIL_ASSERT_OK(file::WriteFileAtomic(dir.Sub("bad.key"), "too short", 0600));
  EXPECT_THAT(NewKeyFileSeal(dir.Sub("bad.key"))->RootKey(), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(NewKeyFileSeal(dir.Sub("missing"))->RootKey(), StatusIs(StatusCode::kNotFound));
  ASSERT_EQ(::chmod(p.c_str(), 0604), 0);
  EXPECT_THAT(seal->RootKey(), StatusIs(StatusCode::kPermissionDenied));
}

TEST(SealTest, KeyFileSealReopensLmdbStoreAndNoPlaintextOnDisk) {
  TempDir dir;
  std::string key_path = dir.Sub("root.key");
  SIGIL_ASSERT_OK(GenerateKeyFile(key_path));
  const std::string marker = "SIGILCANARY0123456789abcdef";
  ManualClock clock;
  {
    storage::LmdbOptions o;
    o.dir = dir.Sub("data");
    auto backend = storage::LmdbBackend::Open(o);
    ASSERT_TRUE(backend.ok());
    auto seal = NewKeyFileSeal(key_path);
    auto b = Barrier::Open(backend->get(), seal.get(), nullptr, &clock);
    ASSERT_TRUE(b.ok()) << b.error();
    for (int i = 0; i < 50; ++i) {
      BarrierTxn t;
      t.ops.push_back(BarrierOp::Put("/registry/secrets/default/s" + std::to_string(i), S(marker + std::to_string(i))));
      ASSERT_TRUE((*b)->Commit(std::move(t)).ok());
    }
  }
  std::string data = *file::ReadFile(dir.Sub("data/data.mdb"));
  for (const std::string& form : {marker, Base64Encode(marker).substr(0, 20), HexEncode(marker)}) {
    EXPECT_EQ(data.find(form), std::string::npos) << form;
  }
  storage::LmdbOptions o;
  o.dir = dir.Sub("data");
  auto backend = storage::LmdbBackend::Open(o);
  auto seal = NewKeyFileSeal(key_path);
  auto b = Barrier::Open(backend->get(), seal.get(), nullptr, &clock);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*(*b)->Get("/registry/secrets/default/s7"))->value.view(), marker + "7");
}

}  // namespace
}  // namespace sigil::barrier

namespace sigil::barrier {
namespace {

// A key service for the wrapped-key seal's logic (the real one, a KMS v2 plugin over gRPC, is
// tested in kms_test and test_kms.py): AES-GCM under a key of its own, failing on request.
class TestWrapper final : public KeyWrapper {
 public:
  explicit TestWrapper(SecretBytes key, bool* down) : key_(std::move(key)), down_(down) {}
  std::string name() const override { return "test wrapper"; }
  Result<std::string> Wrap(const SecretBytes& k) override {
    if (*down_) return UnavailableError("down");
    std::string nonce = crypto::RandomNonce(12);
    SIGIL_ASSIGN_OR_RETURN(std::string sealed, crypto::AesGcmSeal(key_, nonce, k.view(), "root"));
    return nonce + sealed;
  }
  Result<SecretBytes> Unwrap(std::string_view blob) override {
    if (*down_) return UnavailableError("down");
    return crypto::AesGcmOpen(key_, blob.substr(0, 12), blob.substr(12), "root");
  }

 private:
  SecretBytes key_;
  bool* down_;
};

TEST(WrappedKeySealTest, MakesOneRootKeyOnceAndUnwrapsItLater) {
  storage::MemoryBackend backend;
  SecretBytes kek = crypto::RandomKey(32);
  bool down = false;
  auto seal = NewWrappedKeySeal(&backend, std::make_unique<TestWrapper>(kek.Clone(), &down));
  SIGIL_ASSERT_OK_AND_ASSIGN(SecretBytes first, seal->RootKey());
  EXPECT_EQ(first.size(), kRootKeySize);
  auto stored = backend.Get(kServiceWrappedRootKeyKey);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->value.find(std::string(first.view())), std::string::npos);  // wrapped, not plain
  // Another server (a second seal over the same store) gets the same key.
  auto other = NewWrappedKeySeal(&backend, std::make_unique<TestWrapper>(kek.Clone(), &down));
  SIGIL_ASSERT_OK_AND_ASSIGN(SecretBytes again, other->RootKey());
  EXPECT_EQ(again.view(), first.view());
  // The service down: a retryable error, not a new key.
  down = true;
  EXPECT_THAT(other->RootKey(), StatusIs(StatusCode::kUnavailable));
}

TEST(WrappedKeySealTest, RefusesAStoreMadeUnderAnotherSeal) {
  storage::MemoryBackend backend;
  auto dev = NewDevSeal();
  ASSERT_TRUE(Barrier::Open(&backend, dev.get(), nullptr, Clock::Real()).ok());  // a keyring exists
  bool down = false;
  auto seal = NewWrappedKeySeal(&backend, std::make_unique<TestWrapper>(crypto::RandomKey(32), &down));
  EXPECT_THAT(seal->RootKey(), StatusIs(StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace sigil::barrier
