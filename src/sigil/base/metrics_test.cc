#include "sigil/base/metrics.h"

#include <gtest/gtest.h>

namespace sigil::metrics {
namespace {

TEST(MetricsTest, RendersPrometheusText) {
  Registry r;
  r.GetCounter("sigil_test_total", "Test counter.", "code=\"200\"")->Inc(3);
  r.GetCounter("sigil_test_total", "Test counter.", "code=\"500\"")->Inc();
  r.GetGauge("sigil_test_gauge", "Test gauge.")->Set(-2);
  Histogram* h = r.GetHistogram("sigil_test_seconds", "Test histogram.");
  h->Observe(0.0003);
  h->Observe(2.0);
  std::string out = r.Render();
  EXPECT_NE(out.find("# TYPE sigil_test_total counter\n"), std::string::npos);
  EXPECT_NE(out.find("sigil_test_total{code=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("sigil_test_total{code=\"500\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("sigil_test_gauge -2\n"), std::string::npos);
  EXPECT_NE(out.find("sigil_test_seconds_bucket{le=\"0.0005\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("sigil_test_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("sigil_test_seconds_count 2\n"), std::string::npos);
  // Same name and labels return the same series.
  EXPECT_EQ(r.GetCounter("sigil_test_total", "", "code=\"200\"")->value(), 3u);
}

}  // namespace
}  // namespace sigil::metrics
