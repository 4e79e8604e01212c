// storage/fault_injection_backend.h: a Backend wrapper that injects failures, for tests.
//
// In the spirit of LevelDB's db/fault_injection_test.cc: a real backend (memory or LMDB) does
// the work, and this wrapper, when told to, fails commits or reads with a chosen Status, delays
// reads, or reports the backend unhealthy. Tests of the layers above storage (barrier, store,
// registry, audit) use it to drive their error paths against real storage semantics instead of
// a mock. It is its own library target (sigil_storage_fault_injection) that only tests link.
//
// Example:
//   MemoryBackend memory;
//   FaultInjectionBackend storage(&memory);
//   storage.FailCommits(CommitFault(UnavailableError("fsync failed"), 2).Under("/registry/"));
//
// Faults are armed and cleared at any time, from any thread; a fault applies to calls that
// start after it is armed. With no fault armed every call is forwarded unchanged (the backend
// conformance suite runs against this wrapper too).
// Thread safety: every method is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "sigil/base/mutex.h"
#include "sigil/storage/backend.h"

namespace sigil::storage {

// Fails the next `count` commits that match `key_prefix`, e.g.
//   CommitFault(UnavailableError("fsync failed"), 2).Under("/registry/secrets/")
struct CommitFault {
  static constexpr int kForever = -1;
  enum class When {
    // The commit fails without reaching the wrapped backend: nothing is applied (what a
    // backend promises for every failed commit).
    kBeforeApply,
    // The commit is applied by the wrapped backend and then reported as failed: an ambiguous
    // outcome, as when the acknowledgement is lost. Callers that retry must cope with it.
    kAfterApply,
  };
  explicit CommitFault(Status s, int n = 1) : status(std::move(s)), count(n) {}
  CommitFault Under(std::string prefix) && {
    key_prefix = std::move(prefix);
    return std::move(*this);
  }
  CommitFault AfterApply() && {
    when = When::kAfterApply;
    return std::move(*this);
  }

  Status status;           // what failing commits return (an OK status is replaced by kUnavailable)
  int count = 1;           // matching commits that fail; kForever: until cleared
  std::string key_prefix;  // a commit matches if any op or compare key starts with it; "" = all
  When when = When::kBeforeApply;
};

// Fails the next `count` reads (Get, Range) that match `key_prefix`, e.g.
//   ReadFault(DataLossError("bit rot"), ReadFault::kForever).Under("/sigil/core/")
struct ReadFault {
  static constexpr int kForever = -1;
  explicit ReadFault(Status s, int n = 1) : status(std::move(s)), count(n) {}
  ReadFault Under(std::string prefix) && {
    key_prefix = std::move(prefix);
    return std::move(*this);
  }

  Status status;           // what failing reads return (an OK status is replaced by kUnavailable)
  int count = 1;           // matching reads that fail; kForever: until cleared
  std::string key_prefix;  // Get: the key starts with it; Range: the range can return such a key
};

class FaultInjectionBackend final : public Backend {
 public:
  // Wraps `target`, which must outlive this object.
  explicit FaultInjectionBackend(Backend* target);
  // Wraps and owns `target`.
  explicit FaultInjectionBackend(std::unique_ptr<Backend> target);
  ~FaultInjectionBackend() override;

  // Arms a commit fault, replacing any armed one. Applies to Commit and CommitAsync; an
  // injected kBeforeApply failure of CommitAsync runs `done` on the caller's thread before
  // CommitAsync returns.
  void FailCommits(CommitFault fault);
  // Arms a read fault, replacing any armed one.
  void FailReads(ReadFault fault);
  // Every Get and Range first waits `delay` (zero: no delay), then proceeds (or fails, if a
  // read fault matches). ClearFaults wakes reads that are waiting.
  void DelayReads(std::chrono::nanoseconds delay);
  // Health() returns `status` instead of the wrapped backend's while it is not OK.
  void SetHealth(Status status);
  // Disarms every fault and ends every delay in progress.
  void ClearFaults();

  // Calls failed by injection so far.
  uint64_t commits_failed();
  uint64_t reads_failed();
  Backend* target() const { return target_; }

  Result<std::optional<KeyValue>> Get(std::string_view key) override;
  Result<RangeResult> Range(const RangeRequest& request) override;
  Result<TxnResult> Commit(Txn txn) override;
  void CommitAsync(Txn txn, CommitCallback done) override;
  Result<std::unique_ptr<WatchHandle>> Watch(std::string prefix, int64_t after_revision,
                                             WatchCallback callback) override;
  int64_t CurrentRevision() override;
  Status Health() override;

 private:
  // The status to fail this commit with (and when), or nullopt to forward it unchanged.
  std::optional<CommitFault> TakeCommitFault(const Txn& txn);
  // Waits out the read delay, then returns the injected failure for a read of `prefix`
  // (`exact`: a Get of that key) or OK.
  Status BeforeRead(std::string_view prefix, bool exact);

  std::unique_ptr<Backend> owned_;
  Backend* const target_;

  Mutex mu_;
  CondVar cleared_;  // signalled by ClearFaults, to end delays
  uint64_t clear_generation_ SIGIL_GUARDED_BY(mu_) = 0;
  std::optional<CommitFault> commit_fault_ SIGIL_GUARDED_BY(mu_);
  std::optional<ReadFault> read_fault_ SIGIL_GUARDED_BY(mu_);
  std::chrono::nanoseconds read_delay_ SIGIL_GUARDED_BY(mu_){0};
  Status health_ SIGIL_GUARDED_BY(mu_);
  uint64_t commits_failed_ SIGIL_GUARDED_BY(mu_) = 0;
  uint64_t reads_failed_ SIGIL_GUARDED_BY(mu_) = 0;
};

}  // namespace sigil::storage
