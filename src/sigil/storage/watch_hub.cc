#include "sigil/storage/watch_hub.h"

namespace sigil::storage {

class WatchHub::Handle final : public WatchHandle {
 public:
  Handle(std::shared_ptr<Watchers> watchers, std::list<Watcher>::iterator it)
      : watchers_(std::move(watchers)), it_(it) {}

  ~Handle() override {
    std::list<Watcher> gone;
    {
      MutexLock l(&watchers_->mu);
      // Once the hub is gone its destructor owns (and destroys) every watcher.
      if (watchers_->closed) return;
      gone.splice(gone.end(), watchers_->list, it_);
    }
    // `gone` is destroyed here, outside the lock: the callback may own other handles.
  }

 private:
  std::shared_ptr<Watchers> watchers_;
  std::list<Watcher>::iterator it_;
};

WatchHub::WatchHub(size_t capacity, size_t max_bytes, int64_t opened_revision)
    : capacity_(capacity),
      max_bytes_(max_bytes),
      watchers_(std::make_shared<Watchers>()),
      compacted_revision_(opened_revision) {}

WatchHub::~WatchHub() {
  std::list<Watcher> orphans;
  {
    MutexLock l(&watchers_->mu);
    watchers_->closed = true;
    orphans.swap(watchers_->list);
  }
  // Destroyed outside the lock. A callback that owns its own handle (a caller that never ended
  // its watch) destroys that handle here, which finds the hub closed and leaves `orphans` alone.
}

void WatchHub::Publish(std::vector<Event> events) {
  if (events.empty()) return;
  MutexLock l(&watchers_->mu);
  for (const Watcher& w : watchers_->list) {
    std::vector<Event> matching;
    for (const Event& e : events) {
      if (e.kv.mod_revision > w.after_revision && e.kv.key.starts_with(w.prefix)) {
        matching.push_back(e);
      }
    }
    if (!matching.empty()) w.callback(matching);
  }
  for (Event& e : events) {
    history_bytes_ += EventBytes(e);
    history_.push_back(std::move(e));
  }
  while (!history_.empty() && (history_.size() > capacity_ || history_bytes_ > max_bytes_)) {
    // Oldest first, and whole revisions, so a watch never starts in the middle of a commit.
    int64_t rev = history_.front().kv.mod_revision;
    while (!history_.empty() && history_.front().kv.mod_revision == rev) {
      history_bytes_ -= EventBytes(history_.front());
      history_.pop_front();
    }
    compacted_revision_ = rev;
  }
}

Result<std::unique_ptr<WatchHandle>> WatchHub::Subscribe(std::string prefix, int64_t after_revision,
                                                         WatchCallback callback) {
  MutexLock l(&watchers_->mu);
  if (after_revision < compacted_revision_) {
    return OutOfRangeError("too old resource version: " + std::to_string(after_revision) + " (" +
                           std::to_string(compacted_revision_) + ")");
  }
  std::vector<Event> backlog;
  for (const Event& e : history_) {
    if (e.kv.mod_revision > after_revision && e.kv.key.starts_with(prefix)) backlog.push_back(e);
  }
  if (!backlog.empty()) callback(backlog);
  watchers_->list.push_back(Watcher{std::move(prefix), after_revision, std::move(callback)});
  return std::unique_ptr<WatchHandle>(new Handle(watchers_, std::prev(watchers_->list.end())));
}

int64_t WatchHub::CompactedRevision() {
  MutexLock l(&watchers_->mu);
  return compacted_revision_;
}

size_t WatchHub::history_events() {
  MutexLock l(&watchers_->mu);
  return history_.size();
}

size_t WatchHub::history_bytes() {
  MutexLock l(&watchers_->mu);
  return history_bytes_;
}

size_t WatchHub::EventBytes(const Event& e) {
  size_t n = sizeof(Event) + e.kv.key.size() + e.kv.value.size();
  if (e.prev) n += sizeof(KeyValue) + e.prev->key.size() + e.prev->value.size();
  return n;
}

}  // namespace sigil::storage
