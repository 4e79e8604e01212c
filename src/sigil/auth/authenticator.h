// auth/authenticator.h: turns a request's credentials into one Identity, as kube-apiserver's
// union authenticator does: a verified client certificate first (user = CN, groups = every O),
// then a bearer token (sigil's own tokens, then the static token file, then service-account
// JWTs). Every authenticated
// identity has the group system:authenticated. No credentials is "anonymous" (the caller
// answers 401 except on the health and version paths); a credential that does not check out
// is a failure, and failures from one client address are slowed down (FailureThrottle).
// Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "sigil/auth/service_account.h"
#include "sigil/auth/token_file.h"
#include "sigil/auth/token_store.h"
#include "sigil/base/identity.h"

namespace sigil::auth {

// The parts of a verified client certificate that authentication reads.
struct CertificateSubject {
  std::string common_name;
  std::vector<std::string> organizations;
  std::string sha256_hex;
};

struct AuthOutcome {
  std::optional<Identity> identity;  // set when authenticated
  bool presented = false;            // some credential was presented (so a miss is a failure)
  std::string warning;               // for a Warning header (never holds a credential)
};

class Authenticator {
 public:
  // `tokens` may be null (no sigil tokens); `token_file` and `service_accounts` may be empty.
  Authenticator(TokenStore* tokens, std::optional<TokenFile> token_file,
                std::optional<ServiceAccountAuthenticator> service_accounts = std::nullopt)
      : tokens_(tokens), token_file_(std::move(token_file)), service_accounts_(std::move(service_accounts)) {}

  Result<AuthOutcome> Authenticate(std::string_view authorization_header, const CertificateSubject* cert) const;
  // A bearer token alone (TokenReview): the identity, or nullopt with the reason in *why.
  // `use`: the token authenticates something (a request, or a TokenReview: the token proving
  // itself to whoever asks), so a limited-use Vault token spends a use.
  Result<std::optional<Identity>> AuthenticateToken(std::string_view token, std::string* why = nullptr, bool use = false) const;

 private:
  TokenStore* tokens_;
  std::optional<TokenFile> token_file_;
  std::optional<ServiceAccountAuthenticator> service_accounts_;
};

// Slows down clients that keep presenting bad credentials: after 5 failures within a minute
// from one address, each further failure is answered after a delay that doubles from 100 ms
// up to 5 s. Bounded memory: at most 10,000 addresses are tracked.
class FailureThrottle {
 public:
  explicit FailureThrottle(Clock* clock) : clock_(clock) {}
  // Records a failure from `address` (an IP, without port); returns how long to wait before
  // answering it.
  std::chrono::milliseconds Fail(const std::string& address);

 private:
  struct Entry {
    int failures = 0;
    Clock::TimePoint window_start;
  };
  Clock* clock_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace sigil::auth
