// One conformance suite for every Backend (as Vault's sdk/physical/testing.go). A backend is
// added by adding a factory to kFactories; each test gets a fresh directory.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "sigil/base/file.h"
#include "sigil/storage/fault_injection_backend.h"
#include "sigil/storage/lmdb_backend.h"
#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::storage {
namespace {

using ::sigil::testing::StatusIs;
using ::sigil::testing::TempDir;

struct Factory {
  std::string name;
  bool persistent;
  std::function<std::unique_ptr<Backend>(const std::string& dir)> open;
  // Every byte the backend holds at rest (files for LMDB, the map for memory).
  std::function<std::string(Backend*, const std::string& dir)> raw_bytes;
};

const Factory kFactories[] = {
    {"memory", false, [](const std::string&) { return std::unique_ptr<Backend>(new MemoryBackend()); },
     [](Backend* b, const std::string&) { return static_cast<MemoryBackend*>(b)->RawBytes(); }},
    {"lmdb", true,
     [](const std::string& dir) {
       LmdbOptions o;
       o.dir = dir + "/store";
       o.map_size = 64 << 20;
       auto r = LmdbBackend::Open(o);
       if (!r.ok()) ADD_FAILURE() << r.error();
       return std::unique_ptr<Backend>(std::move(r).value());
     },
     [](Backend*, const std::string& dir) { return *file::ReadFile(dir + "/store/data.mdb"); }},
    // The fault-injecting wrapper with no fault armed must be indistinguishable from its target.
    {"fault_injection_over_lmdb", true,
     [](const std::string& dir) {
       LmdbOptions o;
       o.dir = dir + "/store";
       o.map_size = 64 << 20;
       auto r = LmdbBackend::Open(o);
       if (!r.ok()) ADD_FAILURE() << r.error();
       return std::unique_ptr<Backend>(new FaultInjectionBackend(std::unique_ptr<Backend>(std::move(r).value())));
     },
     [](Backend*, const std::string& dir) { return *file::ReadFile(dir + "/store/data.mdb"); }},
};

class BackendConformance : public ::testing::TestWithParam<Factory> {
 protected:
  void SetUp() override { backend_ = GetParam().open(dir_.path()); }
  void Reopen() {
    backend_.reset();
    backend_ = GetParam().open(dir_.path());
  }
  TxnResult Put(const std::string& k, const std::string& v) {
    Txn t;
    t.ops.push_back(Op::Put(k, v));
    auto r = backend_->Commit(std::move(t));
    EXPECT_TRUE(r.ok()) << r.error();
    return r.ok() ? *r : TxnResult{};
  }

  TempDir dir_;
  std::unique_ptr<Backend> backend_;
};

TEST_P(BackendConformance, GetMissingIsEmpty) {
  auto r = backend_->Get("/registry/secrets/default/none");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(backend_->CurrentRevision(), 0);
}

TEST_P(BackendConformance, PutGetAndRevisions) {
  TxnResult a = Put("/k/a", "1");
  EXPECT_TRUE(a.succeeded);
  EXPECT_EQ(a.revision, 1);
  TxnResult b = Put("/k/a", "2");
  EXPECT_EQ(b.revision, 2);
  auto kv = backend_->Get("/k/a");
  ASSERT_TRUE(kv.ok() && kv->has_value());
  EXPECT_EQ((*kv)->value, "2");
  EXPECT_EQ((*kv)->create_revision, 1);
  EXPECT_EQ((*kv)->mod_revision, 2);
  EXPECT_EQ(backend_->CurrentRevision(), 2);
}

TEST_P(BackendConformance, EmptyAndBinaryValues) {
  std::string bin("\x00\xff\x00k8s", 6);
  Put("/k/bin", bin);
  Put("/k/empty", "");
  EXPECT_EQ((*backend_->Get("/k/bin"))->value, bin);
  EXPECT_EQ((*backend_->Get("/k/empty"))->value, "");
}

TEST_P(BackendConformance, RangePrefixLimitContinue) {
  for (const char* k : {"/r/a/1", "/r/a/2", "/r/a/3", "/r/b/1", "/r/a0"}) Put(k, k);
  RangeRequest req;
  req.prefix = "/r/a/";
  auto all = backend_->Range(req);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->kvs.size(), 3u);
  EXPECT_EQ(all->kvs[0].key, "/r/a/1");
  EXPECT_EQ(all->kvs[2].key, "/r/a/3");
  EXPECT_FALSE(all->more);
  EXPECT_EQ(all->revision, 5);

  req.limit = 2;
  auto page1 = backend_->Range(req);
  ASSERT_EQ(page1->kvs.size(), 2u);
  EXPECT_TRUE(page1->more);
  req.start_after = page1->kvs.back().key;
  auto page2 = backend_->Range(req);
  ASSERT_EQ(page2->kvs.size(), 1u);
  EXPECT_EQ(page2->kvs[0].key, "/r/a/3");
  EXPECT_FALSE(page2->more);

