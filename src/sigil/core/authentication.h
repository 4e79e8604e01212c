// core/authentication.h: the first step of the request pipeline, shared by every face: who is
// calling. A credential (client certificate, then a bearer token: sigil token, token file,
// service-account JWT) becomes one Identity; a refused credential is throttled per client
// address and recorded in the audit trail as kube-apiserver records one (user
// system:anonymous, stage ResponseStarted, code 401). The HTTP glue (answering the 401 after
// the delay) stays in the server. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sigil/audit/auditor.h"
#include "sigil/auth/authenticator.h"
#include "sigil/base/clock.h"
#include "sigil/base/identity.h"

namespace sigil::core {

struct Credentials {
  std::string_view authorization_header;  // "" when absent
  const auth::CertificateSubject* certificate = nullptr;  // a verified client certificate, if any
  std::string_view remote;                 // ip:port of the peer
  // For the audit record of a refusal. `uri` should not carry secrets (the Vault face passes
  // the path without its query).
  std::string_view method, uri, user_agent;
  int refused_code = 401;  // what a refusal is answered with (the Vault face: 403)
};

struct Authenticated {
  std::shared_ptr<const Identity> identity;  // set when the credential was accepted
  // Otherwise the request is answered 401 (503 when `unavailable`), with `warning` as a Warning
  // header if set, after `delay` (failed credentials from one address are slowed down).
  bool unavailable = false;
  std::string warning;
  std::chrono::milliseconds delay{0};
};

class Authentication {
 public:
  // `auditor` may be null (no trail).
  Authentication(const auth::Authenticator* authenticator, auth::FailureThrottle* throttle, audit::Auditor* auditor, Clock* clock)
      : authenticator_(authenticator), throttle_(throttle), auditor_(auditor), clock_(clock) {}

  Authenticated Authenticate(const Credentials& c) const;

 private:
  void AuditFailure(const Credentials& c) const;

  const auth::Authenticator* authenticator_;
  auth::FailureThrottle* throttle_;
  audit::Auditor* auditor_;
  Clock* clock_;
};

}  // namespace sigil::core
