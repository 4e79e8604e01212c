#include "sigil/base/logging.h"

#include <gtest/gtest.h>

#include <thread>

#include <nlohmann/json.hpp>

namespace sigil::log {
namespace {

TEST(LoggingTest, JsonLineIsValidJsonWithFields) {
  std::string line = FormatLine(Level::kWarn, "storage slow", {{"path", "/x \"y\""}, {"ms", 12}}, true);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["msg"], "storage slow");
  EXPECT_EQ(j["path"], "/x \"y\"");
  EXPECT_EQ(j["ms"], "12");
}

TEST(LoggingTest, TextLineQuotesValuesWithSpaces) {
  std::string line = FormatLine(Level::kInfo, "listening", {{"addr", "127.0.0.1:8200"}, {"note", "a b"}}, false);
  EXPECT_NE(line.find(" info listening addr=127.0.0.1:8200 note=\"a b\""), std::string::npos);
}

TEST(LoggingTest, InvalidUtf8DoesNotThrow) {
  std::string line = FormatLine(Level::kInfo, "m", {{"k", std::string("\xff\xfe")}}, true);
  EXPECT_TRUE(nlohmann::json::accept(line));
}

TEST(LoggingTest, ParseLevel) {
  Level l;
  EXPECT_TRUE(ParseLevel("debug", &l));
  EXPECT_EQ(l, Level::kDebug);
  EXPECT_FALSE(ParseLevel("loud", &l));
}

TEST(LoggingTest, RateLimitLetsOnePerPeriodAndCountsTheRest) {
  RateLimit limit(std::chrono::milliseconds(200));
  uint64_t suppressed = 99;
  EXPECT_TRUE(limit.Allow(&suppressed));
  EXPECT_EQ(suppressed, 0u);
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(limit.Allow(&suppressed));
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_TRUE(limit.Allow(&suppressed));
  EXPECT_EQ(suppressed, 1000u);
}

}  // namespace
}  // namespace sigil::log
