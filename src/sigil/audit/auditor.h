// audit/auditor.h: what the API layers use to audit: the policy, the HMAC key for secret
// values, and the log. Secret values never reach a sink: a body is recorded only as
// RedactedBody returns it, with every value at a position where a Secret's values sit
// (audit/redaction.h: data, stringData, the last-applied annotation, in every body that carries
// Secrets or parts of them, patches included) replaced by "hmac-sha256:<hex>", keyed by a
// per-server key kept encrypted in the store (/sigil/audit/hmac-key), so an operator holding a
// known value can check whether it was read or written (`sigil audit hash VALUE`), and nobody
// can read values out of the trail. A body it cannot understand is not recorded. Thread-safe.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "sigil/audit/log.h"
#include "sigil/audit/policy.h"
#include "sigil/audit/redaction.h"
#include "sigil/store/object_store.h"

namespace sigil::audit {

class Auditor {
 public:
  static Result<std::unique_ptr<Auditor>> Open(store::ObjectStore* store, Policy policy, const std::vector<SinkOptions>& sinks);

  Decision Decide(const Request& r) const { return policy_.Evaluate(r); }
  // "hmac-sha256:<hex>" of a value under the server's audit key.
  std::string Hash(std::string_view value) const;
  // The body of a request or response as the trail may show it: every secret value replaced
  // by Hash(value), or nullopt when it must not be recorded. See RedactBody in redaction.h for
  // the arguments and the positions.
  std::optional<nlohmann::ordered_json> RedactedBody(std::string_view api_group, std::string_view resource,
                                                     std::string_view subresource, std::string_view content_type,
                                                     nlohmann::ordered_json body) const;
  // A Vault-face body with every string replaced by Hash(string) (RedactAllStrings).
  nlohmann::ordered_json RedactedVaultBody(nlohmann::ordered_json body) const {
    return RedactAllStrings(std::move(body), [this](std::string_view v) { return Hash(v); });
  }
  // Writes events (audit.k8s.io/v1 Event objects) to the trail; an error means no sink took
  // them and the request must be refused.
  Status Write(const std::vector<nlohmann::ordered_json>& events);
  AuditLog* log() { return log_.get(); }

 private:
  Auditor(Policy policy, SecretBytes key, std::unique_ptr<AuditLog> log)
      : policy_(std::move(policy)), key_(std::move(key)), log_(std::move(log)) {}
  Policy policy_;
  SecretBytes key_;
  std::unique_ptr<AuditLog> log_;
};

}  // namespace sigil::audit
