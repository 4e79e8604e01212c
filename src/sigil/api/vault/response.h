// api/vault/response.h: Vault's answers (../shared/reference/vault.md section 0).
//
// - Logical responses carry the envelope {request_id, lease_id, renewable, lease_duration,
//   data, wrap_info, warnings, auth}; some legacy sys/ routes also copy every key of `data` to
//   the top level ("sys-injected": sys/policy, sys/capabilities*, sys/mounts, ...); a few sys/
//   handlers answer raw JSON (sys/health, sys/init, sys/seal-status, ...).
// - Success without a body is 204; with warnings it is 200 with the envelope.
// - Errors are {"errors": [...]} with Content-Type exactly "application/json" (hvac compares
//   the header as a string); a read or list that finds nothing is 404 {"errors": []}.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "sigil/api/vault/request.h"
#include "sigil/core/pipeline.h"

namespace sigil::vault {

using core::Reply;

// 200 with the envelope around `data` (null for none) and `warnings`.
Reply Envelope(Json data, const std::vector<std::string>& warnings = {}, Json auth = nullptr);
// The envelope of a secrets engine's read: `lease_duration` set (no lease id: nothing is leased).
Reply LogicalEnvelope(Json data, int64_t lease_duration, const std::vector<std::string>& warnings = {}, int status = 200);
// The envelope of what is handed out with a lease (dynamic credentials): data and the lease.
Reply LeasedEnvelope(Json data, const std::string& lease_id, bool renewable, int64_t lease_duration,
                     const std::vector<std::string>& warnings = {});
// The envelope of a lease's renewal: lease_id, renewable and lease_duration set, no data.
Reply LeaseEnvelope(const std::string& lease_id, bool renewable, int64_t lease_duration, const std::vector<std::string>& warnings = {});
// The envelope with `data`'s keys also at the top level (sys-injected routes).
Reply SysInjected(Json data, const std::vector<std::string>& warnings = {});
// A raw JSON answer with `status` (non-logical sys/ handlers).
Reply Raw(int status, const Json& body);
// 204, or 200 with the envelope when there are warnings.
Reply NoContent(const std::vector<std::string>& warnings = {});
// 404 {"errors": []}: nothing at this path.
Reply NotFound();
// {"errors": [message]} with `status`.
Reply Error(int status, const std::string& message);

// A 400 naming the first of `fields` that `body` sets to something other than its empty or
// false default: options sigil does not enforce yet (CIDR bindings, token use limits, ...) are
// refused rather than accepted and ignored, so nobody believes a restriction holds that does not.
std::optional<Reply> RefuseUnsupported(const Json& body, std::initializer_list<const char*> fields);

// The HTTP response for `r` to `req` (HEAD, 204 and 1xx without a body).
http::Response ToHttp(const http::Request& req, Reply r);

// Failures in Vault's format, with the status of the one table (base/status_http.h): 400 for
// bad input, 403 "permission denied", 404, 405, 429, 500, 501, 503.
class VaultErrors final : public core::ErrorRenderer {
 public:
  Reply Render(const Status& s, const core::RequestInfo& r) const override;
};

}  // namespace sigil::vault
