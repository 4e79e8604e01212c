// LMDB-specific behaviour: durability flags, group commit, full store, exclusive open.
#include "sigil/storage/lmdb_backend.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <future>
#include <thread>

#include "sigil/testing/status_matchers.h"

namespace sigil::storage {
namespace {

using ::sigil::testing::StatusIs;
using ::sigil::testing::TempDir;

std::unique_ptr<LmdbBackend> OpenOrDie(const std::string& dir, size_t map_size = 64 << 20) {
  LmdbOptions o;
  o.dir = dir;
  o.map_size = map_size;
  auto r = LmdbBackend::Open(o);
  EXPECT_TRUE(r.ok()) << r.error();
  return std::move(r).value();
}

TEST(LmdbBackendTest, OpenedWithoutUnsafeFlags) {
  TempDir dir;
  auto b = OpenOrDie(dir.Sub("s"));
  unsigned int flags = b->EnvFlags();
  EXPECT_EQ(flags & MDB_NOSYNC, 0u);
  EXPECT_EQ(flags & MDB_NOMETASYNC, 0u);
  EXPECT_EQ(flags & MDB_WRITEMAP, 0u);
  EXPECT_EQ(flags & MDB_MAPASYNC, 0u);
  EXPECT_EQ(flags & MDB_NOMEMINIT, 0u);
}

TEST(LmdbBackendTest, FilesArePrivate) {
  TempDir dir;
  ::umask(0);
  auto b = OpenOrDie(dir.Sub("s"));
  ::umask(022);
  struct stat st {};
  ASSERT_EQ(::stat(dir.Sub("s").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const char* f : {"data.mdb", "lock.mdb", "sigil.lock"}) {
    ASSERT_EQ(::stat((dir.Sub("s") + "/" + f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
}

TEST(LmdbBackendTest, SecondOpenIsRefused) {
  TempDir dir;
  auto b = OpenOrDie(dir.Sub("s"));
  LmdbOptions o;
  o.dir = dir.Sub("s");
  EXPECT_THAT(LmdbBackend::Open(o), StatusIs(StatusCode::kFailedPrecondition));
  b.reset();
  EXPECT_TRUE(LmdbBackend::Open(o).ok());
}

TEST(LmdbBackendTest, ConcurrentWritersShareBatches) {
  TempDir dir;
  auto b = OpenOrDie(dir.Sub("s"));
  constexpr int kWriters = 16, kEach = 20;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kEach; ++i) {
        Txn t;
        t.ops.push_back(Op::Put("/g/" + std::to_string(w) + "/" + std::to_string(i), "v"));
        auto r = b->Commit(std::move(t));
        ASSERT_TRUE(r.ok() && r->succeeded);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(b->CurrentRevision(), kWriters * kEach);
  // Group commit: fewer fsyncs than transactions (each writer waits for its batch, so
  // concurrent writers pile up behind the one in flight).
  EXPECT_LT(b->batches_committed(), static_cast<uint64_t>(kWriters * kEach));
}

TEST(LmdbBackendTest, MapFullFailsCleanlyAndOthersProceed) {
  TempDir dir;
  auto b = OpenOrDie(dir.Sub("s"), 1 << 20);  // 1 MiB map
  std::string big(64 << 10, 'x');
  int stored = 0;
  Status last;
  for (int i = 0; i < 64; ++i) {
    Txn t;
    t.ops.push_back(Op::Put("/big/" + std::to_string(i), big));
    auto r = b->Commit(std::move(t));
    if (!r.ok()) {
      last = r.error();
      break;
    }
    ++stored;
  }
  EXPECT_THAT(last, StatusIs(StatusCode::kResourceExhausted));
  EXPECT_GT(stored, 0);
  // Nothing half-written: every acknowledged key is intact, the failed one is absent.
  for (int i = 0; i < stored; ++i) EXPECT_EQ((*b->Get("/big/" + std::to_string(i)))->value, big);
  EXPECT_FALSE(b->Get("/big/" + std::to_string(stored))->has_value());
  EXPECT_EQ(b->CurrentRevision(), stored);
  SIGIL_EXPECT_OK(b->Health());
  // Deletes still work and free space for new writes.
  Txn d;
  d.ops.push_back(Op::Delete("/big/0"));
  d.ops.push_back(Op::Delete("/big/1"));
  ASSERT_TRUE(b->Commit(std::move(d)).ok());
  Txn small;
  small.ops.push_back(Op::Put("/small", "ok"));
  EXPECT_TRUE(b->Commit(std::move(small)).ok());
}

TEST(LmdbBackendTest, AsyncCommitAcknowledgesAfterDurableCommit) {
  TempDir dir;
  auto b = OpenOrDie(dir.Sub("s"));
  std::promise<Result<TxnResult>> p;
  Txn t;
  t.ops.push_back(Op::Put("/a", "1"));
  b->CommitAsync(std::move(t), [&](Result<TxnResult> r) {
    // By the time of the callback the batch's commit has returned, so the write is visible.
    p.set_value(std::move(r));
  });
  auto r = p.get_future().get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*b->Get("/a"))->value, "1");
}


Txn PutTxn(const std::string& key, const std::string& value) {
  Txn t;
  t.ops.push_back(Op::Put(key, value));
  return t;
}

// The fail-stop policy (lmdb_backend.h): after a commit fails for any reason but a full disk,
// the failing commit and every later one fail with kUnavailable, Health() says so, reads go
// on, and a reopened store holds exactly the acknowledged writes and takes writes again.
TEST(LmdbBackendTest, FailedCommitStopsWritesUntilReopenAndLosesNothingAcknowledged) {
  TempDir dir;
  std::atomic<int> inject{0};
  LmdbOptions o;
  o.dir = dir.Sub("s");
  o.map_size = 64 << 20;
  o.commit_fault_for_test = [&] { return inject.load(); };
  auto opened = LmdbBackend::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.error();
  std::unique_ptr<LmdbBackend> b = std::move(opened).value();
  constexpr int kAcknowledged = 5;
  for (int i = 0; i < kAcknowledged; ++i) {
    auto r = b->Commit(PutTxn("/k/" + std::to_string(i), "v" + std::to_string(i)));
    ASSERT_TRUE(r.ok() && r->succeeded) << r.error();
  }
  inject = EIO;  // fsync failed
  EXPECT_THAT(b->Commit(PutTxn("/k/failed", "x")), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(b->Health(), StatusIs(StatusCode::kUnavailable));
  inject = 0;  // the device works again; the store must not believe it
  EXPECT_THAT(b->Commit(PutTxn("/k/later", "x")), StatusIs(StatusCode::kUnavailable));
  std::promise<Result<TxnResult>> async;
  b->CommitAsync(PutTxn("/k/async", "x"), [&](Result<TxnResult> r) { async.set_value(std::move(r)); });
  EXPECT_THAT(async.get_future().get(), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(b->Health(), StatusIs(StatusCode::kUnavailable));
  // Reads still work and see only acknowledged writes.
  EXPECT_EQ((*b->Get("/k/0"))->value, "v0");
  EXPECT_FALSE(b->Get("/k/failed")->has_value());
  EXPECT_EQ(b->CurrentRevision(), kAcknowledged);

  b.reset();
  o.commit_fault_for_test = nullptr;
  opened = LmdbBackend::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.error();
  b = std::move(opened).value();
  SIGIL_EXPECT_OK(b->Health());
  EXPECT_EQ(b->CurrentRevision(), kAcknowledged);
  auto all = b->Range({"/k/", "", 0, false});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->kvs.size(), static_cast<size_t>(kAcknowledged));
  for (int i = 0; i < kAcknowledged; ++i) {
    EXPECT_EQ(all->kvs[i].key, "/k/" + std::to_string(i));
    EXPECT_EQ(all->kvs[i].value, "v" + std::to_string(i));
    EXPECT_EQ(all->kvs[i].mod_revision, i + 1);
  }
  auto r = b->Commit(PutTxn("/k/after-reopen", "x"));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->revision, kAcknowledged + 1);
}

// Transactions that queued while the failing batch was being committed fail with it: none of
// them can be made durable either.
TEST(LmdbBackendTest, TransactionsQueuedBehindAFailedCommitFailToo) {
  TempDir dir;
  std::promise<void> committing;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> fail{false};
  LmdbOptions o;
  o.dir = dir.Sub("s");
  o.map_size = 64 << 20;
  o.commit_fault_for_test = [&] {
    if (!fail.load()) return 0;
    committing.set_value();
    released.wait();
    return EIO;
  };
  auto b = std::move(LmdbBackend::Open(o)).value();
  fail = true;
  std::promise<Result<TxnResult>> first;
  b->CommitAsync(PutTxn("/a", "1"), [&](Result<TxnResult> r) { first.set_value(std::move(r)); });
  committing.get_future().wait();  // the writer is inside the first batch's commit
  fail = false;
  std::vector<std::promise<Result<TxnResult>>> queued(3);
  for (size_t i = 0; i < queued.size(); ++i) {
    b->CommitAsync(PutTxn("/q/" + std::to_string(i), "1"), [&queued, i](Result<TxnResult> r) { queued[i].set_value(std::move(r)); });
  }
  release.set_value();
  EXPECT_THAT(first.get_future().get(), StatusIs(StatusCode::kUnavailable));
  for (auto& q : queued) EXPECT_THAT(q.get_future().get(), StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(b->CurrentRevision(), 0);
  EXPECT_EQ(b->Range({"/", "", 0, false})->kvs.size(), 0u);
}

// A full disk is the exception: LMDB aborts before the meta page, the store is unchanged, and
// writes succeed again once space is freed.
TEST(LmdbBackendTest, FullDiskAtCommitIsRecoverable) {
  TempDir dir;
  std::atomic<int> inject{0};
  LmdbOptions o;
  o.dir = dir.Sub("s");
  o.map_size = 64 << 20;
  o.commit_fault_for_test = [&] { return inject.load(); };
  auto b = std::move(LmdbBackend::Open(o)).value();
  ASSERT_TRUE(b->Commit(PutTxn("/a", "1")).ok());
  inject = ENOSPC;
  EXPECT_THAT(b->Commit(PutTxn("/b", "1")), StatusIs(StatusCode::kResourceExhausted));
  SIGIL_EXPECT_OK(b->Health());
  inject = 0;
  auto r = b->Commit(PutTxn("/c", "1"));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->revision, 2);
  EXPECT_FALSE(b->Get("/b")->has_value());
}


TEST(LmdbBackendTest, WatchHistoryIsBoundedInBytes) {
  TempDir dir;
  LmdbOptions o;
  o.dir = dir.Sub("s");
  o.map_size = 64 << 20;
  o.watch_history_bytes = 1 << 20;
  auto b = std::move(LmdbBackend::Open(o)).value();
  const std::string big(200 << 10, 'w');
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(b->Commit(PutTxn("/big/" + std::to_string(i % 2), big)).ok());
  EXPECT_LE(b->watch_history_bytes(), size_t{1} << 20);
  EXPECT_THAT(b->Watch("/big/", 0, [](const std::vector<Event>&) {}), StatusIs(StatusCode::kOutOfRange));
  EXPECT_TRUE(b->Watch("/big/", 19, [](const std::vector<Event>&) {}).ok());
}

}  // namespace
}  // namespace sigil::storage