  RangeRequest keys;
  keys.prefix = "/r/";
  keys.keys_only = true;
  auto k = backend_->Range(keys);
  ASSERT_EQ(k->kvs.size(), 5u);
  EXPECT_TRUE(k->kvs[0].value.empty());
  EXPECT_EQ(k->kvs[0].mod_revision, 1);
}

// Regression (hostile review): a prefix or continue token longer than any key failed with
// "storage key length out of range" (a 400 naming storage) instead of matching nothing, or the
// keys after it.
TEST_P(BackendConformance, RangeFromBeyondTheLongestKey) {
  std::string longest(kMaxKeySize, 'm');
  for (const std::string& k : {std::string("/a"), longest, longest.substr(0, kMaxKeySize - 1) + "n", std::string("/z")}) Put(k, "v");
  RangeRequest req;
  req.prefix = longest + "x";
  auto none = backend_->Range(req);
  ASSERT_TRUE(none.ok()) << none.error();
  EXPECT_TRUE(none->kvs.empty());
  EXPECT_EQ(none->revision, 4);
  RangeRequest after;
  after.start_after = longest + "x";  // after `longest`, before its successor
  auto rest = backend_->Range(after);
  ASSERT_TRUE(rest.ok()) << rest.error();
  ASSERT_EQ(rest->kvs.size(), 1u);
  EXPECT_EQ(rest->kvs[0].key, longest.substr(0, kMaxKeySize - 1) + "n");
}

TEST_P(BackendConformance, CompareOnRevision) {
  Txn create;
  create.compares.push_back({"/c/x", 0});
  create.ops.push_back(Op::Put("/c/x", "v1"));
  auto r1 = backend_->Commit(create);
  ASSERT_TRUE(r1.ok());
  EXPECT_TRUE(r1->succeeded);
  // A second create-if-absent fails and changes nothing.
  auto r2 = backend_->Commit(create);
  ASSERT_TRUE(r2.ok());
  EXPECT_FALSE(r2->succeeded);
  EXPECT_EQ(r2->revision, r1->revision);
  EXPECT_EQ((*backend_->Get("/c/x"))->value, "v1");

  Txn stale;
  stale.compares.push_back({"/c/x", r1->revision + 100});
  stale.ops.push_back(Op::Put("/c/x", "v2"));
  EXPECT_FALSE(backend_->Commit(stale)->succeeded);

  Txn cas;
  cas.compares.push_back({"/c/x", r1->revision});
  cas.ops.push_back(Op::Put("/c/x", "v2"));
  EXPECT_TRUE(backend_->Commit(cas)->succeeded);
  EXPECT_EQ((*backend_->Get("/c/x"))->value, "v2");
}

TEST_P(BackendConformance, MultiKeyTxnIsAtomicAndOneRevision) {
  Put("/m/old", "x");
  Txn t;
  t.ops.push_back(Op::Put("/m/a", "1"));
  t.ops.push_back(Op::Put("/m/b", "2"));
  t.ops.push_back(Op::Delete("/m/old"));
  auto r = backend_->Commit(t);
  ASSERT_TRUE(r.ok() && r->succeeded);
  EXPECT_EQ(r->revision, 2);
  EXPECT_EQ((*backend_->Get("/m/a"))->mod_revision, 2);
  EXPECT_EQ((*backend_->Get("/m/b"))->mod_revision, 2);
  EXPECT_FALSE(backend_->Get("/m/old")->has_value());

  // A failing compare on one key applies none of the ops.
  Txn f;
  f.compares.push_back({"/m/a", 1});
  f.ops.push_back(Op::Put("/m/a", "X"));
  f.ops.push_back(Op::Put("/m/c", "X"));
  EXPECT_FALSE(backend_->Commit(f)->succeeded);
  EXPECT_FALSE(backend_->Get("/m/c")->has_value());
}

TEST_P(BackendConformance, DeleteMissingIsNoOpWithoutRevision) {
  Put("/d/a", "1");
  Txn t;
  t.ops.push_back(Op::Delete("/d/none"));
  auto r = backend_->Commit(t);
  ASSERT_TRUE(r.ok() && r->succeeded);
  EXPECT_EQ(r->revision, 1);
  EXPECT_EQ(backend_->CurrentRevision(), 1);
}

