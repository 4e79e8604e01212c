#include "sigil/store/history.h"

#include <gtest/gtest.h>

#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::store {
namespace {

using ::sigil::testing::StatusIs;

constexpr char kKey[] = "/registry/secrets/ns/s";

class HistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    barrier_ = std::move(barrier::Barrier::Open(&backend_, seal_.get(), nullptr, &clock_)).value();
    store_ = std::make_unique<ObjectStore>(barrier_.get());
    history_ = std::make_unique<History>(store_.get());
  }
  // Writes `doc` (nullptr: delete) through the store with history, as the API does.
  int64_t Write(const char* doc, int keep, const char* op = "update") {
    auto cur = store_->Get(kKey);
    SideEffects also;
    SecretBytes d(std::string_view(doc == nullptr ? "" : doc));
    auto v = history_->Record(kKey, doc == nullptr ? nullptr : &d, {op, "T", "m"}, keep, &also);
    EXPECT_TRUE(v.ok());
    Result<int64_t> r = doc == nullptr ? store_->Delete(kKey, (*cur)->revision, also)
                        : *cur ? store_->Update(kKey, d, (*cur)->revision, also)
                               : store_->Create(kKey, d, also);
    EXPECT_TRUE(r.ok()) << r.error();
    return *v;
  }
  ManualClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Seal> seal_ = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<History> history_;
};

TEST_F(HistoryTest, NumbersVersionsAndKeepsTheNewestPlusKeepEarlier) {
  for (int i = 1; i <= 6; ++i) EXPECT_EQ(Write(("{\"v\":" + std::to_string(i) + "}").c_str(), 3), i);
  auto l = history_->List(kKey, true);
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->size(), 4u);  // 3..6
  EXPECT_EQ((*l)[0].version, 3);
  EXPECT_EQ((*l)[0].doc.view(), "{\"v\":3}");
  EXPECT_EQ((*l)[3].version, 6);
  auto cur = store_->Get(kKey);
  EXPECT_EQ((*l)[3].revision, (*cur)->revision);  // the record shares the object's revision
  auto v4 = history_->Get(kKey, 4);
  ASSERT_TRUE(v4.ok() && v4->has_value());
  EXPECT_EQ((*v4)->doc.view(), "{\"v\":4}");
  EXPECT_FALSE(history_->Get(kKey, 2)->has_value());
}

TEST_F(HistoryTest, DeleteIsATombstoneAndNumberingContinues) {
  Write("{\"v\":1}", 10, "create");
  Write(nullptr, 10, "delete");
  EXPECT_EQ(Write("{\"v\":3}", 10, "create"), 3);
  auto l = history_->List(kKey, false);
  ASSERT_EQ(l->size(), 3u);
  EXPECT_TRUE((*l)[1].deleted);
  EXPECT_EQ((*l)[1].meta.operation, "delete");
  EXPECT_TRUE((*l)[0].doc.empty());  // listed without docs
}

TEST_F(HistoryTest, KeepZeroRecordsOnlyTheNewestAndForgetsWhatWasKept) {
  Write("{\"v\":1}", 5);
  Write("{\"v\":2}", 5);
  EXPECT_EQ(Write("{\"v\":3}", 0), 3);  // numbering continues, so versions stay comparable
  auto l = history_->List(kKey, true);
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ((*l)[0].version, 3);
  EXPECT_EQ((*l)[0].doc.view(), "{\"v\":3}");
}

TEST_F(HistoryTest, ADeletionKeepsTheVersionItDeletesEvenWithKeepZero) {
  Write("{\"v\":1}", 0, "create");
  Write("{\"v\":2}", 0);
  Write(nullptr, 0, "delete");
  auto l = history_->List(kKey, true);
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].doc.view(), "{\"v\":2}");
  EXPECT_TRUE((*l)[1].deleted);
  Write("{\"v\":4}", 0, "create");
  EXPECT_EQ(history_->List(kKey, false)->size(), 1u);
}

