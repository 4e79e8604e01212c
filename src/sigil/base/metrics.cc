#include "sigil/base/metrics.h"

#include <cstdio>
#include <map>

namespace sigil::metrics {

void Histogram::Observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Histogram::Render(const std::string& name, const std::string& labels, std::string* out) const {
  std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  char buf[64];
  for (size_t i = 0; i <= kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    if (i < kBounds.size()) {
      std::snprintf(buf, sizeof(buf), "%g", kBounds[i]);
    } else {
      std::snprintf(buf, sizeof(buf), "+Inf");
    }
    *out += name + "_bucket{" + labels + sep + "le=\"" + buf + "\"} " + std::to_string(cumulative) + "\n";
  }
  std::snprintf(buf, sizeof(buf), "%.6f", static_cast<double>(sum_micros_.load()) / 1e6);
  std::string lb = labels.empty() ? "" : "{" + labels + "}";
  *out += name + "_sum" + lb + " " + buf + "\n";
  *out += name + "_count" + lb + " " + std::to_string(count_.load()) + "\n";
}

Registry& Registry::Global() {
  static Registry* r = new Registry();  // never destroyed: metrics outlive every thread
  return *r;
}

Registry::Entry* Registry::Find(const std::string& name, const std::string& labels, Kind kind,
                                const std::string& help) {
  for (Entry& e : entries_) {
    if (e.name == name && e.labels == labels && e.kind == kind) return &e;
  }
  Entry& e = entries_.emplace_back();
  e.name = name;
  e.help = help;
  e.labels = labels;
  e.kind = kind;
  return &e;
}

Counter* Registry::GetCounter(const std::string& name, const std::string& help, const std::string& labels) {
  MutexLock l(&mu_);
  Entry* e = Find(name, labels, Kind::kCounter, help);
  if (!e->counter) e->counter = std::make_unique<Counter>();
  return e->counter.get();
}

Gauge* Registry::GetGauge(const std::string& name, const std::string& help, const std::string& labels) {
  MutexLock l(&mu_);
  Entry* e = Find(name, labels, Kind::kGauge, help);
  if (!e->gauge) e->gauge = std::make_unique<Gauge>();
  return e->gauge.get();
}

Histogram* Registry::GetHistogram(const std::string& name, const std::string& help,
                                  const std::string& labels) {
  MutexLock l(&mu_);
  Entry* e = Find(name, labels, Kind::kHistogram, help);
  if (!e->histogram) e->histogram = std::make_unique<Histogram>();
  return e->histogram.get();
}

std::string Registry::Render() const {
  MutexLock l(&mu_);
  // Group series by metric name so HELP/TYPE appear once per name.
  std::map<std::string, std::vector<const Entry*>> by_name;
  for (const Entry& e : entries_) by_name[e.name].push_back(&e);
  std::string out;
  for (const auto& [name, series] : by_name) {
    const Entry* first = series.front();
    const char* type = first->kind == Kind::kCounter ? "counter"
                       : first->kind == Kind::kGauge ? "gauge"
                                                     : "histogram";
    out += "# HELP " + name + " " + first->help + "\n# TYPE " + name + " " + type + "\n";
    for (const Entry* e : series) {
      std::string lb = e->labels.empty() ? "" : "{" + e->labels + "}";
      switch (e->kind) {
        case Kind::kCounter: out += name + lb + " " + std::to_string(e->counter->value()) + "\n"; break;
        case Kind::kGauge: out += name + lb + " " + std::to_string(e->gauge->value()) + "\n"; break;
        case Kind::kHistogram: e->histogram->Render(name, e->labels, &out); break;
      }
    }
  }
  return out;
}

}  // namespace sigil::metrics
