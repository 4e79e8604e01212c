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

TEST_F(HistoryTest, KeepZeroRecordsNothingAndForgetsWhatWasKept) {
  Write("{\"v\":1}", 5);
  Write("{\"v\":2}", 5);
  EXPECT_EQ(Write("{\"v\":3}", 0), 0);
  EXPECT_TRUE(history_->List(kKey, false)->empty());
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
