// base/logging.h: structured logs on spdlog, as text or one JSON object per line.
//
// A log line is a fixed message plus fields. Never pass a secret value as a field: fields are
// for names, paths, codes, sizes and durations. Thread safety: all functions are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

namespace sigil::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };

struct Field {
  std::string_view key;
  std::string value;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  template <typename N, typename = std::enable_if_t<std::is_arithmetic_v<N>>>
  Field(std::string_view k, N n) : key(k), value(std::to_string(n)) {}
};
using Fields = std::initializer_list<Field>;

// Parses "trace|debug|info|warn|error|off"; returns false on anything else.
bool ParseLevel(std::string_view s, Level* out);

// Configures the process logger (stderr). Safe to call again to change settings.
void Init(Level level, bool json);

bool Enabled(Level level);
void Log(Level level, std::string_view msg, Fields fields = {});
inline void Trace(std::string_view m, Fields f = {}) { Log(Level::kTrace, m, f); }
inline void Debug(std::string_view m, Fields f = {}) { Log(Level::kDebug, m, f); }
inline void Info(std::string_view m, Fields f = {}) { Log(Level::kInfo, m, f); }
inline void Warn(std::string_view m, Fields f = {}) { Log(Level::kWarn, m, f); }
inline void Error(std::string_view m, Fields f = {}) { Log(Level::kError, m, f); }

// For lines a client can cause (failed logins, refused connections): lets one event through per
// `period` and counts the others, so that line can say how many were not logged and no client
// can make the log grow faster than that. Thread-safe.
class RateLimit {
 public:
  explicit RateLimit(std::chrono::steady_clock::duration period) : period_(period) {}
  // True when this event may be logged; *suppressed is then how many were refused since the
  // last one that was.
  bool Allow(uint64_t* suppressed);

 private:
  const std::chrono::steady_clock::duration period_;
  std::atomic<int64_t> next_{std::numeric_limits<int64_t>::min()};  // steady-clock ticks
  std::atomic<uint64_t> refused_{0};
};

// Formats one line without emitting it (used by tests and by Log).
std::string FormatLine(Level level, std::string_view msg, Fields fields, bool json);

}  // namespace sigil::log
