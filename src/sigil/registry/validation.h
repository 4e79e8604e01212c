// registry/validation.h: kube-apiserver's field validation, with its messages, and the
// metav1.Status error bodies (k8s.io/apimachinery pkg/util/validation, pkg/api/errors).
// Pure functions; thread-safe.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace sigil::registry {

using Json = nlohmann::ordered_json;

struct FieldError {
  enum class Type { kInvalid, kRequired, kForbidden, kTooLong, kDuplicate, kNotSupported };
  Type type;
  std::string field;   // e.g. metadata.name, data[tls.crt]
  std::string value;   // shown for kInvalid (never a secret value: callers redact)
  std::string detail;  // for kNotSupported: the supported values, quoted and joined (`"a", "b"`)
  bool value_is_go_literal = false;  // value is printed as is (e.g. []string{"/x"}), not quoted
  // "Invalid value: \"x\": detail", "Required value", ...
  std::string Body() const;
  std::string Reason() const;  // FieldValueInvalid, ...
};
using FieldErrors = std::vector<FieldError>;

// Empty when valid, else the messages kube-apiserver gives.
std::vector<std::string> IsDns1123Subdomain(const std::string& v);
std::vector<std::string> IsDns1123Label(const std::string& v);
std::vector<std::string> IsConfigMapKey(const std::string& v);
std::vector<std::string> IsQualifiedName(const std::string& v);
std::vector<std::string> IsValidLabelValue(const std::string& v);

// path.IsValidPathSegmentName, which RBAC objects use for names ("system:basic-user" is valid).
std::vector<std::string> IsValidPathSegmentName(const std::string& v);

// RBAC objects (kind Role, ClusterRole, RoleBinding, ClusterRoleBinding): ShapeOfRbac says why
// a body cannot be decoded (a field of the wrong JSON type), or ""; ValidateRbac gives
// kube-apiserver's field errors (k/k pkg/apis/rbac/validation) for a decoded one.
std::string ShapeOfRbac(const std::string& kind, const Json& in);
FieldErrors ValidateRbac(const std::string& kind, const Json& obj);

// Validates labels and annotations of `meta` into `errs` (paths metadata.labels / .annotations).
void ValidateLabelsAndAnnotations(const Json& meta, FieldErrors* errs);

// kube-apiserver's ValidateObjectMeta as sigil needs it: a name is required and must pass
// `name_check` (IsDns1123Subdomain for most kinds), and labels and annotations must be valid.
void ValidateObjectMeta(const Json& meta, std::vector<std::string> (*name_check)(const std::string&), FieldErrors* errs);

// A metav1.Status error body.
struct ApiError {
  int code;
  std::string reason;
  std::string message;
  Json details;  // null, or {name, group?, kind, causes?}
  Json ToJson() const;
};

ApiError NotFound(const std::string& resource, const std::string& name);
ApiError AlreadyExists(const std::string& resource, const std::string& name);
ApiError Conflict(const std::string& resource, const std::string& name, const std::string& why);
ApiError ModifiedConflict(const std::string& resource, const std::string& name);
ApiError Invalid(const std::string& kind, const std::string& name, const FieldErrors& errs);
ApiError BadRequest(const std::string& message);
ApiError MethodNotAllowed();
ApiError UnsupportedMediaType(const std::string& content_type);
ApiError InternalError(const std::string& message);
ApiError FromStatusMessage(int code, const std::string& reason, const std::string& message);

}  // namespace sigil::registry
