// api/http/errors.h: the table of base/status_http.h in Beast's types; and error responses in the format of the API a path
// belongs to (/v1/... is Vault's {"errors":[...]}, everything else Kubernetes' metav1.Status).
// Messages come from Status messages, which never contain secret values.
#pragma once

#include <string_view>

#include "sigil/api/http/types.h"
#include "sigil/base/status.h"

namespace sigil::http {

HttpStatus HttpStatusFor(StatusCode code);
// Kubernetes metav1.StatusReason for a code ("NotFound", "AlreadyExists", ...).
std::string_view KubeReasonFor(StatusCode code);

// An error response for `target` (the request path decides the format).
Response ErrorResponse(const Request& req, const sigil::Status& status);
// An error for a request that could not be parsed (no Request available).
Response ErrorResponseRaw(unsigned version, std::string_view target, HttpStatus http_status, std::string_view reason,
                          std::string_view message);

}  // namespace sigil::http
