// Fuzzes the cron schedules of static database roles (database/cron.h): parsed, and a valid one
// asked for its next time.
#include <cstdint>
#include <string_view>

#include "sigil/database/cron.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto c = sigil::database::CronSchedule::Parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (c.ok()) (void)c->Next(sigil::Clock::TimePoint(std::chrono::seconds(1796000000))).has_value();
  return 0;
}
