// api/vault/sys_health.cc: sys/health, unauthenticated. sigil has no sealed or standby state
// yet (the key-file seal unseals at start; there is one active server), so the answer is
// initialised, unsealed and active, with the status code the query asks for that state.
#include <charconv>

#include "sigil/api/vault/impl.h"

namespace sigil::vault {

Reply VaultApi::Impl::SysHealth(const Request& r) {
  if (r.op != Operation::kRead) return Error(405, "unsupported operation");
  int code = 200;
  if (auto it = r.query.find("activecode"); it != r.query.end()) {
    const std::string& v = it->second;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), code);
    if (ec != std::errc() || end != v.data() + v.size() || code < 100 || code > 599) {
      return Error(400, "unable to parse activecode code: the value is not an HTTP status code");
    }
  }
  for (const char* bool_param : {"standbyok", "perfstandbyok"}) {
    if (auto it = r.query.find(bool_param); it != r.query.end() && !it->second.empty() && !ParseBool(it->second)) {
      return Error(400, std::string("bad value for ") + bool_param + " parameter");
    }
  }
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
  return Raw(code, Json{{"initialized", true},
                        {"sealed", false},
                        {"standby", false},
                        {"performance_standby", false},
                        {"replication_performance_mode", "disabled"},
                        {"replication_dr_mode", "disabled"},
                        {"server_time_utc", now},
                        {"version", options_.version}});
}

}  // namespace sigil::vault
