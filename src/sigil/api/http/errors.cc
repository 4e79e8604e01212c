#include "sigil/api/http/errors.h"

#include <nlohmann/json.hpp>

namespace sigil::http {

Response MakeResponse(const Request& req, HttpStatus status, std::string_view content_type, std::string_view body) {
  Response res{status, req.version()};
  res.set(boost::beast::http::field::content_type, content_type);
  res.keep_alive(req.keep_alive());
  res.body().assign(body.data(), body.size());
  res.prepare_payload();
  return res;
}

HttpStatus HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return HttpStatus::ok;
    case StatusCode::kInvalidArgument: return HttpStatus::bad_request;
    case StatusCode::kOutOfRange: return HttpStatus::gone;  // Kubernetes: watch/list from a compacted version
    case StatusCode::kNotFound: return HttpStatus::not_found;
    case StatusCode::kAlreadyExists: return HttpStatus::conflict;
    case StatusCode::kAborted: return HttpStatus::conflict;
    case StatusCode::kFailedPrecondition: return HttpStatus::conflict;
    case StatusCode::kPermissionDenied: return HttpStatus::forbidden;
    case StatusCode::kUnauthenticated: return HttpStatus::unauthorized;
    case StatusCode::kResourceExhausted: return HttpStatus::insufficient_storage;
    case StatusCode::kDeadlineExceeded: return HttpStatus::gateway_timeout;
    case StatusCode::kUnimplemented: return HttpStatus::not_implemented;
    case StatusCode::kUnavailable: return HttpStatus::service_unavailable;
    case StatusCode::kCancelled:
    case StatusCode::kUnknown:
    case StatusCode::kInternal:
    case StatusCode::kDataLoss: return HttpStatus::internal_server_error;
  }
  return HttpStatus::internal_server_error;
}

std::string_view KubeReasonFor(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument: return "BadRequest";
    case StatusCode::kOutOfRange: return "Expired";
    case StatusCode::kNotFound: return "NotFound";
    case StatusCode::kAlreadyExists: return "AlreadyExists";
    case StatusCode::kAborted:
    case StatusCode::kFailedPrecondition: return "Conflict";
    case StatusCode::kPermissionDenied: return "Forbidden";
    case StatusCode::kUnauthenticated: return "Unauthorized";
    case StatusCode::kResourceExhausted: return "InsufficientStorage";
    case StatusCode::kDeadlineExceeded: return "Timeout";
    case StatusCode::kUnavailable: return "ServiceUnavailable";
    case StatusCode::kUnimplemented: return "MethodNotAllowed";
    default: return "InternalError";
  }
}

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
         {"message", std::string(message)},
         {"reason", std::string(reason)},
         {"code", static_cast<int>(http_status)}};
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
