#include "sigil/storage/fault_injection_backend.h"

namespace sigil::storage {
namespace {

bool TxnMatches(const Txn& txn, const std::string& prefix) {
  if (prefix.empty()) return true;
  for (const Op& op : txn.ops) {
    if (op.key.starts_with(prefix)) return true;
  }
  for (const Compare& c : txn.compares) {
    if (c.key.starts_with(prefix)) return true;
  }
  return false;
}

// Whether a read of `what` can return a key under `prefix`: a Get of key `what` (exact), or a
// Range over the prefix `what`, which overlaps `prefix` when either starts with the other.
bool ReadMatches(std::string_view what, bool exact, const std::string& prefix) {
  if (what.starts_with(prefix)) return true;
  return !exact && std::string_view(prefix).starts_with(what);
}

}  // namespace

FaultInjectionBackend::FaultInjectionBackend(Backend* target) : target_(target) {}

FaultInjectionBackend::FaultInjectionBackend(std::unique_ptr<Backend> target)
    : owned_(std::move(target)), target_(owned_.get()) {}

FaultInjectionBackend::~FaultInjectionBackend() = default;

void FaultInjectionBackend::FailCommits(CommitFault fault) {
  if (fault.status.ok()) fault.status = UnavailableError("injected commit failure");
  MutexLock l(&mu_);
  commit_fault_ = std::move(fault);
}

void FaultInjectionBackend::FailReads(ReadFault fault) {
  if (fault.status.ok()) fault.status = UnavailableError("injected read failure");
  MutexLock l(&mu_);
  read_fault_ = std::move(fault);
}

void FaultInjectionBackend::DelayReads(std::chrono::nanoseconds delay) {
  MutexLock l(&mu_);
  read_delay_ = delay;
}

void FaultInjectionBackend::SetHealth(Status status) {
  MutexLock l(&mu_);
  health_ = std::move(status);
}

void FaultInjectionBackend::ClearFaults() {
  {
    MutexLock l(&mu_);
    commit_fault_.reset();
    read_fault_.reset();
    read_delay_ = std::chrono::nanoseconds(0);
    health_ = OkStatus();
    ++clear_generation_;
  }
  cleared_.SignalAll();
}

uint64_t FaultInjectionBackend::commits_failed() {
  MutexLock l(&mu_);
  return commits_failed_;
}

uint64_t FaultInjectionBackend::reads_failed() {
  MutexLock l(&mu_);
  return reads_failed_;
}

std::optional<CommitFault> FaultInjectionBackend::TakeCommitFault(const Txn& txn) {
  MutexLock l(&mu_);
  if (!commit_fault_ || !TxnMatches(txn, commit_fault_->key_prefix)) return std::nullopt;
  CommitFault fault = *commit_fault_;
  if (commit_fault_->count != CommitFault::kForever && --commit_fault_->count <= 0) commit_fault_.reset();
  ++commits_failed_;
  return fault;
}

Status FaultInjectionBackend::BeforeRead(std::string_view what, bool exact) {
  MutexLock l(&mu_);
  if (read_delay_.count() > 0) {
    auto until = std::chrono::steady_clock::now() + read_delay_;
    uint64_t generation = clear_generation_;
    while (generation == clear_generation_) {
      auto now = std::chrono::steady_clock::now();
      if (now >= until) break;
      cleared_.WaitFor(&mu_, until - now);
    }
  }
  if (!read_fault_ || !ReadMatches(what, exact, read_fault_->key_prefix)) return OkStatus();
  Status s = read_fault_->status;
  if (read_fault_->count != ReadFault::kForever && --read_fault_->count <= 0) read_fault_.reset();
  ++reads_failed_;
  return s;
}

Result<std::optional<KeyValue>> FaultInjectionBackend::Get(std::string_view key) {
  SIGIL_RETURN_IF_ERROR(BeforeRead(key, true));
  return target_->Get(key);
}

Result<RangeResult> FaultInjectionBackend::Range(const RangeRequest& request) {
  SIGIL_RETURN_IF_ERROR(BeforeRead(request.prefix, false));
  return target_->Range(request);
}

Result<TxnResult> FaultInjectionBackend::Commit(Txn txn) {
  std::optional<CommitFault> fault = TakeCommitFault(txn);
  if (!fault) return target_->Commit(std::move(txn));
  if (fault->when == CommitFault::When::kBeforeApply) return fault->status;
  Result<TxnResult> applied = target_->Commit(std::move(txn));
  if (!applied.ok()) return applied;  // it failed by itself: report the real error
  return fault->status;
}

void FaultInjectionBackend::CommitAsync(Txn txn, CommitCallback done) {
  std::optional<CommitFault> fault = TakeCommitFault(txn);
  if (!fault) return target_->CommitAsync(std::move(txn), std::move(done));
  if (fault->when == CommitFault::When::kBeforeApply) return done(fault->status);
  target_->CommitAsync(std::move(txn), [status = fault->status, done = std::move(done)](Result<TxnResult> r) {
    done(r.ok() ? Result<TxnResult>(status) : std::move(r));
  });
}

Result<std::unique_ptr<WatchHandle>> FaultInjectionBackend::Watch(std::string prefix, int64_t after_revision,
                                                                  WatchCallback callback) {
  return target_->Watch(std::move(prefix), after_revision, std::move(callback));
}

int64_t FaultInjectionBackend::CurrentRevision() { return target_->CurrentRevision(); }

Status FaultInjectionBackend::Health() {
  {
    MutexLock l(&mu_);
    if (!health_.ok()) return health_;
  }
  return target_->Health();
}

}  // namespace sigil::storage