TEST_P(BackendConformance, WatchDeliversInOrderWithPrefixAndPrev) {
  Put("/w/a", "0");  // rev 1, before the watch
  std::vector<Event> got;
  std::mutex mu;
  auto h = backend_->Watch("/w/", 1, [&](const std::vector<Event>& evs) {
    std::lock_guard<std::mutex> l(mu);
    got.insert(got.end(), evs.begin(), evs.end());
  });
  ASSERT_TRUE(h.ok());
  Put("/w/a", "1");    // 2
  Put("/other", "x");  // 3, filtered out
  Txn d;
  d.ops.push_back(Op::Delete("/w/a"));  // 4
  ASSERT_TRUE(backend_->Commit(d).ok());
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].type, Event::Type::kPut);
  EXPECT_EQ(got[0].kv.mod_revision, 2);
  EXPECT_EQ(got[0].kv.value, "1");
  ASSERT_TRUE(got[0].prev.has_value());
  EXPECT_EQ(got[0].prev->value, "0");
  EXPECT_EQ(got[1].type, Event::Type::kDelete);
  EXPECT_EQ(got[1].kv.mod_revision, 4);
  EXPECT_EQ(got[1].prev->value, "1");
}

TEST_P(BackendConformance, WatchReplaysHistoryAfterRevision) {
  int64_t start = backend_->CurrentRevision();
  Put("/h/a", "1");
  Put("/h/a", "2");
  std::vector<int64_t> revs;
  auto h = backend_->Watch("/h/", start + 1, [&](const std::vector<Event>& evs) {
    for (const Event& e : evs) revs.push_back(e.kv.mod_revision);
  });
  ASSERT_TRUE(h.ok());
  Put("/h/a", "3");
  EXPECT_EQ(revs, (std::vector<int64_t>{start + 2, start + 3}));
  h->reset();
  Put("/h/a", "4");  // cancelled: not delivered
  EXPECT_EQ(revs.size(), 2u);
}

TEST_P(BackendConformance, WatchTooOldIsOutOfRange) {
  Put("/o/a", "1");
  Put("/o/a", "2");
  Reopen();  // history is in memory only: after a restart it starts at the opened revision
  int64_t rev = backend_->CurrentRevision();
  if (GetParam().persistent) {
    EXPECT_THAT(backend_->Watch("/o/", rev - 1, [](const std::vector<Event>&) {}),
                StatusIs(StatusCode::kOutOfRange));
  }
  EXPECT_TRUE(backend_->Watch("/o/", rev, [](const std::vector<Event>&) {}).ok());
}

TEST_P(BackendConformance, ConcurrentCasIncrementsLoseNothing) {
  constexpr int kThreads = 4, kIncrements = 50;
  Put("/cnt", "0");
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int done = 0; done < kIncrements;) {
        auto cur = backend_->Get("/cnt");
        ASSERT_TRUE(cur.ok() && cur->has_value());
        Txn txn;
        txn.compares.push_back({"/cnt", (*cur)->mod_revision});
        txn.ops.push_back(Op::Put("/cnt", std::to_string(std::stoi((*cur)->value) + 1)));
        auto r = backend_->Commit(std::move(txn));
        ASSERT_TRUE(r.ok());
        if (r->succeeded) {
          ++done;
        } else {
          ++conflicts;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ((*backend_->Get("/cnt"))->value, std::to_string(kThreads * kIncrements));
  EXPECT_EQ(backend_->CurrentRevision(), 1 + kThreads * kIncrements);
}

TEST_P(BackendConformance, PersistsAcrossReopen) {
  if (!GetParam().persistent) GTEST_SKIP() << "not persistent";
  Put("/p/a", "1");
  Put("/p/b", "2");
  Reopen();
  EXPECT_EQ(backend_->CurrentRevision(), 2);
  EXPECT_EQ((*backend_->Get("/p/b"))->value, "2");
  EXPECT_EQ(Put("/p/c", "3").revision, 3);
}

TEST_P(BackendConformance, RawBytesHookSeesStoredValues) {
  // The hook must observe what is stored, or the barrier's no-plaintext checks built on it
  // would prove nothing.
  Put("/raw/a", "RAWMARKER-0123456789");
  EXPECT_NE(GetParam().raw_bytes(backend_.get(), dir_.path()).find("RAWMARKER-0123456789"),
            std::string::npos);
}

TEST_P(BackendConformance, RejectsOverlongKeysWithoutSideEffects) {
  std::string key(kMaxKeySize + 1, 'k');
  Txn t;
  t.ops.push_back(Op::Put("/ok", "1"));
  t.ops.push_back(Op::Put(key, "1"));
  auto r = backend_->Commit(t);
  EXPECT_THAT(r, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_FALSE(backend_->Get("/ok")->has_value());
  EXPECT_THAT(backend_->Get(key), StatusIs(StatusCode::kInvalidArgument));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendConformance, ::testing::ValuesIn(kFactories),
                         [](const ::testing::TestParamInfo<Factory>& p) { return p.param.name; });

}  // namespace
}  // namespace sigil::storage
