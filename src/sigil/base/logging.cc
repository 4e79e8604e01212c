#include "sigil/base/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

namespace sigil::log {
namespace {

std::atomic<bool> g_json{false};
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

std::shared_ptr<spdlog::logger> Logger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_logger_mt("sigil");
    l->set_pattern("%v");
    l->set_level(spdlog::level::trace);
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return logger;
}

const char* LevelName(Level l) {
  switch (l) {
    case Level::kTrace: return "trace";
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
    case Level::kOff: return "off";
  }
  return "info";
}

std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t tt = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

bool NeedsQuoting(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

}  // namespace

bool ParseLevel(std::string_view s, Level* out) {
  static const std::pair<std::string_view, Level> kLevels[] = {
      {"trace", Level::kTrace}, {"debug", Level::kDebug}, {"info", Level::kInfo},
      {"warn", Level::kWarn},   {"error", Level::kError}, {"off", Level::kOff}};
  for (const auto& [name, level] : kLevels) {
    if (s == name) {
      *out = level;
      return true;
    }
  }
  return false;
}

void Init(Level level, bool json) {
  g_level = static_cast<int>(level);
  g_json = json;
  Logger();
}

bool Enabled(Level level) { return level != Level::kOff && static_cast<int>(level) >= g_level.load(); }

std::string FormatLine(Level level, std::string_view msg, Fields fields, bool json) {
  if (json) {
    nlohmann::ordered_json j;
    j["ts"] = Timestamp();
    j["level"] = LevelName(level);
    j["msg"] = std::string(msg);
    for (const Field& f : fields) j[std::string(f.key)] = f.value;
    // Replace invalid UTF-8 rather than throw: log content must never crash the server.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string line = Timestamp();
  line += ' ';
  line += LevelName(level);
  line += ' ';
  line += msg;
  for (const Field& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    if (NeedsQuoting(f.value)) {
      line += nlohmann::json(f.value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      line += f.value;
    }
  }
  return line;
}

void Log(Level level, std::string_view msg, Fields fields) {
  if (!Enabled(level)) return;
  Logger()->info(FormatLine(level, msg, fields, g_json.load()));
}

bool RateLimit::Allow(uint64_t* suppressed) {
  int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  int64_t next = next_.load(std::memory_order_relaxed);
  while (now >= next) {
    if (next_.compare_exchange_weak(next, now + period_.count(), std::memory_order_relaxed)) {
      *suppressed = refused_.exchange(0, std::memory_order_relaxed);
      return true;
    }
  }
  refused_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace sigil::log
