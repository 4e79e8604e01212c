// base/clock.h: injected time. Code that needs "now" takes a Clock*, so tests advance a
// ManualClock instead of sleeping. Thread safety: both implementations are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string_view>
#include <cstdint>
#include <string>

namespace sigil {

class Clock {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  // Wall-clock time (for timestamps and TTLs shown to users).
  virtual TimePoint Now() const = 0;
  // Monotonic time (for durations and deadlines).
  virtual std::chrono::steady_clock::time_point MonotonicNow() const = 0;

  // The process-wide real clock.
  static Clock* Real();
};

class RealClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  std::chrono::steady_clock::time_point MonotonicNow() const override {
    return std::chrono::steady_clock::now();
  }
};

// A clock that only moves when told to.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint(std::chrono::seconds(1700000000)))
      : ns_(start.time_since_epoch().count()) {}
  TimePoint Now() const override { return TimePoint(TimePoint::duration(ns_.load())); }
  std::chrono::steady_clock::time_point MonotonicNow() const override {
    return std::chrono::steady_clock::time_point(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(TimePoint::duration(ns_.load())));
  }
  void Advance(std::chrono::nanoseconds d) {
    ns_ += std::chrono::duration_cast<TimePoint::duration>(d).count();
  }

 private:
  std::atomic<int64_t> ns_;
};

// RFC 3339 UTC with seconds, as Kubernetes prints timestamps: 2024-01-02T03:04:05Z.
std::string FormatRfc3339(Clock::TimePoint t);
// "YYYY-MM-DDTHH:MM:SSZ", as FormatRfc3339 writes it (whole seconds, UTC); nullopt otherwise.
std::optional<Clock::TimePoint> ParseRfc3339(std::string_view s);

// A number of seconds ("90") or a Go duration ("1h30m", "1.5h", "300ms", rounded down to
// whole seconds), at most `max_seconds`; nullopt otherwise (negative values included).
std::optional<std::chrono::seconds> ParseGoDuration(std::string_view s, int64_t max_seconds);

}  // namespace sigil
