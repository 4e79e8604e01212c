#include "sigil/core/inflight.h"

#include <gtest/gtest.h>

#include <vector>

namespace sigil::core {
namespace {

TEST(InflightLimiterTest, PoolsAreSeparateAndSeatsComeBack) {
  InflightLimiter l({4, 2});
  std::vector<InflightLimiter::Seat> reads, writes;
  for (int i = 0; i < 2; ++i) writes.push_back(l.Acquire(true, "user:" + std::to_string(i)));
  for (auto& w : writes) ASSERT_NE(w, nullptr);
  EXPECT_EQ(l.Acquire(true, "user:9"), nullptr);  // the mutating pool is full
  for (int i = 0; i < 4; ++i) reads.push_back(l.Acquire(false, "user:" + std::to_string(i)));
  for (auto& r : reads) ASSERT_NE(r, nullptr);
  EXPECT_EQ(l.Acquire(false, "user:9"), nullptr);
  EXPECT_EQ(l.InFlight(false), 4u);
  // A copy holds the seat too; the last one gives it back.
  InflightLimiter::Seat copy = writes[0];
  writes[0].reset();
  EXPECT_EQ(l.Acquire(true, "user:9"), nullptr);
  copy.reset();
  EXPECT_NE(l.Acquire(true, "user:9"), nullptr);
  reads.clear();
  EXPECT_EQ(l.InFlight(false), 0u);
}

TEST(InflightLimiterTest, ANoisyCallerLeavesSeatsForOthers) {
  InflightLimiter l({100, 100});
  std::vector<InflightLimiter::Seat> noisy;
  for (InflightLimiter::Seat s; (s = l.Acquire(false, "user:noisy")) != nullptr;) noisy.push_back(std::move(s));
  // Alone, it gets up to half of the pool, and is then refused while others still get seats.
  EXPECT_EQ(noisy.size(), 50u);
  std::vector<InflightLimiter::Seat> quiet;
  for (int i = 0; i < 10; ++i) {
    quiet.push_back(l.Acquire(false, "user:quiet" + std::to_string(i)));
    ASSERT_NE(quiet.back(), nullptr) << i;
  }
  EXPECT_EQ(l.Acquire(false, "user:noisy"), nullptr);
  // Two noisy callers together cannot fill the pool either.
  InflightLimiter two({90, 90});
  std::vector<InflightLimiter::Seat> held;
  for (int round = 0; round < 200; ++round) {
    for (const char* who : {"user:a", "user:b"}) {
      if (auto s = two.Acquire(false, who)) held.push_back(std::move(s));
    }
  }
  EXPECT_LT(two.InFlight(false), 90u);
  EXPECT_NE(two.Acquire(false, "user:c"), nullptr);
}

TEST(InflightLimiterTest, ZeroMeansUnbounded) {
  InflightLimiter l({0, 0});
  std::vector<InflightLimiter::Seat> seats;
  for (int i = 0; i < 10000; ++i) {
    seats.push_back(l.Acquire(i % 2 == 0, "user:one"));
    ASSERT_NE(seats.back(), nullptr);
  }
}

}  // namespace
}  // namespace sigil::core
