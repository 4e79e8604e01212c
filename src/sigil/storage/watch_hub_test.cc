// WatchHub on its own: handle lifetimes (the hub may be destroyed with watchers still
// registered; a handle may outlive the hub) and the bounds on its history.
#include "sigil/storage/watch_hub.h"

#include <gtest/gtest.h>

#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::storage {
namespace {

using ::sigil::testing::StatusIs;

Event Put(const std::string& key, int64_t revision, std::string value = "v") {
  return Event{Event::Type::kPut, KeyValue{key, std::move(value), revision, revision}, std::nullopt};
}

// Regression (test_watches_end_cleanly aborted with "double free or corruption" at exit): a
// watch whose handle is owned, through a cycle, by its own callback (a caller's watch state
// that holds the handle and is captured by the callback, left registered because the caller
// never ended it) was destroyed with the hub, and its handle then erased it from the list
// being destroyed.
TEST(WatchHubTest, DestroyedWithAWatcherWhoseCallbackOwnsItsHandle) {
  auto hub = std::make_unique<WatchHub>(100, kDefaultWatchHistoryBytes, 0);
  auto holder = std::make_shared<std::unique_ptr<WatchHandle>>();
  auto r = hub->Subscribe("/", 0, [holder](const std::vector<Event>&) {});
  ASSERT_TRUE(r.ok());
  *holder = std::move(r).value();
  holder.reset();  // only the callback holds the handle now
  hub.reset();
}

TEST(WatchHubTest, AHandleMayOutliveTheHub) {
  auto hub = std::make_unique<WatchHub>(100, kDefaultWatchHistoryBytes, 0);
  auto r = hub->Subscribe("/", 0, [](const std::vector<Event>&) {});
  ASSERT_TRUE(r.ok());
  std::unique_ptr<WatchHandle> handle = std::move(r).value();
  hub.reset();
  handle.reset();
}

// Ending a watch destroys its callback outside the hub's lock, so whatever the callback owned
// may end other watches of the same hub.
TEST(WatchHubTest, EndingAWatchMayEndOthersItsCallbackOwned) {
  WatchHub hub(100, kDefaultWatchHistoryBytes, 0);
  auto inner = hub.Subscribe("/", 0, [](const std::vector<Event>&) {});
  ASSERT_TRUE(inner.ok());
  auto owned = std::make_shared<std::unique_ptr<WatchHandle>>(std::move(inner).value());
  auto outer = hub.Subscribe("/", 0, [owned](const std::vector<Event>&) {});
  ASSERT_TRUE(outer.ok());
  owned.reset();
  std::move(outer).value().reset();  // destroys the callback, and with it the inner handle
  int delivered = 0;
  auto check = hub.Subscribe("/", 0, [&](const std::vector<Event>& evs) { delivered += static_cast<int>(evs.size()); });
  ASSERT_TRUE(check.ok());
  hub.Publish({Put("/a", 1)});
  EXPECT_EQ(delivered, 1);
}


// Each event holds a value and the one before it: with only a count bound, 10000 writes of a
// large Secret would pin gigabytes. The byte bound drops the oldest revisions first.
TEST(WatchHubTest, HistoryIsBoundedInBytes) {
  constexpr size_t kLimit = 4 << 20;
  const std::string big(256 << 10, 'x');  // each update event: 512 KiB of value and previous value
  WatchHub hub(kDefaultWatchHistoryEvents, kLimit, 0);
  for (int64_t rev = 1; rev <= 40; ++rev) {
    Event e = Put("/big", rev, big);
    if (rev > 1) e.prev = KeyValue{"/big", big, 1, rev - 1};
    hub.Publish({std::move(e)});
    ASSERT_LE(hub.history_bytes(), kLimit) << "after revision " << rev;
  }
  // Seven 512 KiB events fit in 4 MiB (an eighth would exceed it by its overhead).
  EXPECT_EQ(hub.history_events(), 7u);
  Event kept = Put("/big", 40, big);
  kept.prev = KeyValue{"/big", big, 1, 39};
  EXPECT_EQ(hub.history_bytes(), 7 * WatchHub::EventBytes(kept));
  EXPECT_GE(hub.history_bytes(), 7 * 2 * big.size());
  EXPECT_EQ(hub.CompactedRevision(), 33);
  auto noop = [](const std::vector<Event>&) {};
  EXPECT_THAT(hub.Subscribe("/", 1, noop), StatusIs(StatusCode::kOutOfRange));
  EXPECT_THAT(hub.Subscribe("/", 32, noop), StatusIs(StatusCode::kOutOfRange));
  std::vector<int64_t> backlog;
  auto ok = hub.Subscribe("/", 33, [&](const std::vector<Event>& evs) {
    for (const Event& e : evs) backlog.push_back(e.kv.mod_revision);
  });
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(backlog, (std::vector<int64_t>{34, 35, 36, 37, 38, 39, 40}));
}

TEST(WatchHubTest, ACommitLargerThanTheByteBoundReachesLiveWatchersThenGoes) {
  WatchHub hub(kDefaultWatchHistoryEvents, 1 << 20, 0);
  hub.Publish({Put("/small", 1)});
  size_t delivered = 0;
  auto w = hub.Subscribe("/", 1, [&](const std::vector<Event>& evs) { delivered += evs.size(); });
  ASSERT_TRUE(w.ok());
  hub.Publish({Put("/huge/a", 2, std::string(1 << 20, 'h')), Put("/huge/b", 2, "b")});
  EXPECT_EQ(delivered, 2u);
  EXPECT_EQ(hub.history_events(), 0u);
  EXPECT_EQ(hub.history_bytes(), 0u);
  EXPECT_EQ(hub.CompactedRevision(), 2);
  EXPECT_TRUE(hub.Subscribe("/", 2, [](const std::vector<Event>&) {}).ok());
}

// Through a backend: large Secret values written by a client, then a watch from the start.
TEST(WatchHubTest, MemoryBackendBoundsHistoryInBytes) {
  constexpr size_t kLimit = 2 << 20;
  MemoryBackend backend(kDefaultWatchHistoryEvents, kLimit);
  const std::string big(300 << 10, 's');
  for (int i = 0; i < 30; ++i) {
    Txn t;
    t.ops.push_back(Op::Put("/registry/secrets/default/s" + std::to_string(i % 3), big));
    ASSERT_TRUE(backend.Commit(std::move(t)).ok());
  }
  EXPECT_LE(backend.watch_history_bytes(), kLimit);
  EXPECT_GT(backend.watch_history_bytes(), kLimit / 2);
  EXPECT_THAT(backend.Watch("/registry/", 0, [](const std::vector<Event>&) {}), StatusIs(StatusCode::kOutOfRange));
  EXPECT_TRUE(backend.Watch("/registry/", 29, [](const std::vector<Event>&) {}).ok());
}

}  // namespace
}  // namespace sigil::storage
