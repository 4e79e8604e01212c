#include "sigil/base/status_http.h"

namespace sigil {

HttpError HttpErrorFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return {200, ""};
    case StatusCode::kInvalidArgument: return {400, "BadRequest"};
    case StatusCode::kOutOfRange: return {410, "Expired"};  // Kubernetes: list or watch from a compacted version
    case StatusCode::kNotFound: return {404, "NotFound"};
    case StatusCode::kAlreadyExists: return {409, "AlreadyExists"};
    case StatusCode::kAborted:
    case StatusCode::kFailedPrecondition: return {409, "Conflict"};
    case StatusCode::kPermissionDenied: return {403, "Forbidden"};
    case StatusCode::kUnauthenticated: return {401, "Unauthorized"};
    case StatusCode::kResourceExhausted: return {507, "InsufficientStorage"};
    case StatusCode::kDeadlineExceeded: return {504, "Timeout"};
    case StatusCode::kUnimplemented: return {501, ""};
    case StatusCode::kUnavailable: return {503, "ServiceUnavailable"};
    case StatusCode::kCancelled:
    case StatusCode::kUnknown:
    case StatusCode::kInternal:
    case StatusCode::kDataLoss: return {500, "InternalError"};
  }
  return {500, "InternalError"};
}

}  // namespace sigil
