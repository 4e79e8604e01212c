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

TEST(InflightLimiterTest, CallerKeys) {
  Identity alice{"alice", "", {"system:authenticated"}, {}, "x509"};
  EXPECT_EQ(InflightLimiter::CallerKey(&alice, "10.0.0.1:5555"), "user:alice");
  // Every Vault token of one login counts as that login, whatever its accessor.
  Identity token{"accessor-1", "", {}, {{"sigil.dev/vault-display-name", {"userpass-bob"}}}, "token"};
  Identity again{"accessor-2", "", {}, {{"sigil.dev/vault-display-name", {"userpass-bob"}}}, "token"};
  EXPECT_EQ(InflightLimiter::CallerKey(&token, "1.2.3.4:1"), InflightLimiter::CallerKey(&again, "5.6.7.8:2"));
  // The unauthenticated by address; an IPv6 host by its /64.
  EXPECT_EQ(InflightLimiter::CallerKey(nullptr, "192.0.2.7:443"), "ip:192.0.2.7");
  Identity anonymous{"system:anonymous", "", {"system:unauthenticated"}, {}, ""};
  EXPECT_EQ(InflightLimiter::CallerKey(&anonymous, "192.0.2.7:9"), "ip:192.0.2.7");
  EXPECT_EQ(InflightLimiter::CallerKey(nullptr, "2001:db8:1:2:aaaa::1:443"), InflightLimiter::CallerKey(nullptr, "2001:db8:1:2:bbbb::9:80"));
  EXPECT_NE(InflightLimiter::CallerKey(nullptr, "2001:db8:1:2::1:443"), InflightLimiter::CallerKey(nullptr, "2001:db8:1:3::1:443"));
}

}  // namespace
}  // namespace sigil::core
