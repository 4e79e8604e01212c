#include "sigil/barrier/shamir_seal.h"

#include <gtest/gtest.h>

#include "sigil/barrier/barrier.h"
#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::barrier {
namespace {

using ::sigil::testing::StatusIs;

std::vector<SecretBytes> Pick(const std::vector<SecretBytes>& from, std::initializer_list<int> which) {
  std::vector<SecretBytes> out;
  for (int i : which) out.push_back(from[i].Clone());
  return out;
}

void SetRaw(storage::Backend* b, std::string_view key, std::string value) {
  storage::Txn t;
  t.ops.push_back(storage::Op::Put(std::string(key), std::move(value)));
  ASSERT_TRUE(b->Commit(std::move(t)).ok());
}

TEST(ShamirSealTest, AnyThresholdOfSharesGivesTheRootKeyAndOpensTheBarrier) {
  storage::MemoryBackend backend;
  ShamirSeal seal(&backend);
  SIGIL_ASSERT_OK_AND_ASSIGN(auto none, seal.Config());
  EXPECT_FALSE(none.has_value());
  SIGIL_ASSERT_OK_AND_ASSIGN(ShamirSeal::Initialized init, seal.Initialize(5, 3));
  ASSERT_EQ(init.shares.size(), 5u);
  SIGIL_ASSERT_OK_AND_ASSIGN(auto config, seal.Config());
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->shares, 5);
  EXPECT_EQ(config->threshold, 3);
  for (std::vector<int> which : {std::vector<int>{0, 1, 2}, {4, 2, 0}, {1, 2, 3, 4}}) {
    std::vector<SecretBytes> pick;
    for (int i : which) pick.push_back(init.shares[i].Clone());
    SIGIL_ASSERT_OK_AND_ASSIGN(SecretBytes root, seal.RootKey(pick));
    EXPECT_TRUE(root.Equals(init.root_key));
  }
  EXPECT_THAT(seal.RootKey(Pick(init.shares, {0, 1})).status(), StatusIs(StatusCode::kInvalidArgument));
  // The stored root key is wrapped: neither it nor any share is in storage.
  std::string stored = (*backend.Get(kWrappedRootKeyKey))->value;
  EXPECT_EQ(stored.find(init.root_key.view()), std::string::npos);
  SIGIL_ASSERT_OK_AND_ASSIGN(auto barrier, Barrier::OpenWithRootKey(&backend, init.root_key.Clone(), nullptr, Clock::Real()));
  EXPECT_EQ(barrier->keyring_info().active_term, 1u);
}

TEST(ShamirSealTest, WrongSharesAndAlteredStorageDoNotUnseal) {
  storage::MemoryBackend backend;
  ShamirSeal seal(&backend);
  SIGIL_ASSERT_OK_AND_ASSIGN(ShamirSeal::Initialized init, seal.Initialize(3, 2));
  storage::MemoryBackend other_backend;
  ShamirSeal other(&other_backend);
  SIGIL_ASSERT_OK_AND_ASSIGN(ShamirSeal::Initialized foreign, other.Initialize(3, 2));
  std::vector<SecretBytes> mixed = Pick(init.shares, {0});
  mixed.push_back(foreign.shares[1].Clone());
  // Two shares with the same x coordinate are refused by the combiner; either way: denied.
  EXPECT_THAT(seal.RootKey(mixed).status(), StatusIs(StatusCode::kPermissionDenied));
  std::vector<SecretBytes> flipped = Pick(init.shares, {0, 1});
  flipped[1].data()[3] ^= 1;
  EXPECT_THAT(seal.RootKey(flipped).status(), StatusIs(StatusCode::kPermissionDenied));
  std::vector<SecretBytes> short_share = Pick(init.shares, {0, 1});
  short_share[1].resize(10);
  EXPECT_THAT(seal.RootKey(short_share).status(), StatusIs(StatusCode::kPermissionDenied));
  // Lowering the threshold in the clear-text config does not help an attacker: it is in the AAD.
  SetRaw(&backend, kSealConfigKey, R"({"type":"shamir","secret_shares":3,"secret_threshold":3})");
  EXPECT_THAT(seal.RootKey(Pick(init.shares, {0, 1, 2})).status(), StatusIs(StatusCode::kPermissionDenied));
  SetRaw(&backend, kSealConfigKey, "not json");
  EXPECT_THAT(seal.RootKey(Pick(init.shares, {0, 1})).status(), StatusIs(StatusCode::kDataLoss));
}

