// audit/redaction.h: what of a request or response body the audit trail may show. Secret values
// are found by their position in the object, never by a key's name anywhere: the positions
// where a Secret's values sit are
//
//   data.<key>, stringData.<key>              each value (data values hashed as decoded bytes)
//   metadata.annotations.<last-applied>       kubectl's last-applied-configuration: a whole
//                                             Secret as a string, hashed as one value
//
// in a Secret, and the same positions inside every body that carries Secrets: lists
// (items[*]), watch events and history versions (object), Tables (rows[*].object), merge,
// strategic-merge and apply patches (partial Secrets; null stays null, it deletes), and JSON
// patches (RFC 6902), whose `value` is redacted as what it becomes at its `path`: at or above
// a value ("", /metadata, /metadata/annotations, /data, /stringData) the value is walked as
// that part of a Secret, at or below one it is hashed whole. An operation whose path is not a
// JSON pointer (e.g. "data/pw") has its value hashed; so does every member of an operation
// that is not op, path or from.
//
// Conservative by construction: a member a Secret-carrying body does not have (a typo such as
// "dat", "annotation") is hashed whole, and so is anything of the wrong type where values sit
// below (data as an array or a string, items that are not objects). A body that cannot be
// understood at all (not an object, a JSON patch that is not an array, an unknown media type,
// an unknown resource or subresource, nesting deeper than kMaxRedactionDepth) is not recorded:
// nullopt. Bodies of the non-secret kinds sigil serves (namespaces, RBAC objects, access
// reviews) are returned as they are.
//
// Pure functions; thread-safe as long as `hash` is.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace sigil::audit {

// How deeply Secret-carrying structures may nest (a list inside a watch event inside a JSON
// patch's value counts three); deeper bodies are not recorded.
inline constexpr int kMaxRedactionDepth = 16;

// Maps a secret value to what the trail shows instead (the Auditor's "hmac-sha256:<hex>").
// It receives the value's bytes (a data value decoded from base64 when it decodes; a value
// that is not a string as its JSON text) and must not keep them.
using ValueHasher = std::function<std::string(std::string_view)>;

// `body` of a request or response about `resource` (e.g. "secrets", in `api_group`, "" for the
// core group; "" resource for a non-resource request) and `subresource` ("", "versions",
// "rollback"), as the audit trail may show it: every secret value replaced by hash(value).
// `content_type` is the request's media type (parameters after ';' are ignored):
// application/json (also for responses and for protobuf bodies after decoding),
// application/json-patch+json, application/merge-patch+json,
// application/strategic-merge-patch+json, or application/apply-patch+yaml (after conversion
// to JSON). nullopt: the body must not be recorded. Strings replaced are wiped before they are
// freed (the copies the JSON parser made of the request are beyond reach).
std::optional<nlohmann::ordered_json> RedactBody(
    std::string_view api_group, std::string_view resource, std::string_view subresource,
    std::string_view content_type, nlohmann::ordered_json body, const ValueHasher& hash);

// A Vault-face body as the trail may show it: every string value, at any depth, replaced by
// hash(value), as Vault's audit devices HMAC every string of a request's and a response's data
// (policy texts, tokens, accessors, passwords, secret values alike); member names, numbers,
// booleans and null stay. Strings replaced are wiped before they are freed.
nlohmann::ordered_json RedactAllStrings(nlohmann::ordered_json body, const ValueHasher& hash);

// A request target as the trail may show it: parameters are split at `&` and `;`, and the value
// of every one whose name looks like a credential (it contains, in any case and after percent
// decoding, "token", "secret", "pass", "pwd", "pw", "jwt", "key", "auth", "credential",
// "signature", "bearer", "session", "cookie", "assertion" or "otp", or is "sig" or "code"), or
// whose value has a credential's shape (a sigil or Vault token, a JWT), is replaced by
// "REDACTED", as is a fragment. Clients that put `?access_token=` in a URL would otherwise
// write the token into every refusal's record. The path and other parameters stay as sent.
std::string RedactQuery(std::string_view uri);

}  // namespace sigil::audit
