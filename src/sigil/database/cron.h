// database/cron.h: the five-field cron schedules Vault takes for a static role's
// rotation_schedule (robfig/cron's standard parser: minute hour day-of-month month
// day-of-week), evaluated in UTC.
//
// Each field is `*`, a value, a range `a-b`, a step `*/n` or `a-b/n` or `a/n` (from a to the
// field's end), or a comma list of those; months take JAN..DEC and days of the week SUN..SAT
// (0 or 7 is Sunday), case-insensitive. As cron: when both day fields are restricted, a day
// matches if either does. Not taken: seconds, `?`, `L`, `W`, `#`, and the @descriptors
// (robfig/cron takes `?` and the descriptors; sigil refuses them). Thread-safe (values).
#pragma once

#include <bitset>
#include <optional>
#include <string>
#include <string_view>

#include "sigil/base/clock.h"
#include "sigil/base/result.h"

namespace sigil::database {

class CronSchedule {
 public:
  // kInvalidArgument naming the field and what is wrong.
  static Result<CronSchedule> Parse(std::string_view text);
  // The first minute strictly after `after` that the schedule names (seconds are zero);
  // nullopt when none comes within five years (e.g. "0 0 30 2 *").
  std::optional<Clock::TimePoint> Next(Clock::TimePoint after) const;

 private:
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 (Sunday)..6
  bool days_star_ = false, weekdays_star_ = false;
};

}  // namespace sigil::database