TEST(ShamirSealTest, InitialisesOnceAndNeverOverAnotherSealsKeyring) {
  storage::MemoryBackend backend;
  ShamirSeal seal(&backend);
  EXPECT_THAT(seal.Initialize(5, 1).status(), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(seal.Initialize(2, 3).status(), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(seal.Initialize(256, 3).status(), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(seal.Initialize(0, 0).status(), StatusIs(StatusCode::kInvalidArgument));
  SIGIL_ASSERT_OK_AND_ASSIGN(ShamirSeal::Initialized one, seal.Initialize(1, 1));
  ASSERT_EQ(one.shares.size(), 1u);
  EXPECT_EQ(one.shares[0].size(), 32u);
  SIGIL_ASSERT_OK_AND_ASSIGN(SecretBytes root, seal.RootKey(Pick(one.shares, {0})));
  EXPECT_TRUE(root.Equals(one.root_key));
  EXPECT_THAT(seal.Initialize(1, 1).status(), StatusIs(StatusCode::kFailedPrecondition));

  storage::MemoryBackend keyfile_store;
  auto dev = NewDevSeal();
  ASSERT_TRUE(Barrier::Open(&keyfile_store, dev.get(), nullptr, Clock::Real()).ok());
  ShamirSeal over(&keyfile_store);
  EXPECT_THAT(over.Initialize(3, 2).status(), StatusIs(StatusCode::kFailedPrecondition));
}

TEST(ShamirSealTest, RekeyReplacesTheSharesAndKeepsTheRootKey) {
  storage::MemoryBackend backend;
  ShamirSeal seal(&backend);
  SIGIL_ASSERT_OK_AND_ASSIGN(ShamirSeal::Initialized init, seal.Initialize(3, 2));
  EXPECT_THAT(seal.Rekey(Pick(init.shares, {0}), 5, 3).status(), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(seal.Rekey(Pick(init.shares, {0, 1}), 5, 9).status(), StatusIs(StatusCode::kInvalidArgument));
  SIGIL_ASSERT_OK_AND_ASSIGN(std::vector<SecretBytes> fresh, seal.Rekey(Pick(init.shares, {0, 2}), 5, 3));
  ASSERT_EQ(fresh.size(), 5u);
  EXPECT_THAT(seal.RootKey(Pick(init.shares, {0, 1})).status(), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(seal.RootKey(Pick(init.shares, {0, 1, 2})).status(), StatusIs(StatusCode::kPermissionDenied));
  SIGIL_ASSERT_OK_AND_ASSIGN(SecretBytes root, seal.RootKey(Pick(fresh, {1, 3, 4})));
  EXPECT_TRUE(root.Equals(init.root_key));
}

TEST(ShareCollectorTest, CountsDistinctSharesUntilTheThreshold) {
  ShareCollector c;
  c.Start(2, "nonce-1");
  EXPECT_FALSE(c.Add(SecretBytes(std::string_view("aaaa"))));
  EXPECT_FALSE(c.Add(SecretBytes(std::string_view("aaaa"))));  // the same share again counts once
  EXPECT_EQ(c.progress(), 1);
  EXPECT_TRUE(c.Add(SecretBytes(std::string_view("bbbb"))));
  EXPECT_EQ(c.nonce(), "nonce-1");
  c.Reset();
  EXPECT_EQ(c.progress(), 0);
  EXPECT_EQ(c.nonce(), "");
}

}  // namespace
}  // namespace sigil::barrier
