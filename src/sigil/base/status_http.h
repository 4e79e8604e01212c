// base/status_http.h: the one table from a canonical status code to what the HTTP APIs answer:
// the HTTP status, and the Kubernetes metav1.Status reason. Every face and the registry map
// failures through it, so the same failure gets the same status on every path. Pure; thread-safe.
#pragma once

#include <string_view>

#include "sigil/base/status.h"

namespace sigil {

struct HttpError {
  int status;               // HTTP status code
  std::string_view reason;  // Kubernetes StatusReason; "" when Kubernetes has none (kube omits it)
};

// kOk is 200. kUnimplemented is 501 with no Kubernetes reason (kube-apiserver's generic server
// response has none for it; MethodNotAllowed is 405's).
HttpError HttpErrorFor(StatusCode code);

}  // namespace sigil