TEST_F(HistoryTest, AmendMarksClearsAndDestroysOnlyWhatHoldsAnObject) {
  Write("{\"v\":1}", 10, "create");
  Write("{\"v\":2}", 10);
  Write(nullptr, 10, "delete");
  auto amend = [&](int64_t v, History::Amendment a) -> bool {
    SideEffects also;
    auto changed = history_->Amend(kKey, v, a, "T9", &also);
    EXPECT_TRUE(changed.ok());
    if (*changed) {
      EXPECT_TRUE(store_->Apply(also).ok());
    }
    return *changed;
  };
  EXPECT_TRUE(amend(1, History::Amendment::kMarkDeleted));
  EXPECT_FALSE(amend(1, History::Amendment::kMarkDeleted));  // already
  EXPECT_FALSE(amend(3, History::Amendment::kMarkDeleted));  // a tombstone
  EXPECT_FALSE(amend(7, History::Amendment::kDestroy));      // no such version
  auto v1 = history_->Get(kKey, 1);
  EXPECT_EQ((*v1)->deleted_at, "T9");
  EXPECT_EQ((*v1)->doc.view(), "{\"v\":1}");  // kept, so it can be undeleted
  EXPECT_TRUE(amend(1, History::Amendment::kClearDeleted));
  EXPECT_EQ(history_->Get(kKey, 1)->value().deleted_at, "");
  EXPECT_EQ(history_->Get(kKey, 1)->value().revision, history_->List(kKey, false)->front().revision);
  EXPECT_LT(history_->Get(kKey, 1)->value().revision, history_->Get(kKey, 2)->value().revision);  // still its write's
  EXPECT_TRUE(amend(2, History::Amendment::kDestroy));
  auto v2 = history_->Get(kKey, 2);
  EXPECT_TRUE((*v2)->destroyed);
  EXPECT_FALSE((*v2)->deleted);
  EXPECT_TRUE((*v2)->doc.empty());
  EXPECT_FALSE(amend(2, History::Amendment::kClearDeleted));  // destroyed is final
  // The raw record no longer holds the value.
  auto raw = store_->Get(History::Prefix(kKey) + "00000000000000000002");
  EXPECT_EQ((*raw)->doc.view().find("\"v\""), std::string_view::npos);
  // A stale amendment loses: its compare is on the record's revision.
  SideEffects stale;
  ASSERT_TRUE(*history_->Amend(kKey, 1, History::Amendment::kMarkDeleted, "T10", &stale));
  SideEffects first;
  ASSERT_TRUE(*history_->Amend(kKey, 1, History::Amendment::kDestroy, "", &first));
  ASSERT_TRUE(store_->Apply(first).ok());
  EXPECT_THAT(store_->Apply(stale).status(), StatusIs(StatusCode::kAborted));
}

TEST_F(HistoryTest, AStaleRecordLosesTheRace) {
  Write("{\"v\":1}", 10, "create");
  auto cur = store_->Get(kKey);
  SideEffects a, b;
  SecretBytes d(std::string_view("{}"));
  ASSERT_TRUE(history_->Record(kKey, &d, {"update", "T", "a"}, 10, &a).ok());
  ASSERT_TRUE(history_->Record(kKey, &d, {"update", "T", "b"}, 10, &b).ok());
  ASSERT_TRUE(store_->Update(kKey, d, (*cur)->revision, a).ok());
  // b computed the same version number: even against the new object revision it cannot commit.
  auto now = store_->Get(kKey);
  EXPECT_THAT(store_->Update(kKey, d, (*now)->revision, b), StatusIs(StatusCode::kAborted));
}

TEST_F(HistoryTest, PurgeRemovesEveryVersionUnderAPrefix) {
  Write("{\"v\":1}", 10);
  SideEffects also;
  ASSERT_TRUE(history_->PurgeUnder("/registry/secrets/ns/", &also).ok());
  EXPECT_EQ(also.deletes.size(), 1u);
  ASSERT_TRUE(store_->Create("/registry/x", SecretBytes(std::string_view("{}")), also).ok());
  EXPECT_TRUE(history_->List(kKey, false)->empty());
}

TEST_F(HistoryTest, RecordsAreEncryptedAtRest) {
  Write("{\"canary\":\"SIGILCANARY\"}", 10);
  storage::RangeRequest req;
  req.prefix = "/sigil/history/";
  auto raw = backend_.Range(req);
  ASSERT_TRUE(raw.ok());
  ASSERT_EQ(raw->kvs.size(), 1u);
  EXPECT_EQ(raw->kvs[0].value.find("SIGILCANARY"), std::string::npos);
  EXPECT_TRUE(raw->kvs[0].value.starts_with("sigil:enc:v1:"));
}

}  // namespace
}  // namespace sigil::store
