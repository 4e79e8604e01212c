#include "sigil/api/kubernetes/validation.h"

namespace sigil::kube {
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
    case Type::kInvalid: return "Invalid value: " + Quote(value) + (detail.empty() ? "" : ": " + detail);
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
            {"message", message}, {"reason", reason}};
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

}  // namespace sigil::kube
