#include "sigil/storage/memory_backend.h"

namespace sigil::storage {

MemoryBackend::MemoryBackend(size_t watch_history, size_t watch_history_bytes)
    : hub_(watch_history, watch_history_bytes, 0) {}

Result<std::optional<KeyValue>> MemoryBackend::Get(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeySize) return InvalidArgumentError("storage key length out of range");
  MutexLock l(&mu_);
  auto it = data_.find(key);
  if (it == data_.end()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(it->second);
}

Result<RangeResult> MemoryBackend::Range(const RangeRequest& req) {
  MutexLock l(&mu_);
  RangeResult out;
  out.revision = revision_;
  auto it = req.start_after.empty() || req.start_after < req.prefix
                ? data_.lower_bound(req.prefix)
                : data_.upper_bound(req.start_after);
  for (; it != data_.end() && it->first.starts_with(req.prefix); ++it) {
    if (req.limit > 0 && out.kvs.size() == req.limit) {
      out.more = true;
      break;
    }
    KeyValue kv = it->second;
    if (req.keys_only) kv.value.clear();
    out.kvs.push_back(std::move(kv));
  }
  return out;
}

Result<TxnResult> MemoryBackend::Commit(Txn txn) {
  for (const Op& op : txn.ops) {
    if (op.key.empty() || op.key.size() > kMaxKeySize) return InvalidArgumentError("storage key length out of range");
  }
  MutexLock cl(&commit_mu_);
  std::vector<Event> events;
  TxnResult result;
  {
    MutexLock l(&mu_);
    for (const Compare& c : txn.compares) {
      auto it = data_.find(c.key);
      int64_t have = it == data_.end() ? 0 : it->second.mod_revision;
      if (have != c.mod_revision) {
        result.revision = revision_;
        return result;
      }
    }
    int64_t rev = revision_ + 1;
    for (Op& op : txn.ops) {
      auto it = data_.find(op.key);
      std::optional<KeyValue> prev;
      if (it != data_.end()) prev = it->second;
      if (op.kind == Op::Kind::kPut) {
        KeyValue kv{op.key, std::move(op.value), prev ? prev->create_revision : rev, rev};
        data_[op.key] = kv;
        events.push_back(Event{Event::Type::kPut, std::move(kv), std::move(prev)});
      } else if (prev) {
        data_.erase(it);
        events.push_back(Event{Event::Type::kDelete, KeyValue{op.key, {}, 0, rev}, std::move(prev)});
      }
    }
    if (!events.empty()) revision_ = rev;
    result.succeeded = true;
    result.revision = revision_;
  }
  hub_.Publish(std::move(events));
  return result;
}

void MemoryBackend::CommitAsync(Txn txn, CommitCallback done) { done(Commit(std::move(txn))); }

Result<std::unique_ptr<WatchHandle>> MemoryBackend::Watch(std::string prefix, int64_t after_revision,
                                                          WatchCallback callback) {
  return hub_.Subscribe(std::move(prefix), after_revision, std::move(callback));
}

int64_t MemoryBackend::CurrentRevision() {
  MutexLock l(&mu_);
  return revision_;
}

std::string MemoryBackend::RawBytes() {
  MutexLock l(&mu_);
  std::string out;
  for (const auto& [k, kv] : data_) {
    out += k;
    out += kv.value;
  }
  return out;
}

}  // namespace sigil::storage
