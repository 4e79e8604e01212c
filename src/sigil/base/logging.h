// base/logging.h: structured logs on spdlog, as text or one JSON object per line.
//
// A log line is a fixed message plus fields. Never pass a secret value as a field: fields are
// for names, paths, codes, sizes and durations. Thread safety: all functions are thread-safe.
#pragma once

#include <initializer_list>
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

// Formats one line without emitting it (used by tests and by Log).
std::string FormatLine(Level level, std::string_view msg, Fields fields, bool json);

}  // namespace sigil::log
