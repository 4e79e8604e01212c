#include "sigil/database/cron.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <vector>

namespace sigil::database {
namespace {

struct Field {
  const char* name;
  int min, max;
  const char* const* names;  // for min..max, or null
};

constexpr const char* kMonths[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kDays[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

Status Bad(const Field& f, std::string_view part, const std::string& why) {
  return InvalidArgumentError("rotation_schedule: " + std::string(f.name) + " \"" + std::string(part.substr(0, 32)) + "\": " + why);
}

Result<int> Number(const Field& f, std::string_view s, std::string_view part) {
  if (f.names != nullptr && s.size() == 3) {
    std::string up(s);
    for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (int i = 0; i <= f.max - f.min && i < 12; ++i) {
      if (f.names == kDays && i >= 7) break;
      if (up == f.names[i]) return f.min + i;
    }
  }
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return Bad(f, part, "not a number");
  if (v < f.min || v > f.max) return Bad(f, part, "out of range " + std::to_string(f.min) + "-" + std::to_string(f.max));
  return v;
}

// Sets the bits `field` names; returns whether it was "*" (alone, or "*/1").
template <size_t N>
Result<bool> ParseField(const Field& f, std::string_view text, std::bitset<N>* bits) {
  bool star = false;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view part = text.substr(start, comma - start);
    if (part.empty()) return Bad(f, text, "empty list element");
    std::string_view range = part;
    int step = 1;
    if (size_t slash = part.find('/'); slash != std::string_view::npos) {
      std::string_view s = part.substr(slash + 1);
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), step);
      if (s.empty() || ec != std::errc() || p != s.data() + s.size() || step <= 0 || step > 1000) {
        return Bad(f, part, "bad step");
      }
      range = part.substr(0, slash);
    }
    int lo = f.min, hi = f.max;
    if (range == "*") {
      star = star || (step == 1 && text == part);
    } else if (size_t dash = range.find('-'); dash != std::string_view::npos) {
      SIGIL_ASSIGN_OR_RETURN(lo, Number(f, range.substr(0, dash), part));
      SIGIL_ASSIGN_OR_RETURN(hi, Number(f, range.substr(dash + 1), part));
      if (lo > hi) return Bad(f, part, "range goes backwards");
    } else {
      SIGIL_ASSIGN_OR_RETURN(lo, Number(f, range, part));
      if (part.find('/') == std::string_view::npos) hi = lo;  // "a/n" runs to the field's end
    }
    for (int v = lo; v <= hi; v += step) bits->set(static_cast<size_t>(v));
    start = comma + 1;
  }
  return star;
}

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  if (fields.size() != 5) {
    return InvalidArgumentError("rotation_schedule: expected 5 fields (minute hour day-of-month month day-of-week), found " +
                                std::to_string(fields.size()));
  }
  static const Field kFields[] = {{"minute", 0, 59, nullptr},
                                  {"hour", 0, 23, nullptr},
                                  {"day of month", 1, 31, nullptr},
                                  {"month", 1, 12, kMonths},
                                  {"day of week", 0, 7, kDays}};
  CronSchedule c;
  SIGIL_RETURN_IF_ERROR(ParseField(kFields[0], fields[0], &c.minutes_).status());
  SIGIL_RETURN_IF_ERROR(ParseField(kFields[1], fields[1], &c.hours_).status());
  SIGIL_ASSIGN_OR_RETURN(c.days_star_, ParseField(kFields[2], fields[2], &c.days_));
  SIGIL_RETURN_IF_ERROR(ParseField(kFields[3], fields[3], &c.months_).status());
  std::bitset<8> week;
  SIGIL_ASSIGN_OR_RETURN(c.weekdays_star_, ParseField(kFields[4], fields[4], &week));  // 7 is Sunday too
  for (size_t d = 0; d < 7; ++d) c.weekdays_[d] = week[d];
  if (week[7]) c.weekdays_[0] = true;
  return c;
}

std::optional<Clock::TimePoint> CronSchedule::Next(Clock::TimePoint after) const {
  int64_t t = std::chrono::duration_cast<std::chrono::seconds>(after.time_since_epoch()).count();
  t = (t / 60 + 1) * 60;  // the next whole minute
  int64_t day_start = t - ((t % 86400) + 86400) % 86400;
  int first_minute = static_cast<int>((t - day_start) / 60);
  for (int d = 0; d < 5 * 366 + 2; ++d, day_start += 86400, first_minute = 0) {
    std::time_t ts = static_cast<std::time_t>(day_start);
    std::tm tm{};
    gmtime_r(&ts, &tm);
    if (!months_[static_cast<size_t>(tm.tm_mon + 1)]) continue;
    bool dom = days_[static_cast<size_t>(tm.tm_mday)], dow = weekdays_[static_cast<size_t>(tm.tm_wday)];
    bool day_ok = (days_star_ || weekdays_star_) ? (dom && dow) : (dom || dow);
    if (!day_ok) continue;
    for (int m = first_minute; m < 24 * 60; ++m) {
      if (hours_[static_cast<size_t>(m / 60)] && minutes_[static_cast<size_t>(m % 60)]) {
        return Clock::TimePoint(std::chrono::seconds(day_start + int64_t{m} * 60));
      }
    }
  }
  return std::nullopt;
}

}  // namespace sigil::database
