#include "sigil/storage/watch_hub.h"

namespace sigil::storage {

class WatchHub::Handle final : public WatchHandle {
 public:
  Handle(WatchHub* hub, std::list<Watcher>::iterator it) : hub_(hub), it_(it) {}
  ~Handle() override { hub_->Unsubscribe(it_); }

 private:
  WatchHub* hub_;
  std::list<Watcher>::iterator it_;
};

WatchHub::WatchHub(size_t capacity, int64_t opened_revision)
    : capacity_(capacity), compacted_revision_(opened_revision) {}

WatchHub::~WatchHub() = default;

void WatchHub::Publish(std::vector<Event> events) {
  if (events.empty()) return;
  MutexLock l(&mu_);
  for (const Watcher& w : watchers_) {
    std::vector<Event> matching;
    for (const Event& e : events) {
      if (e.kv.mod_revision > w.after_revision && e.kv.key.starts_with(w.prefix)) {
        matching.push_back(e);
      }
    }
    if (!matching.empty()) w.callback(matching);
  }
  for (Event& e : events) history_.push_back(std::move(e));
  while (history_.size() > capacity_) {
    // Drop whole revisions so a watch never starts in the middle of a commit.
    int64_t rev = history_.front().kv.mod_revision;
    while (!history_.empty() && history_.front().kv.mod_revision == rev) history_.pop_front();
    compacted_revision_ = rev;
  }
}

Result<std::unique_ptr<WatchHandle>> WatchHub::Subscribe(std::string prefix, int64_t after_revision,
                                                         WatchCallback callback) {
  MutexLock l(&mu_);
  if (after_revision < compacted_revision_) {
    return OutOfRangeError("too old resource version: " + std::to_string(after_revision) + " (" +
                           std::to_string(compacted_revision_) + ")");
  }
  std::vector<Event> backlog;
  for (const Event& e : history_) {
    if (e.kv.mod_revision > after_revision && e.kv.key.starts_with(prefix)) backlog.push_back(e);
  }
  if (!backlog.empty()) callback(backlog);
  watchers_.push_back(Watcher{std::move(prefix), after_revision, std::move(callback)});
  return std::unique_ptr<WatchHandle>(new Handle(this, std::prev(watchers_.end())));
}

int64_t WatchHub::CompactedRevision() {
  MutexLock l(&mu_);
  return compacted_revision_;
}

void WatchHub::Unsubscribe(std::list<Watcher>::iterator it) {
  MutexLock l(&mu_);
  watchers_.erase(it);
}

}  // namespace sigil::storage
