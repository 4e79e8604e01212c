#include "sigil/engines/mount_table.h"

#include "sigil/engines/engine.h"

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

// A mount stored at a path that a later version makes built in (kubernetes/) keeps being served:
// the built-in steps aside, and the stored one can be moved and disabled as any other.
TEST_F(MountTableTest, AStoredMountAtABuiltInsPathKeepsBeingServed) {
  auto old = MountTable::Open(store_.get(), MountTable::Kind::kSecrets, {Mount{"sys/", "system"}});
  SIGIL_ASSERT_OK(old);
  auto kv = (*old)->Enable(Mount{"kubernetes/", "kv", "from before"});
  SIGIL_ASSERT_OK(kv);
  auto upgraded = MountTable::Open(store_.get(), MountTable::Kind::kSecrets,
                                   {Mount{"sys/", "system"}, Mount{"kubernetes/", "kubernetes-secrets"}});
  SIGIL_ASSERT_OK(upgraded);
  EXPECT_EQ((*upgraded)->Find("kubernetes/data/x")->uuid, kv->uuid);
  EXPECT_EQ((*upgraded)->Find("kubernetes/data/x")->type, "kv");
  SIGIL_ASSERT_OK((*upgraded)->Remount("kubernetes/", "old-kv/"));
  EXPECT_EQ((*upgraded)->Find("old-kv/data/x")->uuid, kv->uuid);
  // After a restart the built-in is served again.
  auto restarted = MountTable::Open(store_.get(), MountTable::Kind::kSecrets,
                                    {Mount{"sys/", "system"}, Mount{"kubernetes/", "kubernetes-secrets"}});
  SIGIL_ASSERT_OK(restarted);
  EXPECT_EQ((*restarted)->Find("kubernetes/data/x")->type, "kubernetes-secrets");
  EXPECT_THAT((*restarted)->Disable("kubernetes/"), StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(MountTableTest, SecretsTableReservesPathsTunesAndRemounts) {
  auto secrets = MountTable::Open(store_.get(), MountTable::Kind::kSecrets, {Mount{"sys/", "system"}});
  SIGIL_ASSERT_OK(secrets);
  MountTable& t = **secrets;
  for (const char* reserved : {"auth/kv", "cubbyhole", "identity/x", "sys/x"}) {
    EXPECT_THAT(t.Enable(Mount{reserved, "kv"}), StatusIs(StatusCode::kInvalidArgument)) << reserved;
  }
  auto a = t.Enable(Mount{"a", "kv"});
  SIGIL_ASSERT_OK(a);
  auto b = t.Enable(Mount{"b", "kv"});
  SIGIL_ASSERT_OK(b);
  auto tuned = t.Tune("a", [](Mount* m) {
    m->default_lease_ttl = 60;
    m->uuid = "forged";  // identity fields cannot change
    return OkStatus();
  });
  SIGIL_ASSERT_OK(tuned);
  EXPECT_EQ(tuned->default_lease_ttl, 60);
  EXPECT_EQ(tuned->uuid, a->uuid);
  EXPECT_THAT(t.Tune("sys", [](Mount*) { return OkStatus(); }), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(t.Tune("nope", [](Mount*) { return OkStatus(); }), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(t.Remount("a", "b/inner"), StatusIs(StatusCode::kInvalidArgument));
  SIGIL_ASSERT_OK(t.Remount("a", "c"));
  EXPECT_EQ(t.Find("c/x")->uuid, a->uuid);
  EXPECT_FALSE(t.Find("a/x").has_value());

  // Two KV engines on two mounts: neither sees the other's entries.
  std::unique_ptr<SecretsEngine> ea = FindEngineType("kv")->make(*t.Find("c/x"), t.StorageFor(*t.Find("c/x")), &clock_);
  std::unique_ptr<SecretsEngine> eb = FindEngineType("kv")->make(*b, t.StorageFor(*b), &clock_);
  Request put{Operation::kCreate, "app/db", Json{{"password", "pw"}}, {}};
  auto created = ea->Handle(put);
  SIGIL_ASSERT_OK(created);
  EXPECT_EQ(created->status, 204);
  Request get{Operation::kRead, "app/db", Json::object(), {}};
  EXPECT_EQ(ea->Handle(get)->data["password"], "pw");
  EXPECT_EQ(ea->Handle(get)->lease_duration, 60);
  EXPECT_EQ(eb->Handle(get)->status, 404);
  EXPECT_EQ(*ea->Exists(put), std::optional<bool>(true));
  EXPECT_EQ(*eb->Exists(put), std::optional<bool>(false));
  Request list{Operation::kList, "", Json::object(), {}};
  EXPECT_EQ(ea->Handle(list)->data["keys"], Json({"app/"}));
  EXPECT_EQ(eb->Handle(list)->status, 404);
  Request escape{Operation::kRead, "app/../../" + b->uuid + "/app/db", Json::object(), {}};
  EXPECT_EQ(eb->Handle(escape)->status, 400);
  Request del{Operation::kDelete, "app/db", Json::object(), {}};
  EXPECT_EQ(ea->Handle(del)->status, 204);
  EXPECT_EQ(ea->Handle(get)->status, 404);
}

}  // namespace
}  // namespace sigil::engines
