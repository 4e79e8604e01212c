// WatchHub on its own: handle lifetimes (the hub may be destroyed with watchers still
// registered; a handle may outlive the hub) and the bounds on its history.
#include "sigil/storage/watch_hub.h"

#include <gtest/gtest.h>

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
  auto hub = std::make_unique<WatchHub>(100, 0);
  auto holder = std::make_shared<std::unique_ptr<WatchHandle>>();
  auto r = hub->Subscribe("/", 0, [holder](const std::vector<Event>&) {});
  ASSERT_TRUE(r.ok());
  *holder = std::move(r).value();
  holder.reset();  // only the callback holds the handle now
  hub.reset();
}

TEST(WatchHubTest, AHandleMayOutliveTheHub) {
  auto hub = std::make_unique<WatchHub>(100, 0);
  auto r = hub->Subscribe("/", 0, [](const std::vector<Event>&) {});
  ASSERT_TRUE(r.ok());
  std::unique_ptr<WatchHandle> handle = std::move(r).value();
  hub.reset();
  handle.reset();
}

// Ending a watch destroys its callback outside the hub's lock, so whatever the callback owned
// may end other watches of the same hub.
TEST(WatchHubTest, EndingAWatchMayEndOthersItsCallbackOwned) {
  WatchHub hub(100, 0);
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

}  // namespace
}  // namespace sigil::storage
