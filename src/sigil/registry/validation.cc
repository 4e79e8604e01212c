#include "sigil/registry/validation.h"

namespace sigil::registry {
namespace {

bool Alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool AlnumAnyCase(char c) { return Alnum(c) || (c >= 'A' && c <= 'Z'); }

bool MatchesLabel(std::string_view s) {  // [a-z0-9]([-a-z0-9]*[a-z0-9])?
  if (s.empty() || !Alnum(s.front()) || !Alnum(s.back())) return false;
  for (char c : s) {
    if (!Alnum(c) && c != '-') return false;
  }
  return true;
}

bool MatchesSubdomain(std::string_view s) {
  if (s.empty()) return false;
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    if (!MatchesLabel(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// Go's RegexError formatting: examples joined as "'a',  or 'b'" (two spaces, as upstream).
std::string RegexError(const std::string& msg, const std::string& regex, std::initializer_list<const char*> examples) {
  std::string out = msg;
  if (examples.size() > 0) {
    out += " (e.g. ";
    bool first = true;
    for (const char* e : examples) {
      if (!first) out += ",  or ";
      out += "'" + std::string(e) + "'";
      first = false;
    }
    out += ", ";
  } else {
    out += " (";
  }
  out += "regex used for validation is '" + regex + "')";
  return out;
}

std::string Quote(const std::string& s) { return Json(s).dump(); }

}  // namespace

std::string FieldError::Body() const {
  switch (type) {
    case Type::kInvalid:
      return "Invalid value: " + (value_is_go_literal ? value : Quote(value)) + (detail.empty() ? "" : ": " + detail);
    case Type::kNotSupported: return "Unsupported value: " + Quote(value) + ": supported values: " + detail;
    case Type::kRequired: return "Required value" + (detail.empty() ? "" : ": " + detail);
    case Type::kForbidden: return "Forbidden" + (detail.empty() ? "" : ": " + detail);
    case Type::kTooLong: return "Too long: " + detail;
    case Type::kDuplicate: return "Duplicate value: " + Quote(value);
  }
  return detail;
}

std::string FieldError::Reason() const {
  switch (type) {
    case Type::kInvalid: return "FieldValueInvalid";
    case Type::kRequired: return "FieldValueRequired";
    case Type::kForbidden: return "FieldValueForbidden";
    case Type::kTooLong: return "FieldValueTooLong";
    case Type::kDuplicate: return "FieldValueDuplicate";
    case Type::kNotSupported: return "FieldValueNotSupported";
  }
  return "FieldValueInvalid";
}

std::vector<std::string> IsDns1123Subdomain(const std::string& v) {
  std::vector<std::string> errs;
  if (v.size() > 253) errs.push_back("must be no more than 253 characters");
  if (!MatchesSubdomain(v)) {
    errs.push_back(RegexError("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                              "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", {"example.com"}));
  }
  return errs;
}

std::vector<std::string> IsDns1123Label(const std::string& v) {
  std::vector<std::string> errs;
  if (v.size() > 63) errs.push_back("must be no more than 63 characters");
  if (!MatchesLabel(v)) {
    errs.push_back(RegexError("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                              "[a-z0-9]([-a-z0-9]*[a-z0-9])?", {"my-name", "123-abc"}));
  }
  return errs;
}

std::vector<std::string> IsConfigMapKey(const std::string& v) {
  std::vector<std::string> errs;
  if (v.size() > 253) errs.push_back("must be no more than 253 characters");
  bool ok = !v.empty();
  for (char c : v) {
    if (!AlnumAnyCase(c) && c != '-' && c != '.' && c != '_') ok = false;
  }
  if (!ok) {
    errs.push_back(RegexError("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                              "[-._a-zA-Z0-9]+", {"key.name", "KEY_NAME", "key-name"}));
  }
  if (v == ".") {
    errs.push_back("must not be '.'");
  } else if (v == "..") {
    errs.push_back("must not be '..'");
  } else if (v.starts_with("..")) {
    errs.push_back("must not start with '..'");
  }
  return errs;
}

std::vector<std::string> IsQualifiedName(const std::string& v) {
  std::vector<std::string> errs;
  std::string name = v;
  size_t slash = v.find('/');
  if (slash != std::string::npos) {
    std::string prefix = v.substr(0, slash);
    name = v.substr(slash + 1);
    if (prefix.empty()) {
      errs.push_back("prefix part must be non-empty");
    } else {
      for (const std::string& e : IsDns1123Subdomain(prefix)) errs.push_back("prefix part " + e);
    }
    if (name.find('/') != std::string::npos) name = "";  // more than one slash
  }
  auto ok = [](const std::string& n) {
    if (n.empty() || !AlnumAnyCase(n.front()) || !AlnumAnyCase(n.back())) return false;
    for (char c : n) {
      if (!AlnumAnyCase(c) && c != '-' && c != '_' && c != '.') return false;
    }
    return true;
  };
  if (name.empty()) {
    errs.push_back("name part must be non-empty");
  } else {
    if (name.size() > 63) errs.push_back("name part must be no more than 63 characters");
    if (!ok(name)) {
      errs.push_back(RegexError("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                                "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", {"MyName", "my.name", "123-abc"}));
    }
  }
  return errs;
}

std::vector<std::string> IsValidLabelValue(const std::string& v) {
  std::vector<std::string> errs;
  if (v.size() > 63) errs.push_back("must be no more than 63 characters");
  if (v.empty()) return errs;
  bool ok = AlnumAnyCase(v.front()) && AlnumAnyCase(v.back());
  for (char c : v) {
    if (!AlnumAnyCase(c) && c != '-' && c != '_' && c != '.') ok = false;
  }
  if (!ok) {
    errs.push_back(RegexError("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                              "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", {"MyValue", "my_value", "12345"}));
  }
  return errs;
}

void ValidateObjectMeta(const Json& meta, std::vector<std::string> (*name_check)(const std::string&), FieldErrors* errs) {
  std::string name = meta.value("name", "");
  if (name.empty()) {
    errs->push_back({FieldError::Type::kRequired, "metadata.name", "", "name or generateName is required"});
  } else {
    for (const std::string& e : name_check(name)) errs->push_back({FieldError::Type::kInvalid, "metadata.name", name, e});
  }
  ValidateLabelsAndAnnotations(meta, errs);
}

void ValidateLabelsAndAnnotations(const Json& meta, FieldErrors* errs) {
  if (meta.contains("labels") && meta["labels"].is_object()) {
    for (const auto& [k, v] : meta["labels"].items()) {
      for (const std::string& e : IsQualifiedName(k)) errs->push_back({FieldError::Type::kInvalid, "metadata.labels", k, e});
      std::string val = v.is_string() ? v.get<std::string>() : "";
      for (const std::string& e : IsValidLabelValue(val)) errs->push_back({FieldError::Type::kInvalid, "metadata.labels", val, e});
    }
  }
  if (meta.contains("annotations") && meta["annotations"].is_object()) {
    size_t total = 0;
    for (const auto& [k, v] : meta["annotations"].items()) {
      for (const std::string& e : IsQualifiedName(k)) errs->push_back({FieldError::Type::kInvalid, "metadata.annotations", k, e});
      total += k.size() + (v.is_string() ? v.get_ref<const std::string&>().size() : 0);
    }
    if (total > 256 * 1024) {
      errs->push_back({FieldError::Type::kTooLong, "metadata.annotations", "", "may not be more than 262144 bytes"});
    }
  }
}

Json ApiError::ToJson() const {
  Json j = {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", Json::object()}, {"status", "Failure"},
            {"message", message}};
  if (!reason.empty()) j["reason"] = reason;  // kube omits an empty reason
  if (!details.is_null()) j["details"] = details;
  j["code"] = code;
  return j;
}

ApiError NotFound(const std::string& resource, const std::string& name) {
  return {404, "NotFound", resource + " " + Quote(name) + " not found", Json{{"name", name}, {"kind", resource}}};
}

ApiError AlreadyExists(const std::string& resource, const std::string& name) {
  return {409, "AlreadyExists", resource + " " + Quote(name) + " already exists", Json{{"name", name}, {"kind", resource}}};
}

ApiError Conflict(const std::string& resource, const std::string& name, const std::string& why) {
  return {409, "Conflict", "Operation cannot be fulfilled on " + resource + " " + Quote(name) + ": " + why,
          Json{{"name", name}, {"kind", resource}}};
}

ApiError ModifiedConflict(const std::string& resource, const std::string& name) {
  return Conflict(resource, name, "the object has been modified; please apply your changes to the latest version and try again");
}

ApiError Invalid(const std::string& kind, const std::string& name, const FieldErrors& errs) {
  std::string agg;
  Json causes = Json::array();
  for (const FieldError& e : errs) {
    causes.push_back({{"reason", e.Reason()}, {"message", e.Body()}, {"field", e.field}});
  }
  if (errs.size() == 1) {
    agg = errs[0].field + ": " + errs[0].Body();
  } else {
    agg = "[";
    for (size_t i = 0; i < errs.size(); ++i) agg += (i ? ", " : "") + errs[i].field + ": " + errs[i].Body();
    agg += "]";
  }
  return {422, "Invalid", kind + " " + Quote(name) + " is invalid: " + agg,
          Json{{"name", name}, {"kind", kind}, {"causes", causes}}};
}

ApiError BadRequest(const std::string& message) { return {400, "BadRequest", message, nullptr}; }

ApiError MethodNotAllowed() {
  return {405, "MethodNotAllowed", "the server does not allow this method on the requested resource", nullptr};
}

ApiError UnsupportedMediaType(const std::string& content_type) {
  return {415, "UnsupportedMediaType",
          "the body of the request was in an unknown format - accepted media types include: application/json, "
          "application/vnd.kubernetes.protobuf (got \"" + content_type + "\")",
          nullptr};
}

ApiError InternalError(const std::string& message) {
  return {500, "InternalError", "Internal error occurred: " + message, nullptr};
}

ApiError FromStatusMessage(int code, const std::string& reason, const std::string& message) {
  return {code, reason, message, nullptr};
}

std::vector<std::string> IsValidPathSegmentName(const std::string& v) {
  if (v == "." || v == "..") return {"may not be '" + v + "'"};
  std::vector<std::string> errs;
  if (v.find('/') != std::string::npos) errs.push_back("may not contain '/'");
  if (v.find('%') != std::string::npos) errs.push_back("may not contain '%'");
  return errs;
}

namespace {

bool IsStringList(const Json& j) {
  if (j.is_null()) return true;
  if (!j.is_array()) return false;
  for (const Json& v : j) {
    if (!v.is_string()) return false;
  }
  return true;
}

bool IsStringFields(const Json& o, std::initializer_list<const char*> fields) {
  if (!o.is_object()) return false;
  for (const char* f : fields) {
    if (o.contains(f) && !o[f].is_string() && !o[f].is_null()) return false;
  }
  return true;
}

std::vector<std::string> Strings(const Json& o, const char* key) {
  std::vector<std::string> out;
  if (o.contains(key) && o[key].is_array()) {
    for (const Json& v : o[key]) out.push_back(v.get<std::string>());
  }
  return out;
}

// Go's %#v of a []string, as kube-apiserver prints an invalid list.
std::string GoStrings(const std::vector<std::string>& v) {
  std::string out = "[]string{";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + Quote(v[i]);
  return out + "}";
}

}  // namespace

std::string ShapeOfRbac(const std::string& kind, const Json& in) {
  if (in.contains("rules") && !in["rules"].is_null()) {
    if (!in["rules"].is_array()) return "rules must be a list of PolicyRules";
    for (const Json& r : in["rules"]) {
      if (!r.is_object()) return "rules must be a list of PolicyRules";
      for (const char* f : {"verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"}) {
        if (r.contains(f) && !IsStringList(r[f])) return std::string("rules[].") + f + " must be a list of strings";
      }
    }
  }
  if (kind == "ClusterRole" && in.contains("aggregationRule") && !in["aggregationRule"].is_null()) {
    const Json& a = in["aggregationRule"];
    if (!a.is_object()) return "aggregationRule must be an object";
    if (a.contains("clusterRoleSelectors") && !a["clusterRoleSelectors"].is_null()) {
      if (!a["clusterRoleSelectors"].is_array()) return "aggregationRule.clusterRoleSelectors must be a list of label selectors";
      for (const Json& sel : a["clusterRoleSelectors"]) {
        if (!sel.is_object()) return "aggregationRule.clusterRoleSelectors must be a list of label selectors";
      }
    }
  }
  if (in.contains("roleRef") && !in["roleRef"].is_null() && !IsStringFields(in["roleRef"], {"apiGroup", "kind", "name"})) {
    return "roleRef must be an object of strings (apiGroup, kind, name)";
  }
  if (in.contains("subjects") && !in["subjects"].is_null()) {
    if (!in["subjects"].is_array()) return "subjects must be a list of Subjects";
    for (const Json& sub : in["subjects"]) {
      if (!IsStringFields(sub, {"kind", "apiGroup", "name", "namespace"})) return "subjects must be a list of Subjects";
    }
  }
  return "";
}

constexpr size_t kMaxRbacNameBytes = 253;

FieldErrors ValidateRbac(const std::string& kind, const Json& obj) {
  FieldErrors errs;
  const std::string rbac = "rbac.authorization.k8s.io";
  ValidateObjectMeta(obj["metadata"], IsValidPathSegmentName, &errs);
  // kube-apiserver sets no length limit on RBAC names (etcd takes long keys); sigil's store
  // takes keys up to 511 bytes, so names are held to a DNS subdomain's 253.
  if (obj["metadata"].value("name", "").size() > kMaxRbacNameBytes) {
    errs.push_back({FieldError::Type::kTooLong, "metadata.name", "", "may not be more than " + std::to_string(kMaxRbacNameBytes) + " bytes"});
  }
  bool namespaced = kind == "Role" || kind == "RoleBinding";
  if (kind == "Role" || kind == "ClusterRole") {
    if (obj.contains("rules") && obj["rules"].is_array()) {
      for (size_t i = 0; i < obj["rules"].size(); ++i) {
        const Json& r = obj["rules"][i];
        std::string at = "rules[" + std::to_string(i) + "].";
        if (Strings(r, "verbs").empty()) {
          errs.push_back({FieldError::Type::kRequired, at + "verbs", "", "verbs must contain at least one value"});
        }
        std::vector<std::string> urls = Strings(r, "nonResourceURLs");
        if (!urls.empty()) {
          if (namespaced) {
            errs.push_back({FieldError::Type::kInvalid, at + "nonResourceURLs", GoStrings(urls),
                            "namespaced rules cannot apply to non-resource URLs", true});
          }
          if (!Strings(r, "apiGroups").empty() || !Strings(r, "resources").empty()) {
            errs.push_back({FieldError::Type::kInvalid, at + "nonResourceURLs", GoStrings(urls),
                            "rules cannot apply to both regular resources and non-resource URLs", true});
          }
          continue;
        }
        if (Strings(r, "apiGroups").empty()) {
          errs.push_back({FieldError::Type::kRequired, at + "apiGroups", "", "resource rules must supply at least one api group"});
        }
        if (Strings(r, "resources").empty()) {
          errs.push_back({FieldError::Type::kRequired, at + "resources", "", "resource rules must supply at least one resource"});
        }
      }
    }
    if (kind == "ClusterRole" && obj.contains("aggregationRule") && obj["aggregationRule"].is_object()) {
      const Json& a = obj["aggregationRule"];
      if (!a.contains("clusterRoleSelectors") || !a["clusterRoleSelectors"].is_array() || a["clusterRoleSelectors"].empty()) {
        errs.push_back({FieldError::Type::kRequired, "aggregationRule.clusterRoleSelectors", "",
                        "at least one clusterRoleSelector required if aggregationRule is non-nil"});
      }
    }
    return errs;
  }
  // RoleBinding, ClusterRoleBinding
  Json ref = obj.value("roleRef", Json::object());
  std::string ref_group = ref.value("apiGroup", ""), ref_kind = ref.value("kind", ""), ref_name = ref.value("name", "");
  if (ref_group != rbac) errs.push_back({FieldError::Type::kNotSupported, "roleRef.apiGroup", ref_group, Quote(rbac)});
  if (namespaced && ref_kind != "Role" && ref_kind != "ClusterRole") {
    errs.push_back({FieldError::Type::kNotSupported, "roleRef.kind", ref_kind, "\"Role\", \"ClusterRole\""});
  } else if (!namespaced && ref_kind != "ClusterRole") {
    errs.push_back({FieldError::Type::kNotSupported, "roleRef.kind", ref_kind, "\"ClusterRole\""});
  }
  if (ref_name.empty()) {
    errs.push_back({FieldError::Type::kRequired, "roleRef.name", "", ""});
  } else {
    for (const std::string& e : IsValidPathSegmentName(ref_name)) errs.push_back({FieldError::Type::kInvalid, "roleRef.name", ref_name, e});
  }
  if (obj.contains("subjects") && obj["subjects"].is_array()) {
    for (size_t i = 0; i < obj["subjects"].size(); ++i) {
      const Json& sub = obj["subjects"][i];
      std::string at = "subjects[" + std::to_string(i) + "].";
      std::string sk = sub.value("kind", ""), sg = sub.value("apiGroup", ""), sn = sub.value("name", "");
      if (sn.empty()) errs.push_back({FieldError::Type::kRequired, at + "name", "", ""});
      if (sk == "ServiceAccount") {
        if (!sg.empty()) errs.push_back({FieldError::Type::kNotSupported, at + "apiGroup", sg, "\"\""});
        if (!sn.empty()) {
          for (const std::string& e : IsDns1123Subdomain(sn)) errs.push_back({FieldError::Type::kInvalid, at + "name", sn, e});
        }
        if (!namespaced && sub.value("namespace", "").empty()) errs.push_back({FieldError::Type::kRequired, at + "namespace", "", ""});
      } else if (sk == "User" || sk == "Group") {
        if (sg != rbac) errs.push_back({FieldError::Type::kNotSupported, at + "apiGroup", sg, Quote(rbac)});
      } else {
        errs.push_back({FieldError::Type::kNotSupported, at + "kind", sk, "\"ServiceAccount\", \"User\", \"Group\""});
      }
    }
  }
  return errs;
}

}  // namespace sigil::registry
