#include "sigil/api/http/errors.h"

#include <nlohmann/json.hpp>

#include "sigil/base/status_http.h"

namespace sigil::http {

Response MakeResponse(const Request& req, HttpStatus status, std::string_view content_type, std::string_view body) {
  Response res{status, req.version()};
  res.set(boost::beast::http::field::content_type, content_type);
  res.keep_alive(req.keep_alive());
  res.body().assign(body.data(), body.size());
  res.prepare_payload();
  return res;
}

HttpStatus HttpStatusFor(StatusCode code) { return static_cast<HttpStatus>(HttpErrorFor(code).status); }

std::string_view KubeReasonFor(StatusCode code) { return HttpErrorFor(code).reason; }

Response ErrorResponseRaw(unsigned version, std::string_view target, HttpStatus http_status, std::string_view reason,
                          std::string_view message) {
  nlohmann::json j;
  bool vault = target.starts_with("/v1/");
  if (vault) {
    j["errors"] = nlohmann::json::array({std::string(message)});
  } else {
    j = {{"kind", "Status"},
         {"apiVersion", "v1"},
         {"metadata", nlohmann::json::object()},
         {"status", "Failure"},
         {"message", std::string(message)}};
    if (!reason.empty()) j["reason"] = std::string(reason);  // kube omits an empty reason
    j["code"] = static_cast<int>(http_status);
  }
  Response res{http_status, version};
  res.set(boost::beast::http::field::content_type, "application/json");
  std::string body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  res.body().assign(body.data(), body.size());
  res.prepare_payload();
  return res;
}

Response ErrorResponse(const Request& req, const sigil::Status& status) {
  Response res = ErrorResponseRaw(req.version(), req.target(), HttpStatusFor(status.code()),
                                  KubeReasonFor(status.code()), status.message());
  res.keep_alive(req.keep_alive());
  return res;
}

}  // namespace sigil::http
