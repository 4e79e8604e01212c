#include "sigil/core/inflight.h"

#include <algorithm>

#include "sigil/base/metrics.h"

namespace sigil::core {
namespace {

metrics::Counter* Rejected(bool mutating) {
  static metrics::Counter* ro = metrics::Registry::Global().GetCounter(
      "sigil_requests_rejected_total", "Requests refused with 429 because too many were in flight.", "kind=\"readOnly\"");
  static metrics::Counter* mu = metrics::Registry::Global().GetCounter(
      "sigil_requests_rejected_total", "Requests refused with 429 because too many were in flight.", "kind=\"mutating\"");
  return mutating ? mu : ro;
}

}  // namespace

InflightLimiter::Seat InflightLimiter::Acquire(bool mutating, const std::string& caller) {
  {
    std::lock_guard<std::mutex> l(mu_);
    Pool& p = mutating ? mutating_ : readonly_;
    if (p.limit > 0) {
      if (p.used >= p.limit) {
        Rejected(mutating)->Inc();
        return nullptr;
      }
      if (2 * p.used >= p.limit) {
        auto it = p.by_caller.find(caller);
        size_t mine = it == p.by_caller.end() ? 0 : it->second;
        size_t callers = p.by_caller.size() + (mine == 0 ? 1 : 0);
        size_t share = std::max<size_t>(1, p.limit / (callers + 1));
        if (mine >= share) {
          Rejected(mutating)->Inc();
          return nullptr;
        }
      }
    }
    ++p.used;
    ++p.by_caller[caller];
  }
  // The deleter gives the seat back; the pointer itself is never read.
  return Seat(this, [mutating, caller](InflightLimiter* self) { self->Release(mutating, caller); });
}

void InflightLimiter::Release(bool mutating, const std::string& caller) {
  std::lock_guard<std::mutex> l(mu_);
  Pool& p = mutating ? mutating_ : readonly_;
  --p.used;
  auto it = p.by_caller.find(caller);
  if (it != p.by_caller.end() && --it->second == 0) p.by_caller.erase(it);
}

std::string InflightLimiter::CallerKey(const Identity* who, std::string_view remote) {
  if (who != nullptr && who->authenticated() && who->user != "system:anonymous") {
    if (auto it = who->extra.find("sigil.dev/vault-display-name"); it != who->extra.end() && !it->second.empty()) {
      return "vault:" + it->second.front();
    }
    return "user:" + who->user;
  }
  std::string_view ip = remote.substr(0, remote.rfind(':'));
  if (ip.find(':') != std::string_view::npos) {  // IPv6: its first four groups
    size_t at = 0;
    for (int groups = 0; groups < 4 && at != std::string_view::npos; ++groups) at = ip.find(':', at == 0 ? 0 : at + 1);
    ip = ip.substr(0, at);
  }
  return "ip:" + std::string(ip);
}

size_t InflightLimiter::InFlight(bool mutating) {
  std::lock_guard<std::mutex> l(mu_);
  return (mutating ? mutating_ : readonly_).used;
}

}  // namespace sigil::core
