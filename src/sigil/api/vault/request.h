// api/vault/request.h: a Vault API request as the handlers see it, decoded from HTTP by Vault's
// wire conventions (../shared/reference/vault.md section 0):
//
// - every path is under /v1/; the path is kept without that prefix and without the query, and
//   a path ending in '.' is not served (404), as Vault;
// - PUT and POST are synonyms (both "write"); LIST, or GET with ?list=<true> (Go's ParseBool:
//   1, t, T, true, TRUE, True), lists; DELETE deletes; PATCH patches; HEAD reads (sys/health);
// - the token comes from X-Vault-Token, or else Authorization: Bearer; X-Vault-Request is
//   accepted and not required;
// - the body is a JSON object or empty (Content-Type is not required); a body that is not a
//   JSON object is a 400. JSON null means unset, unknown fields are ignored.
//
// The field helpers decode what Vault accepts: a list as an array or a comma-separated string,
// a duration as seconds (a number or a numeric string) or a Go duration string ("1h30m",
// "90s", "1.5h"), a bool as JSON or Go's ParseBool strings.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sigil/api/http/types.h"
#include "sigil/engines/fields.h"
#include "sigil/base/result.h"

namespace sigil::vault {

using Json = nlohmann::ordered_json;

enum class Operation { kRead, kList, kWrite, kDelete, kPatch };

struct Request {
  std::string path;  // after /v1/, e.g. "sys/policy/web"
  Operation op = Operation::kRead;
  bool head = false;  // a HEAD request: answer without a body
  std::map<std::string, std::string> query;
  Json body = Json::object();  // always an object
  std::string token;            // as presented (X-Vault-Token or bearer); "" when none
  // Where it came from, for what the request itself records (the kubernetes/ mount's
  // Kubernetes-face audit event): the target as audited (query values hashed), the
  // User-Agent, the peer's ip:port. Set by the face after decoding.
  std::string audit_uri, user_agent, remote;
};

// Decodes `req` (its target starts with /v1/). kInvalidArgument: a body that is not a JSON
// object, or a malformed path (the message is Vault's, without the input).
Result<Request> Decode(const http::Request& req);

// The request's token: X-Vault-Token, else the Authorization bearer token; "" when neither.
std::string_view TokenOf(const http::Request& req);

// How deeply a request body may nest: deeper bodies are refused (400) before they are parsed.
inline constexpr int kMaxBodyDepth = 64;
bool TooDeep(std::string_view json_text);
// Vault's field decoders, shared with the secrets engines.
using engines::BoolField;
using engines::DurationField;
using engines::IntField;
using engines::kMaxDurationSeconds;
using engines::ListField;
using engines::ParseBool;
using engines::ParseDuration;
using engines::StringField;

}  // namespace sigil::vault
