// storage/watch_hub.h: event history and fan-out shared by the backends.
//
// Keeps the newest events in memory (not persisted: after a restart, watches can start only
// from the revision the store opened at, as with kube-apiserver's watch cache) and the set of
// live watchers. Publish is called by a backend's single committing thread, in revision order.
//
// History is bounded twice: at most `capacity` events and at most `max_bytes` bytes (as counted
// by EventBytes: keys, values and previous values, plus a fixed overhead per event), because
// each event holds a value and the value before it, and whoever may write can make values
// large: 10000 events of 1 MiB Secrets would pin 20 GiB. The oldest whole revisions are dropped
// first; a watch that needs dropped history gets kOutOfRange (Kubernetes: 410 Gone) and
// re-lists. A commit larger than `max_bytes` still reaches the live watchers, and is then
// dropped at once.
//
// Lifetimes: a WatchHandle may outlive the hub (destroying it then does nothing), and the hub
// may be destroyed while watches are registered: their callbacks are destroyed, never called
// again, and may own handles of their own. Callbacks are destroyed outside the hub's lock.
// Thread safety: all methods are thread-safe; callbacks run with the hub lock held.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <memory>

#include "sigil/base/mutex.h"
#include "sigil/storage/backend.h"

namespace sigil::storage {

// The defaults the backends use (docs/configuration.md, storage.watch_history*).
inline constexpr size_t kDefaultWatchHistoryEvents = 10000;
inline constexpr size_t kDefaultWatchHistoryBytes = size_t{64} << 20;

class WatchHub {
 public:
  // `opened_revision`: the store revision when the backend opened; events up to it are not
  // available.
  WatchHub(size_t capacity, size_t max_bytes, int64_t opened_revision);
  ~WatchHub();

  // Records events of one commit (all with the same revision) and delivers them.
  void Publish(std::vector<Event> events);

  Result<std::unique_ptr<WatchHandle>> Subscribe(std::string prefix, int64_t after_revision,
                                                 WatchCallback callback);

  // The oldest revision a watch may start after.
  int64_t CompactedRevision();
  // The events kept, and the bytes they count for (EventBytes).
  size_t history_events();
  size_t history_bytes();

  // What one kept event counts for: its key and value, the previous key and value, and
  // sizeof(Event) + sizeof(KeyValue) for the rest.
  static size_t EventBytes(const Event& event);

 private:
  struct Watcher {
    std::string prefix;
    int64_t after_revision;  // events at or before this were (or will be) sent as backlog
    WatchCallback callback;
  };
  // What the handles share with the hub, so that a handle can outlive it.
  struct Watchers {
    Mutex mu;
    std::list<Watcher> list SIGIL_GUARDED_BY(mu);
    bool closed SIGIL_GUARDED_BY(mu) = false;  // the hub is gone
  };
  class Handle;

  const size_t capacity_;
  const size_t max_bytes_;
  const std::shared_ptr<Watchers> watchers_;  // its lock also guards the history
  std::deque<Event> history_ SIGIL_GUARDED_BY(watchers_->mu);
  size_t history_bytes_ SIGIL_GUARDED_BY(watchers_->mu) = 0;
  int64_t compacted_revision_ SIGIL_GUARDED_BY(watchers_->mu);
};

}  // namespace sigil::storage
