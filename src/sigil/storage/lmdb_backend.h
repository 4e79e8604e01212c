// storage/lmdb_backend.h: the embedded default Backend, on LMDB.
//
// Reads run in their own short LMDB read transactions and never wait for writers. All writes go
// through one writer thread that drains the queue of pending transactions into one LMDB write
// transaction (each logical transaction in a nested child, so one failing transaction does not
// affect the others), commits it with a single fsync, and only then acknowledges every
// transaction in the batch (group commit). The environment is opened with LMDB's fully durable
// defaults: never MDB_NOSYNC, MDB_NOMETASYNC, MDB_WRITEMAP, MDB_MAPASYNC or MDB_NOMEMINIT.
//
// Failure policy: a full map (MDB_MAP_FULL) or a full disk (ENOSPC, or a failed commit while
// the filesystem has no space left: LMDB reports short writes as EIO) fails the transactions
// concerned with kResourceExhausted and the backend carries on; writes succeed again once
// space is freed. Any other commit failure (EIO from fsync,
// MDB_PANIC) makes the backend refuse every later write with kUnavailable, and Health() report
// kUnavailable (the server's /readyz), until it is reopened (for the server: restarted): after
// a failed fsync the kernel may have dropped dirty pages, and retrying could acknowledge data
// that is not on disk (PostgreSQL's "fsyncgate"). Transactions queued behind the failed batch
// fail too; reads go on. Reopening reads the last durable state, which holds every write that
// was acknowledged. docs/threat-model.md states the same policy for the audit trail.
//
// On-disk layout (docs/formats.md): data.mdb and lock.mdb in the data directory (0700, files
// 0600) plus sigil.lock, an flock(2) that keeps a second process from opening the store.
// Thread safety: every method is thread-safe.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <deque>
#include <functional>
#include <thread>

#include "sigil/base/mutex.h"
#include "sigil/storage/backend.h"
#include "sigil/storage/watch_hub.h"

namespace sigil::storage {

struct LmdbOptions {
  std::string dir;
  size_t map_size = size_t{1} << 30;  // the most the store may grow to (MDB_MAP_FULL beyond)
  size_t max_batch = 1024;            // transactions per group commit
  // Watch history kept for watches that start in the past: at most this many events and
  // bytes (watch_hub.h).
  size_t watch_history = kDefaultWatchHistoryEvents;
  size_t watch_history_bytes = kDefaultWatchHistoryBytes;
  // Tests only (null otherwise): called on the writer thread just before each group commit.
  // A non-zero return (an errno such as EIO or ENOSPC, or an MDB_* code) makes that commit fail
  // as if mdb_txn_commit had returned it: the batch's write transaction is aborted, nothing of
  // it reaches the disk, and the failure policy above applies. It may block (to let more
  // transactions queue behind the failing batch).
  std::function<int()> commit_fault_for_test;
};

class LmdbBackend final : public Backend {
 public:
  // Opens (creating if needed) the store in `options.dir`. Errors: kFailedPrecondition if
  // another process holds the store, kPermissionDenied, kDataLoss if LMDB reports corruption.
  static Result<std::unique_ptr<LmdbBackend>> Open(const LmdbOptions& options);
  ~LmdbBackend() override;

  Result<std::optional<KeyValue>> Get(std::string_view key) override;
  Result<RangeResult> Range(const RangeRequest& request) override;
  Result<TxnResult> Commit(Txn txn) override;
  void CommitAsync(Txn txn, CommitCallback done) override;
  Result<std::unique_ptr<WatchHandle>> Watch(std::string prefix, int64_t after_revision,
                                             WatchCallback callback) override;
  int64_t CurrentRevision() override { return revision_.load(); }
  Status Health() override;

  // The flags the environment was opened with (tests assert that no unsafe flag is set).
  unsigned int EnvFlags() const;
  // Group-commit batches committed so far (one fsync each).
  uint64_t batches_committed() const { return batches_.load(); }
  // The watch history's size, for tests of its bounds.
  size_t watch_history_bytes() { return hub_->history_bytes(); }

 private:
  struct Pending {
    Txn txn;
    CommitCallback done;
  };
  LmdbBackend() = default;
  void WriterLoop();
  void CommitBatch(std::vector<Pending>& batch);

  MDB_env* env_ = nullptr;
  MDB_dbi kv_dbi_ = 0;
  MDB_dbi meta_dbi_ = 0;
  int lock_fd_ = -1;
  std::string dir_;
  size_t max_key_size_ = 0;
  size_t max_batch_ = 0;
  std::function<int()> commit_fault_;
  std::atomic<int64_t> revision_{0};
  std::atomic<uint64_t> batches_{0};
  std::unique_ptr<WatchHub> hub_;

  Mutex mu_;
  CondVar cv_;
  std::deque<Pending> queue_ SIGIL_GUARDED_BY(mu_);
  bool stopping_ SIGIL_GUARDED_BY(mu_) = false;
  Status failed_ SIGIL_GUARDED_BY(mu_);
  std::thread writer_;
};

}  // namespace sigil::storage
