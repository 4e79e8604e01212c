#include "sigil/store/object_store.h"

#include <gtest/gtest.h>

#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::store {
namespace {

using ::sigil::testing::StatusIs;

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    barrier_ = std::move(barrier::Barrier::Open(&backend_, seal_.get(), nullptr, &clock_)).value();
    store_ = std::make_unique<ObjectStore>(barrier_.get());
  }
  ManualClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Seal> seal_ = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(ObjectStoreTest, CreateGetUpdateDeleteWithRevisions) {
  auto rev = store_->Create("/registry/secrets/ns/a", SecretBytes(std::string_view("{\"v\":1}")));
  ASSERT_TRUE(rev.ok());
  EXPECT_THAT(store_->Create("/registry/secrets/ns/a", SecretBytes(std::string_view("{}"))),
              StatusIs(StatusCode::kAlreadyExists));
  auto got = store_->Get("/registry/secrets/ns/a");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->doc.view(), "{\"v\":1}");
  EXPECT_EQ((*got)->revision, *rev);
  EXPECT_THAT(store_->Update("/registry/secrets/ns/a", SecretBytes(std::string_view("{}")), *rev + 7),
              StatusIs(StatusCode::kAborted));
  auto rev2 = store_->Update("/registry/secrets/ns/a", SecretBytes(std::string_view("{\"v\":2}")), *rev);
  ASSERT_TRUE(rev2.ok());
  EXPECT_GT(*rev2, *rev);
  EXPECT_THAT(store_->Delete("/registry/secrets/ns/a", *rev), StatusIs(StatusCode::kAborted));
  EXPECT_TRUE(store_->Delete("/registry/secrets/ns/a", *rev2).ok());
  EXPECT_THAT(store_->Update("/registry/secrets/ns/a", SecretBytes(std::string_view("{}")), *rev2),
              StatusIs(StatusCode::kNotFound));
  EXPECT_FALSE(store_->Get("/registry/secrets/ns/a")->has_value());
}

TEST_F(ObjectStoreTest, DeleteCascadesAtomically) {
  int64_t ns = *store_->Create("/registry/namespaces/x", SecretBytes(std::string_view("{}")));
  (void)store_->Create("/registry/secrets/x/a", SecretBytes(std::string_view("{}")));
  (void)store_->Create("/registry/secrets/x/b", SecretBytes(std::string_view("{}")));
  SideEffects cascade;
  cascade.deletes = {"/registry/secrets/x/a", "/registry/secrets/x/b"};
  ASSERT_TRUE(store_->Delete("/registry/namespaces/x", ns, cascade).ok());
  auto l = store_->List("/registry/secrets/x/", "", 0);
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->items.empty());
}

TEST_F(ObjectStoreTest, ListPages) {
  for (const char* n : {"a", "b", "c"}) (void)store_->Create(std::string("/registry/secrets/ns/") + n, SecretBytes(std::string_view("{}")));
  auto p1 = store_->List("/registry/secrets/ns/", "", 2);
  ASSERT_EQ(p1->items.size(), 2u);
  EXPECT_TRUE(p1->more);
  auto p2 = store_->List("/registry/secrets/ns/", p1->items.back().key, 2);
  ASSERT_EQ(p2->items.size(), 1u);
  EXPECT_EQ(p2->items[0].key, "/registry/secrets/ns/c");
}

}  // namespace
}  // namespace sigil::store
