// core/inflight.h: bounds on requests in flight, as kube-apiserver's --max-requests-inflight and
// --max-mutating-requests-inflight, with a simple fairness rule between callers.
//
// Two pools of seats, one for requests that change state and one for the rest. A request takes
// a seat as soon as it is authenticated, before it waits for a worker (as kube-apiserver's
// filter runs before authorization), and gives it back when its answer is handed to the
// connection; the seats therefore also bound the work queued behind the faces' worker pools.
// Long-running requests (watches) and the health endpoints take none. When a request cannot
// have a seat it is answered 429 with Retry-After in its face's error format, at once: nothing
// waits.
//
// Fairness (a simple form of API Priority and Fairness): callers are told apart by CallerKey.
// Once a pool is half full, a caller may hold at most limit / (callers with requests in this
// pool + 1) seats of it, so whatever one noisy caller (or a few) sends, a share of the seats
// stays free for callers who hold few; while the pool is less than half full anyone may take a
// seat.
//
// Thread-safe. A limit of 0 means unbounded.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sigil/base/identity.h"

namespace sigil::core {

class InflightLimiter {
 public:
  struct Options {
    size_t max_readonly = 400;
    size_t max_mutating = 200;
  };
  explicit InflightLimiter(Options options) : options_(options) {}

  // A seat: given back when the last copy is destroyed.
  using Seat = std::shared_ptr<void>;

  // A seat for a request by `caller` (non-empty), or null when it must be refused.
  Seat Acquire(bool mutating, const std::string& caller);

  // In flight now, for /metrics and tests.
  size_t InFlight(bool mutating);

  // Who a request counts against: the authenticated user; for a Vault token its display name
  // (a login's name, e.g. "userpass-alice", so logging in again does not buy another share);
  // the unauthenticated by address (an IPv6 address by its /64, which one host holds whole).
  static std::string CallerKey(const Identity* who, std::string_view remote);

 private:
  struct Pool {
    size_t limit = 0;
    size_t used = 0;
    std::unordered_map<std::string, size_t> by_caller;
  };
  void Release(bool mutating, const std::string& caller);

  Options options_;
  std::mutex mu_;
  Pool readonly_{options_.max_readonly, 0, {}};
  Pool mutating_{options_.max_mutating, 0, {}};
};

}  // namespace sigil::core
