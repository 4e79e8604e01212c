#include "sigil/core/authentication.h"

#include <algorithm>

#include "sigil/audit/redaction.h"
#include "sigil/base/logging.h"
#include "sigil/crypto/random.h"

namespace sigil::core {

Authenticated Authentication::Authenticate(const Credentials& c) const {
  Authenticated out;
  auto outcome = authenticator_->Authenticate(c.authorization_header, c.certificate);
  if (!outcome.ok()) {
    log::Error("authentication failed internally", {{"error", outcome.error().ToString()}});
    out.unavailable = true;
    return out;
  }
  if (outcome->identity) {
    out.identity = std::make_shared<const Identity>(std::move(*outcome->identity));
    return out;
  }
  out.warning = outcome->warning;
  AuditFailure(c);
  std::string ip(c.remote.substr(0, c.remote.rfind(':')));
  out.delay = outcome->presented ? throttle_->Fail(ip) : std::chrono::milliseconds(0);
  if (outcome->presented) {
    // A client can fail as often as it likes: at most one line a second (the trail records
    // every refusal).
    static log::RateLimit limit(std::chrono::seconds(1));
    uint64_t suppressed = 0;
    if (limit.Allow(&suppressed)) {
      log::Info("authentication failed",
                {{"remote", std::string(c.remote)}, {"delay_ms", out.delay.count()}, {"not_logged_since_last", suppressed}});
    }
  }
  return out;
}

// A refused credential is recorded as kube-apiserver records one: user system:anonymous,
// stage ResponseStarted, code 401, at the level the policy gives anonymous requests. The
// request is refused either way; a failed audit write is logged.
void Authentication::AuditFailure(const Credentials& c) const {
  if (auditor_ == nullptr) return;
  static const Identity anonymous{"system:anonymous", "", {"system:unauthenticated"}, {}, ""};
  std::string path(c.uri.substr(0, c.uri.find('?')));
  std::string verb(c.method);
  std::transform(verb.begin(), verb.end(), verb.begin(), [](unsigned char ch) { return std::tolower(ch); });
  audit::Decision d = auditor_->Decide(audit::Request{&anonymous, verb, false, "", "", "", "", "", path});
  if (d.level == audit::Level::kNone || d.omit_stages.count(audit::Stage::kResponseStarted)) return;
  std::string now = FormatRfc3339(clock_->Now());
  nlohmann::ordered_json ev = {
      {"kind", "Event"}, {"apiVersion", "audit.k8s.io/v1"}, {"level", audit::LevelName(d.level)}, {"auditID", crypto::RandomUuid()},
      {"stage", "ResponseStarted"}, {"requestURI", audit::RedactQuery(c.uri)}, {"verb", verb},
      {"user", {{"username", anonymous.user}, {"groups", anonymous.groups}}},
      {"sourceIPs", {std::string(c.remote.substr(0, c.remote.rfind(':')))}},
      {"responseStatus", {{"metadata", nlohmann::ordered_json::object()}, {"status", "Failure"}, {"message", "Unauthorized"},
                          {"reason", c.refused_code == 401 ? "Unauthorized" : "Forbidden"}, {"code", c.refused_code}}},
      {"requestReceivedTimestamp", now}, {"stageTimestamp", now}};
  if (!c.user_agent.empty()) ev["userAgent"] = std::string(c.user_agent);
  if (Status st = auditor_->Write({ev}); !st.ok()) log::Error("audit: a failed authentication could not be recorded", {{"error", st.message()}});
}

}  // namespace sigil::core
