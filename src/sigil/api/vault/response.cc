#include "sigil/api/vault/response.h"

#include "sigil/base/status_http.h"
#include "sigil/crypto/random.h"

namespace sigil::vault {
namespace {

Reply WithBody(int status, const Json& body) {
  Reply r;
  r.status = status;
  r.content_type = "application/json";
  std::string text = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  r.body.assign(text.data(), text.size());
  return r;
}

Json EnvelopeJson(Json data, const std::vector<std::string>& warnings, Json auth) {
  return Json{{"request_id", crypto::RandomUuid()},
              {"lease_id", ""},
              {"renewable", false},
              {"lease_duration", 0},
              {"data", std::move(data)},
              {"wrap_info", nullptr},
              {"warnings", warnings.empty() ? Json(nullptr) : Json(warnings)},
              {"auth", std::move(auth)}};
}

}  // namespace

Reply Envelope(Json data, const std::vector<std::string>& warnings, Json auth) {
  return WithBody(200, EnvelopeJson(std::move(data), warnings, std::move(auth)));
}

Reply LogicalEnvelope(Json data, int64_t lease_duration, const std::vector<std::string>& warnings, int status) {
  Json j = EnvelopeJson(std::move(data), warnings, nullptr);
  j["lease_duration"] = lease_duration;
  return WithBody(status, j);
}

Reply LeasedEnvelope(Json data, const std::string& lease_id, bool renewable, int64_t lease_duration,
                     const std::vector<std::string>& warnings) {
  Json j = EnvelopeJson(std::move(data), warnings, nullptr);
  j["lease_id"] = lease_id;
  j["renewable"] = renewable;
  j["lease_duration"] = lease_duration;
  return WithBody(200, j);
}

Reply LeaseEnvelope(const std::string& lease_id, bool renewable, int64_t lease_duration, const std::vector<std::string>& warnings) {
  Json j = EnvelopeJson(nullptr, warnings, nullptr);
  j["lease_id"] = lease_id;
  j["renewable"] = renewable;
  j["lease_duration"] = lease_duration;
  return WithBody(200, j);
}

Reply SysInjected(Json data, const std::vector<std::string>& warnings) {
  Json top = EnvelopeJson(data, warnings, nullptr);
  if (data.is_object()) {
    for (auto& [k, v] : data.items()) {
      if (!top.contains(k)) top[k] = v;
    }
  }
  return WithBody(200, top);
}

Reply Raw(int status, const Json& body) { return WithBody(status, body); }

Reply NoContent(const std::vector<std::string>& warnings) {
  if (!warnings.empty()) return Envelope(nullptr, warnings);
  Reply r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

Reply NotFound() { return WithBody(404, Json{{"errors", Json::array()}}); }

Reply Error(int status, const std::string& message) { return WithBody(status, Json{{"errors", Json::array({message})}}); }

std::optional<Reply> RefuseUnsupported(const Json& body, std::initializer_list<const char*> fields) {
  for (const char* f : fields) {
    auto it = body.find(f);
    if (it == body.end() || it->is_null()) continue;
    bool empty = (it->is_string() && (it->get_ref<const std::string&>().empty() || *it == "0" || *it == "false")) ||
                 (it->is_array() && it->empty()) || (it->is_number() && it->get<double>() == 0) ||
                 (it->is_boolean() && !it->get<bool>());
    if (!empty) return Error(400, std::string("\"") + f + "\" is not supported by sigil yet");
  }
  return std::nullopt;
}

http::Response ToHttp(const http::Request& req, Reply r) {
  http::Response res{static_cast<http::HttpStatus>(r.status), req.version()};
  if (!r.content_type.empty()) res.set(boost::beast::http::field::content_type, r.content_type);
  for (auto& [k, v] : r.headers) res.insert(k, v);
  res.keep_alive(req.keep_alive());
  // HEAD: the status and headers of the GET, no body (and Content-Length 0, since the HTTP
  // layer writes whole messages). 1xx, 204 and 304 never carry one (sys/health answers the
  // status a query asks for, e.g. activecode=204).
  bool bodiless = r.status < 200 || r.status == 204 || r.status == 304;
  if (req.method() != http::Verb::head && !bodiless) res.body() = std::move(r.body);
  res.prepare_payload();
  return res;
}

Reply VaultErrors::Render(const Status& s, const core::RequestInfo&) const {
  if (s.code() == StatusCode::kPermissionDenied) return Error(403, "permission denied");
  return Error(HttpErrorFor(s.code()).status, s.message());
}

}  // namespace sigil::vault
