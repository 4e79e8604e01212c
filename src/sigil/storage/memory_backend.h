// storage/memory_backend.h: a Backend in process memory, for tests and tools. Nothing is
// durable; it follows every other contract of Backend exactly. Thread-safe.
#pragma once

#include <map>

#include "sigil/base/mutex.h"
#include "sigil/storage/backend.h"
#include "sigil/storage/watch_hub.h"

namespace sigil::storage {

class MemoryBackend final : public Backend {
 public:
  // Watch history bounds as WatchHub's.
  explicit MemoryBackend(size_t watch_history = kDefaultWatchHistoryEvents,
                         size_t watch_history_bytes = kDefaultWatchHistoryBytes);

  Result<std::optional<KeyValue>> Get(std::string_view key) override;
  Result<RangeResult> Range(const RangeRequest& request) override;
  Result<TxnResult> Commit(Txn txn) override;
  void CommitAsync(Txn txn, CommitCallback done) override;
  Result<std::unique_ptr<WatchHandle>> Watch(std::string prefix, int64_t after_revision,
                                             WatchCallback callback) override;
  int64_t CurrentRevision() override;
  Status Health() override { return OkStatus(); }

  // Every stored key and value concatenated: what an attacker with the memory image would see.
  std::string RawBytes();
  // The watch history's size, for tests of its bounds.
  size_t watch_history_bytes() { return hub_.history_bytes(); }

 private:
  Mutex mu_;
  // Serialises Commit + Publish so events reach the hub in revision order.
  Mutex commit_mu_;
  std::map<std::string, KeyValue, std::less<>> data_ SIGIL_GUARDED_BY(mu_);
  int64_t revision_ SIGIL_GUARDED_BY(mu_) = 0;
  WatchHub hub_;
};

}  // namespace sigil::storage
