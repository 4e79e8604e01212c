// api/kubernetes/bodies.cc: Request bodies (JSON, apply YAML, protobuf), duplicate fields, patches, write options.
#include <set>

#include "sigil/api/kubernetes/impl.h"
#include "sigil/api/kubernetes/protobuf.h"
#include "sigil/api/kubernetes/yaml_json.h"

namespace sigil::kube {

// fieldValidation for fields given twice, as for unknown fields: Strict refuses (400), Warn
// (the default) adds warnings, Ignore ignores.
std::optional<ApiError> KubernetesApi::Impl::CheckDuplicates(const Decoded& d, const std::map<std::string, std::string>& q,
                                               std::vector<std::string>* warnings) {
  if (d.duplicates.empty()) return std::nullopt;
  std::string fv = Param(q, "fieldValidation");
  if (fv == "Ignore") return std::nullopt;
  if (fv == "Strict") {
    std::string m = "strict decoding error: ";
    for (size_t i = 0; i < d.duplicates.size(); ++i) m += (i ? ", " : "") + std::string("duplicate field \"") + d.duplicates[i] + "\"";
    return BadRequest(m);
  }
  for (const std::string& f : d.duplicates) warnings->push_back("duplicate field \"" + f + "\"");
  return std::nullopt;
}

void KubernetesApi::Impl::AddWarnings(http::Response* res, const std::vector<std::string>& warnings) {
  for (const std::string& w : warnings) res->insert("Warning", "299 - " + Json(w).dump());
}

KubernetesApi::Impl::Decoded KubernetesApi::Impl::DecodeBody(const http::Request& req, std::string_view kind) {
  Decoded d;
  auto it = req.find(boost::beast::http::field::content_type);
  std::string ct = it == req.end() ? "application/json" : std::string(it->value());
  std::string base = ct.substr(0, ct.find(';'));
  if (base == kProtobufContentType && !kind.empty()) {
    auto j = DecodeProtobufObject(std::string_view(req.body().data(), req.body().size()), kind);
    if (!j.ok()) {
      d.error = BadRequest(std::string(kind) + " in version \"v1\" cannot be handled as a " + std::string(kind) + ": " +
                           j.error().message());
      return d;
    }
    d.json = std::move(j).value();
    d.ok = true;
    return d;
  }
  std::string_view body(req.body().data(), req.body().size());
  if (base == "application/apply-patch+yaml") {
    auto j = YamlToJson(body);
    if (!j.ok()) {
      d.error = BadRequest(j.error().message());
      return d;
    }
    d.json = std::move(j).value();
    d.ok = true;
    return d;
  }
  if (base != "application/json" && base != "application/merge-patch+json" &&
      base != "application/strategic-merge-patch+json" && base != "application/json-patch+json") {
    d.error = UnsupportedMediaType(ct);
    return d;
  }
  if (!DepthOk(body)) {
    d.error = BadRequest("the request body is nested too deeply (more than " + std::to_string(kMaxJsonDepth) + " levels)");
    return d;
  }
  try {
    // The callback notes keys given twice in one object (nlohmann keeps the last).
    std::vector<std::set<std::string>> seen;
    std::vector<std::string> path;
    d.json = Json::parse(body, [&](int depth, nlohmann::json::parse_event_t event, Json& parsed) {
      using E = nlohmann::json::parse_event_t;
      if (event == E::object_start) {
        seen.resize(static_cast<size_t>(depth) + 1);
        seen[static_cast<size_t>(depth)].clear();
      } else if (event == E::key && depth >= 1 && static_cast<size_t>(depth) <= seen.size()) {
        const std::string& k = parsed.get_ref<const std::string&>();
        path.resize(static_cast<size_t>(depth));
        path[static_cast<size_t>(depth) - 1] = k;
        if (!seen[static_cast<size_t>(depth) - 1].insert(k).second) {
          std::string full;
          for (const std::string& e : path) full += (full.empty() ? "" : ".") + e;
          d.duplicates.push_back(full);
        }
      }
      return true;
    });
  } catch (const nlohmann::json::parse_error& e) {
    // Not e.what(): it quotes the input, which may be a secret.
    d.error = BadRequest("error decoding the request body as JSON: syntax error at byte " + std::to_string(e.byte));
    return d;
  }
  d.ok = true;
  return d;
}

std::string KubernetesApi::Impl::Manager(const http::Request& req, const std::map<std::string, std::string>& q) {
  std::string m = Param(q, "fieldManager");
  if (!m.empty()) return m;
  auto it = req.find(boost::beast::http::field::user_agent);
  std::string ua = it == req.end() ? "unknown" : std::string(it->value());
  return ua.substr(0, ua.find('/'));
}

// Common checks of write options; returns an error message or "".
std::string KubernetesApi::Impl::CheckWriteOptions(const std::map<std::string, std::string>& q) {
  std::string dry = Param(q, "dryRun");
  if (!dry.empty() && dry != "All") return "Invalid dryRun value: \"" + dry + "\": supported values: \"All\"";
  std::string fv = Param(q, "fieldValidation");
  if (!fv.empty() && fv != "Strict" && fv != "Warn" && fv != "Ignore") {
    return "Invalid fieldValidation value: \"" + fv + "\": supported values: \"Ignore\", \"Warn\", \"Strict\"";
  }
  if (Param(q, "fieldManager").size() > 128) return "fieldManager: Too long: may not be more than 128 bytes";
  return "";
}

// A JSON patch (RFC 6902) or a merge patch applied to `current`. A strategic merge patch is a
// JSON merge patch for every kind sigil serves: their only lists with merge strategies are in
// metadata (finalizers, ownerReferences), which sigil replaces, and RBAC's rules and subjects
// are atomic.
std::optional<ApiError> KubernetesApi::Impl::ApplyPatch(const std::string& content_type, const Json& patch, const Json& current, Json* next) {
  if (content_type == "application/json-patch+json") {
    if (patch.is_null()) {  // Go decodes null into an empty patch
      *next = current;
      return std::nullopt;
    }
    if (!patch.is_array()) {
      // kube-apiserver's words: the decoder's error, as a 400.
      const char* type = patch.is_object() ? "object" : patch.is_string() ? "string" : patch.is_boolean() ? "bool" : "number";
      return BadRequest(std::string("json: cannot unmarshal ") + type + " into Go value of type jsonpatch.Patch");
    }
    try {
      *next = current.patch(patch);
    } catch (const nlohmann::json::exception&) {
      // RFC 6902 failures (a failing test op, a missing path, an unknown op): kube-apiserver
      // answers these with its generic 422, whose message does not carry the patch's error.
      return ApiError{422, "Invalid", "the server rejected our request due to an error in our request", Json::object()};
    }
    return std::nullopt;
  }
  if (!patch.is_object()) return BadRequest("a merge patch must be a JSON object");
  *next = current;
  next->merge_patch(patch);
  return std::nullopt;
}

}  // namespace sigil::kube
