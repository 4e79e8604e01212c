#include "sigil/engines/mount_table.h"

#include <gtest/gtest.h>

#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::engines {
namespace {

using ::sigil::testing::StatusIs;

class MountTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    barrier_ = std::move(barrier::Barrier::Open(&backend_, seal_.get(), nullptr, &clock_)).value();
    store_ = std::make_unique<store::ObjectStore>(barrier_.get());
    table_ = std::move(MountTable::Open(store_.get(), MountTable::Kind::kAuth, {Mount{"token/", "token"}})).value();
  }
  ManualClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Seal> seal_ = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<store::ObjectStore> store_;
  std::unique_ptr<MountTable> table_;
};

TEST_F(MountTableTest, EnableFindDisableAndPersist) {
  auto m = table_->Enable(Mount{"userpass", "userpass", "people"});
  SIGIL_ASSERT_OK(m);
  EXPECT_EQ(m->path, "userpass/");
  EXPECT_TRUE(m->accessor.starts_with("userpass_"));
  EXPECT_EQ(table_->Find("userpass/login/alice")->uuid, m->uuid);
  EXPECT_EQ(table_->Find("token/create")->type, "token");
  EXPECT_FALSE(table_->Find("userpassX/login").has_value());
  EXPECT_THAT(table_->Enable(Mount{"userpass/", "userpass"}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(table_->Enable(Mount{"userpass/inner", "userpass"}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(table_->Enable(Mount{"token/x", "userpass"}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(table_->Enable(Mount{"a/../b", "userpass"}), StatusIs(StatusCode::kInvalidArgument));
  // A second table over the same store sees it (another server on the store, or a restart).
  auto again = MountTable::Open(store_.get(), MountTable::Kind::kAuth, {Mount{"token/", "token"}});
  SIGIL_ASSERT_OK(again);
  EXPECT_EQ((*again)->Find("userpass/x")->uuid, m->uuid);

  Storage s = table_->StorageFor(*m);
  SIGIL_ASSERT_OK(s.Put("user/alice", SecretBytes(std::string_view("{}")), std::nullopt));
  EXPECT_THAT(s.Get("../x"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(s.Get("user/../../../auth/tokens"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(s.Get("/sigil/auth/token-key"), StatusIs(StatusCode::kInvalidArgument));
  auto names = s.List("user/");
  SIGIL_ASSERT_OK(names);
  EXPECT_EQ(*names, std::vector<std::string>{"alice"});

  EXPECT_THAT(table_->Disable("token/"), StatusIs(StatusCode::kInvalidArgument));
  SIGIL_ASSERT_OK(table_->Disable("userpass"));
  EXPECT_FALSE(table_->Find("userpass/login/alice").has_value());
  auto left = store_->Keys("/sigil/logical/" + m->uuid + "/");
  SIGIL_ASSERT_OK(left);
  EXPECT_TRUE(left->empty());  // its data went with it
}

}  // namespace
}  // namespace sigil::engines
