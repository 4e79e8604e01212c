// base/metrics.h: a small Prometheus metrics registry (counters, gauges, histograms).
//
// Metrics are created once (usually as function-local statics) and updated lock-free.
// Label values must be bounded sets (codes, methods, outcomes), never user input or secrets.
// Thread safety: all operations are thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "sigil/base/mutex.h"

namespace sigil::metrics {

class Counter {
 public:
  void Inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void Add(int64_t d) { v_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Latency histogram with fixed bucket bounds in seconds.
class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                     0.005,  0.01,    0.025,  0.05,  0.1,
                                                     0.25,   0.5,     1.0,    5.0};
  void Observe(double seconds);
  // Appends the exposition lines for this histogram (name{labels,le=...}).
  void Render(const std::string& name, const std::string& labels, std::string* out) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

class Registry {
 public:
  static Registry& Global();

  // Returns the metric with this name and label set, creating it on first use. `labels` is the
  // Prometheus label list without braces, e.g. `code="200",method="GET"`. Pointers stay valid
  // for the life of the registry.
  Counter* GetCounter(const std::string& name, const std::string& help, const std::string& labels = "");
  Gauge* GetGauge(const std::string& name, const std::string& help, const std::string& labels = "");
  Histogram* GetHistogram(const std::string& name, const std::string& help, const std::string& labels = "");

  // Prometheus text exposition format 0.0.4.
  std::string Render() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Entry {
    std::string name, help, labels;
    Kind kind;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  Entry* Find(const std::string& name, const std::string& labels, Kind kind, const std::string& help)
      SIGIL_REQUIRES(mu_);
  mutable Mutex mu_;
  std::deque<Entry> entries_ SIGIL_GUARDED_BY(mu_);
};

}  // namespace sigil::metrics
