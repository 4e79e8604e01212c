// LMDB-specific behaviour: durability flags, group commit, full store, exclusive open.
#include "sigil/storage/lmdb_backend.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

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

}  // namespace
}  // namespace sigil::storage
