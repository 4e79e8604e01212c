// storage/watch_hub.h: event history and fan-out shared by the backends.
//
// Keeps the last `capacity` events in memory (not persisted: after a restart, watches can start
// only from the revision the store opened at, as with kube-apiserver's watch cache) and the set
// of live watchers. Publish is called by a backend's single committing thread, in revision order.
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

class WatchHub {
 public:
  // `opened_revision`: the store revision when the backend opened; events up to it are not
  // available.
  WatchHub(size_t capacity, int64_t opened_revision);
  ~WatchHub();

  // Records events of one commit (all with the same revision) and delivers them.
  void Publish(std::vector<Event> events);

  Result<std::unique_ptr<WatchHandle>> Subscribe(std::string prefix, int64_t after_revision,
                                                 WatchCallback callback);

  // The oldest revision a watch may start after.
  int64_t CompactedRevision();

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
  const std::shared_ptr<Watchers> watchers_;  // its lock also guards the history
  std::deque<Event> history_ SIGIL_GUARDED_BY(watchers_->mu);
  int64_t compacted_revision_ SIGIL_GUARDED_BY(watchers_->mu);
};

}  // namespace sigil::storage
