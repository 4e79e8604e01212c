#include "sigil/base/clock.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include <ctime>
#include <string>

namespace sigil {

Clock* Clock::Real() {
  static RealClock clock;
  return &clock;
}

std::string FormatRfc3339(Clock::TimePoint t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<Clock::TimePoint> ParseRfc3339(std::string_view s) {
  std::tm tm{};
  std::string text(s);
  char z = 0;
  if (text.size() != 20 || std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                                       &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z) != 7 || z != 'Z') {
    return std::nullopt;
  }
  if (tm.tm_year < 1970 || tm.tm_year > 2261 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
      tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;  // (a time point counts nanoseconds: years past 2262 overflow it)
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return Clock::TimePoint(std::chrono::seconds(static_cast<int64_t>(timegm(&tm))));
}

std::optional<std::chrono::seconds> ParseGoDuration(std::string_view s, int64_t max_seconds) {
  if (s.empty()) return std::nullopt;
  // Plain seconds.
  int64_t whole = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), whole);
  if (ec == std::errc() && end == s.data() + s.size()) {
    if (whole < 0 || whole > max_seconds) return std::nullopt;
    return std::chrono::seconds(whole);
  }
  // Go's time.ParseDuration: a sequence of decimal numbers with units; no sign here (a
  // negative TTL means nothing to Vault's fields).
  static const std::pair<std::string_view, double> kUnits[] = {{"ns", 1e-9}, {"us", 1e-6}, {"µs", 1e-6}, {"ms", 1e-3},
                                                               {"s", 1},     {"m", 60},    {"h", 3600}};
  double total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    if (i == start) return std::nullopt;
    double v = 0;
    auto [p, e] = std::from_chars(s.data() + start, s.data() + i, v);
    if (e != std::errc() || p != s.data() + i) return std::nullopt;
    size_t u = i;
    while (u < s.size() && !((s[u] >= '0' && s[u] <= '9') || s[u] == '.')) ++u;
    std::string_view unit = s.substr(i, u - i);
    bool found = false;
    for (const auto& [name, factor] : kUnits) {
      if (unit == name) {
        total += v * factor;
        found = true;
      }
    }
    if (!found) return std::nullopt;
    i = u;
  }
  if (!std::isfinite(total) || total > max_seconds) return std::nullopt;
  return std::chrono::seconds(static_cast<int64_t>(total));
}

}  // namespace sigil
