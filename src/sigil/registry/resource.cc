#include "sigil/registry/resource.h"

#include <map>

#include "sigil/base/encoding.h"
#include "sigil/base/secret_bytes.h"
#include "sigil/registry/rotation.h"

namespace sigil::registry {

const char kRbacGroup[] = "rbac.authorization.k8s.io";

namespace {

// Why Go's json.Unmarshal into a map[string]interface{} (what kube-apiserver validates a
// docker config with) fails on `bytes`, in its words, or "" when it succeeds. A syntax error's
// message names the offending character in Go; here it names only the offset, since the
// character is part of the secret.
std::string GoMapDecodeError(std::string_view bytes) {
  Json j;
  try {
    j = Json::parse(bytes);
  } catch (const Json::parse_error& e) {
    size_t end = bytes.find_last_not_of(" \t\r\n");
    if (end == std::string_view::npos || e.byte > end + 1) return "unexpected end of JSON input";
    return "invalid character at offset " + std::to_string(e.byte - 1) + " (not shown: it is part of the secret)";
  }
  if (j.is_object() || j.is_null()) return "";
  const char* type = j.is_array() ? "array" : j.is_string() ? "string" : j.is_boolean() ? "bool" : "number";
  return std::string("json: cannot unmarshal ") + type + " into Go value of type map[string]interface {}";
}

constexpr size_t kMaxSecretSize = 1024 * 1024;

const std::set<std::string> kMetaFields = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
                                           "generation", "creationTimestamp", "deletionTimestamp",
                                           "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
                                           "finalizers", "managedFields"};

// The part of PrepareForWrite every kind shares: apiVersion and kind, unknown fields, the types
// of metadata's fields, and the namespace. Returns the metadata to keep, or sets p->error.
std::optional<Json> PrepareMeta(const Json& in, const std::string& ns, const std::string& kind, const std::string& api_version,
                                bool namespaced, const std::set<std::string>& top_fields, const std::string& field_validation,
                                Prepared* p) {
  auto bad = [&](const std::string& why) {
    p->error = BadRequest(kind + " in version \"v1\" cannot be handled as a " + kind + ": " + why);
    return std::nullopt;
  };
  if (!in.is_object()) return bad("the body is not a JSON object");
  if (in.contains("apiVersion") && in["apiVersion"] != api_version) {
    return bad("the API version in the data (" + (in["apiVersion"].is_string() ? in["apiVersion"].get<std::string>() : "?") +
               ") does not match the expected API version (" + api_version + ")");
  }
  if (in.contains("kind") && in["kind"] != kind) {
    return bad("the kind in the data (" + (in["kind"].is_string() ? in["kind"].get<std::string>() : "?") +
               ") does not match the expected kind (" + kind + ")");
  }
  std::vector<std::string> unknown;
  for (const auto& [k, v] : in.items()) {
    if (!top_fields.count(k)) unknown.push_back(k);
  }
  Json meta = in.value("metadata", Json::object());
  if (!meta.is_object()) return bad("metadata must be an object");
  for (const auto& [k, v] : meta.items()) {
    if (!kMetaFields.count(k)) unknown.push_back("metadata." + k);
  }
  if (!unknown.empty()) {
    if (field_validation == "Strict") {
      std::string m = "strict decoding error: ";
      for (size_t i = 0; i < unknown.size(); ++i) m += (i ? ", " : "") + std::string("unknown field \"") + unknown[i] + "\"";
      p->error = BadRequest(m);
      return std::nullopt;
    }
    if (field_validation != "Ignore") {
      for (const std::string& u : unknown) p->warnings.push_back("unknown field \"" + u + "\"");
    }
  }
  for (const char* f : {"name", "generateName", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
    if (meta.contains(f) && !meta[f].is_string() && !meta[f].is_null()) return bad(std::string("metadata.") + f + " must be a string");
  }
  for (const char* f : {"labels", "annotations"}) {
    if (meta.contains(f) && !meta[f].is_null()) {
      if (!meta[f].is_object()) return bad(std::string("metadata.") + f + " must be a map of strings");
      for (const auto& [k, v] : meta[f].items()) {
        if (!v.is_string()) return bad(std::string("metadata.") + f + " must be a map of strings");
      }
    }
  }
  std::string body_ns = meta.value("namespace", "");
  if (!body_ns.empty() && body_ns != ns && namespaced) {
    p->error = BadRequest("the namespace of the provided object does not match the namespace sent on the request");
    return std::nullopt;
  }
  meta.erase("selfLink");
  if (namespaced) {
    meta["namespace"] = ns;
  } else {
    meta.erase("namespace");  // kube-apiserver drops it from cluster-scoped objects
  }
  return meta;
}

// v1 Secret (k/k pkg/registry/core/secret/strategy.go).
class SecretStrategy : public Strategy {
 public:
  Prepared PrepareForWrite(const Json& in, const std::string& ns, const std::string& field_validation) const override {
    Prepared p;
    static const std::set<std::string> kTop = {"kind", "apiVersion", "metadata", "data", "stringData", "type", "immutable"};
    std::optional<Json> meta = PrepareMeta(in, ns, "Secret", "v1", true, kTop, field_validation, &p);
    if (!meta) return p;
    auto bad = [&](const std::string& why) {
      p.error = BadRequest("Secret in version \"v1\" cannot be handled as a Secret: " + why);
      return p;
    };
    Json data = Json::object();
    if (in.contains("data") && !in["data"].is_null()) {
      if (!in["data"].is_object()) return bad("data must be a map of base64 strings");
      for (const auto& [k, v] : in["data"].items()) {
        if (!v.is_string()) return bad("data[" + k + "] must be a base64 string");
        if (!Base64DecodeSecret(v.get_ref<const std::string&>()).ok()) return bad("illegal base64 data in data[" + k + "]");
        data[k] = v;
      }
    }
    if (in.contains("stringData") && !in["stringData"].is_null()) {
      if (!in["stringData"].is_object()) return bad("stringData must be a map of strings");
      for (const auto& [k, v] : in["stringData"].items()) {
        if (!v.is_string()) return bad("stringData[" + k + "] must be a string");
        data[k] = Base64Encode(v.get_ref<const std::string&>());  // stringData wins, and is never stored
      }
    }
    if (in.contains("type") && !in["type"].is_string() && !in["type"].is_null()) return bad("type must be a string");
    if (in.contains("immutable") && !in["immutable"].is_boolean() && !in["immutable"].is_null()) {
      return bad("immutable must be a boolean");
    }
    Json obj = {{"kind", "Secret"}, {"apiVersion", "v1"}};
    obj["metadata"] = std::move(*meta);
    if (in.contains("immutable") && in["immutable"].is_boolean()) obj["immutable"] = in["immutable"];
    if (!data.empty()) obj["data"] = data;
    std::string type = in.contains("type") && in["type"].is_string() ? in["type"].get<std::string>() : "";
    obj["type"] = type.empty() ? "Opaque" : type;
    p.obj = std::move(obj);
    return p;
  }

  // ValidateSecret (k/k pkg/apis/core/validation).
  FieldErrors Validate(const Json& obj) const override {
    FieldErrors errs;
    const Json& meta = obj["metadata"];
    ValidateObjectMeta(meta, IsDns1123Subdomain, &errs);
    if (Result<std::optional<RotationPolicy>> p = RotationPolicyOf(obj); !p.ok()) {
      errs.push_back({FieldError::Type::kInvalid, "metadata.annotations", "", p.error().message()});
    }
    size_t total = 0;
    std::map<std::string, SecretBytes> decoded;
    if (obj.contains("data") && obj["data"].is_object()) {
      for (const auto& [k, v] : obj["data"].items()) {
        for (const std::string& e : IsConfigMapKey(k)) errs.push_back({FieldError::Type::kInvalid, "data[" + k + "]", k, e});
        if (!v.is_string()) continue;
        auto bytes = Base64DecodeSecret(v.get_ref<const std::string&>());
        if (!bytes.ok()) continue;
        total += bytes->size();
        decoded[k] = std::move(bytes).value();
      }
    }
    if (total > kMaxSecretSize) {
      errs.push_back({FieldError::Type::kTooLong, "data", "", "may not be more than " + std::to_string(kMaxSecretSize) + " bytes"});
    }
    std::string type = obj.value("type", "Opaque");
    auto require = [&](const std::string& key) {
      if (!decoded.count(key)) errs.push_back({FieldError::Type::kRequired, "data[" + key + "]", "", ""});
    };
    auto require_json = [&](const std::string& key) {
      auto it = decoded.find(key);
      if (it == decoded.end()) {
        errs.push_back({FieldError::Type::kRequired, "data[" + key + "]", "", ""});
      } else if (std::string why = GoMapDecodeError(it->second.view()); !why.empty()) {
        errs.push_back({FieldError::Type::kInvalid, "data[" + key + "]", "<secret contents redacted>", why});
      }
    };
    if (type == "kubernetes.io/service-account-token") {
      const Json& ann = meta.value("annotations", Json::object());
      if (!ann.is_object() || ann.value("kubernetes.io/service-account.name", "").empty()) {
        errs.push_back({FieldError::Type::kRequired, "metadata.annotations[kubernetes.io/service-account.name]", "", ""});
      }
    } else if (type == "kubernetes.io/dockercfg") {
      require_json(".dockercfg");
    } else if (type == "kubernetes.io/dockerconfigjson") {
      require_json(".dockerconfigjson");
    } else if (type == "kubernetes.io/basic-auth") {
      if (!decoded.count("username") && !decoded.count("password")) {
        errs.push_back({FieldError::Type::kRequired, "data[username]", "", ""});
        errs.push_back({FieldError::Type::kRequired, "data[password]", "", ""});
      }
    } else if (type == "kubernetes.io/ssh-auth") {
      auto it = decoded.find("ssh-privatekey");
      if (it == decoded.end() || it->second.empty()) errs.push_back({FieldError::Type::kRequired, "data[ssh-privatekey]", "", ""});
    } else if (type == "kubernetes.io/tls") {
      require("tls.crt");
      require("tls.key");
    }
    return errs;
  }

  FieldErrors ValidateUpdate(const Json& old_obj, const Json& new_obj) const override {
    FieldErrors errs;
    if (new_obj.value("type", "Opaque") != old_obj.value("type", "Opaque")) {
      errs.push_back({FieldError::Type::kInvalid, "type", new_obj.value("type", ""), "field is immutable"});
    }
    if (old_obj.value("immutable", false)) {
      if (!new_obj.value("immutable", false)) {
        errs.push_back({FieldError::Type::kForbidden, "immutable", "", "field is immutable when `immutable` is set"});
      }
      if (new_obj.value("data", Json::object()) != old_obj.value("data", Json::object())) {
        errs.push_back({FieldError::Type::kForbidden, "data", "", "field is immutable when `immutable` is set"});
      }
    }
    return errs;
  }

  bool KeepsHistory() const override { return true; }
  std::set<std::string> FieldSelectors() const override { return {"metadata.name", "metadata.namespace", "type"}; }
  std::string FieldValue(const Json& obj, const std::string& field) const override {
    if (field == "type") return obj.value("type", "");
    return Strategy::FieldValue(obj, field);
  }
};

// Role, ClusterRole, RoleBinding, ClusterRoleBinding (k/k pkg/registry/rbac).
class RbacStrategy : public Strategy {
 public:
  RbacStrategy(std::string kind, bool namespaced, std::set<std::string> top)
      : kind_(std::move(kind)), namespaced_(namespaced), top_(std::move(top)) {}

  Prepared PrepareForWrite(const Json& in, const std::string& ns, const std::string& field_validation) const override {
    Prepared p;
    std::string api_version = std::string(kRbacGroup) + "/v1";
    std::optional<Json> meta = PrepareMeta(in, ns, kind_, api_version, namespaced_, top_, field_validation, &p);
    if (!meta) return p;
    if (std::string why = ShapeOfRbac(kind_, in); !why.empty()) {
      p.error = BadRequest(kind_ + " in version \"v1\" cannot be handled as a " + kind_ + ": " + why);
      return p;
    }
    Json obj = {{"kind", kind_}, {"apiVersion", api_version}, {"metadata", std::move(*meta)}};
    for (const char* f : {"rules", "aggregationRule", "subjects", "roleRef"}) {
      if (top_.count(f) && in.contains(f) && !in[f].is_null()) obj[f] = in[f];
    }
    if (IsRole() && !obj.contains("rules")) obj["rules"] = nullptr;  // Go serialises an absent list as null
    p.obj = std::move(obj);
    return p;
  }
  FieldErrors Validate(const Json& obj) const override { return ValidateRbac(kind_, obj); }
  FieldErrors ValidateUpdate(const Json& old_obj, const Json& new_obj) const override {
    FieldErrors errs;
    if (!IsRole() && new_obj.value("roleRef", Json()) != old_obj.value("roleRef", Json())) {
      Json ref = new_obj.value("roleRef", Json::object());
      std::string literal = "rbac.RoleRef{APIGroup:" + Json(ref.value("apiGroup", "")).dump() + ", Kind:" +
                            Json(ref.value("kind", "")).dump() + ", Name:" + Json(ref.value("name", "")).dump() + "}";
      errs.push_back({FieldError::Type::kInvalid, "roleRef", literal, "cannot change roleRef", true});
    }
    return errs;
  }

 private:
  bool IsRole() const { return kind_ == "Role" || kind_ == "ClusterRole"; }
  std::string kind_;
  bool namespaced_;
  std::set<std::string> top_;
};

// v1 ServiceAccount (k/k pkg/registry/core/serviceaccount/strategy.go): a name (a DNS
// subdomain) and three optional fields sigil keeps as given. Tokens for it are issued through
// its token subresource (TokenRequest), never stored.
class ServiceAccountStrategy : public Strategy {
 public:
  Prepared PrepareForWrite(const Json& in, const std::string& ns, const std::string& field_validation) const override {
    Prepared p;
    static const std::set<std::string> kTop = {"kind", "apiVersion", "metadata", "secrets", "imagePullSecrets",
                                               "automountServiceAccountToken"};
    std::optional<Json> meta = PrepareMeta(in, ns, "ServiceAccount", "v1", true, kTop, field_validation, &p);
    if (!meta) return p;
    auto bad = [&](const std::string& why) {
      p.error = BadRequest("ServiceAccount in version \"v1\" cannot be handled as a ServiceAccount: " + why);
      return p;
    };
    Json obj = {{"kind", "ServiceAccount"}, {"apiVersion", "v1"}, {"metadata", std::move(*meta)}};
    for (const char* list : {"secrets", "imagePullSecrets"}) {
      if (!in.contains(list) || in[list].is_null()) continue;
      if (!in[list].is_array()) return bad(std::string(list) + " must be a list of object references");
      for (const Json& ref : in[list]) {
        if (!ref.is_object()) return bad(std::string(list) + " must be a list of object references");
        for (const auto& [k, v] : ref.items()) {
          if (!v.is_string() && !v.is_null()) return bad(std::string(list) + "." + k + " must be a string");
        }
      }
      obj[list] = in[list];
    }
    if (in.contains("automountServiceAccountToken") && !in["automountServiceAccountToken"].is_null()) {
      if (!in["automountServiceAccountToken"].is_boolean()) return bad("automountServiceAccountToken must be a boolean");
      obj["automountServiceAccountToken"] = in["automountServiceAccountToken"];
    }
    p.obj = std::move(obj);
    return p;
  }
  FieldErrors Validate(const Json& obj) const override {
    FieldErrors errs;
    ValidateObjectMeta(obj["metadata"], IsDns1123Subdomain, &errs);
    return errs;
  }
  FieldErrors ValidateUpdate(const Json&, const Json&) const override { return {}; }
};

// Namespaces are written through Registry's namespace operations (only labels and annotations
// change); the strategy validates them.
class NamespaceStrategy : public Strategy {
 public:
  Prepared PrepareForWrite(const Json&, const std::string&, const std::string&) const override {
    Prepared p;
    p.error = BadRequest("namespaces are written through the namespace operations");
    return p;
  }
  FieldErrors Validate(const Json& obj) const override {
    FieldErrors errs;
    ValidateObjectMeta(obj["metadata"], IsDns1123Label, &errs);
    return errs;
  }
  FieldErrors ValidateUpdate(const Json&, const Json&) const override { return {}; }
  std::set<std::string> FieldSelectors() const override { return {"metadata.name", "status.phase"}; }
  std::string FieldValue(const Json& obj, const std::string& field) const override {
    if (field == "status.phase") return obj.contains("status") ? obj["status"].value("phase", "") : std::string();
    return Strategy::FieldValue(obj, field);
  }
};

}  // namespace

std::string Strategy::FieldValue(const Json& obj, const std::string& field) const {
  if (field == "metadata.name") return obj["metadata"].value("name", "");
  if (field == "metadata.namespace") return obj["metadata"].value("namespace", "");
  return "";
}

const Resource& Secrets() {
  static const SecretStrategy s;
  static const Resource r{"", "Secret", "secrets", true, &s};
  return r;
}
const Resource& ServiceAccounts() {
  static const ServiceAccountStrategy s;
  static const Resource r{"", "ServiceAccount", "serviceaccounts", true, &s};
  return r;
}
const Resource& Namespaces() {
  static const NamespaceStrategy s;
  static const Resource r{"", "Namespace", "namespaces", false, &s};
  return r;
}
const Resource& Roles() {
  static const RbacStrategy s("Role", true, {"kind", "apiVersion", "metadata", "rules"});
  static const Resource r{kRbacGroup, "Role", "roles", true, &s};
  return r;
}
const Resource& ClusterRoles() {
  static const RbacStrategy s("ClusterRole", false, {"kind", "apiVersion", "metadata", "rules", "aggregationRule"});
  static const Resource r{kRbacGroup, "ClusterRole", "clusterroles", false, &s};
  return r;
}
const Resource& RoleBindings() {
  static const RbacStrategy s("RoleBinding", true, {"kind", "apiVersion", "metadata", "subjects", "roleRef"});
  static const Resource r{kRbacGroup, "RoleBinding", "rolebindings", true, &s};
  return r;
}
const Resource& ClusterRoleBindings() {
  static const RbacStrategy s("ClusterRoleBinding", false, {"kind", "apiVersion", "metadata", "subjects", "roleRef"});
  static const Resource r{kRbacGroup, "ClusterRoleBinding", "clusterrolebindings", false, &s};
  return r;
}

const std::vector<const Resource*>& RbacResources() {
  static const std::vector<const Resource*> v = {&Roles(), &ClusterRoles(), &RoleBindings(), &ClusterRoleBindings()};
  return v;
}

const Resource* RbacResource(const std::string& plural) {
  for (const Resource* r : RbacResources()) {
    if (r->plural == plural) return r;
  }
  return nullptr;
}

const std::vector<const Resource*>& NamespacedResources() {
  static const std::vector<const Resource*> v = {&Secrets(), &ServiceAccounts(), &Roles(), &RoleBindings()};
  return v;
}

ApiError ForResource(ApiError e, const Resource& r) {
  if (!r.group.empty() && e.details.is_object()) {
    e.details["kind"] = r.plural;
    e.details["group"] = r.group;
  }
  return e;
}

ApiError InvalidFor(const Resource& r, const std::string& name, const FieldErrors& errs) {
  ApiError e = Invalid(r.group.empty() ? r.kind : r.kind + "." + r.group, name, errs);
  if (!r.group.empty() && e.details.is_object()) {
    e.details["kind"] = r.kind;
    e.details["group"] = r.group;
  }
  return e;
}

}  // namespace sigil::registry
