// auth/service_account.h: Kubernetes service-account tokens (bound TokenRequest JWTs, RS256 or
// ES256), verified as kube-apiserver verifies them (k/k pkg/serviceaccount/claims.go): the
// signature against the configured public keys, iss among the configured issuers, aud sharing
// one of the accepted audiences, exp present and not passed and nbf reached (60 s leeway, as
// go-jose's default), sub "system:serviceaccount:<ns>:<name>" agreeing with the
// "kubernetes.io" claim. The identity: user = sub, uid = the service account's uid, groups
// system:serviceaccounts, system:serviceaccounts:<ns>, system:authenticated; extras for the
// bound pod and node and the credential id (JTI=<jti>).
//
// Not done (documented): legacy secret-based tokens (no exp) are refused; sigil does not hold
// pods, nodes or service accounts, so it cannot check that bound objects still exist.
// Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sigil/base/clock.h"
#include "sigil/base/identity.h"
#include "sigil/crypto/jwt.h"

namespace sigil::auth {

struct ServiceAccountConfig {
  std::vector<std::string> issuers;
  std::vector<std::string> audiences;  // empty: the issuers
  crypto::JwtKeySet keys;
  // Vault's Kubernetes auth method checks the issuer only when configured to, and the audience
  // only when the role names one: these switch the two checks off.
  bool any_issuer = false;
  bool any_audience = false;
  // Tokens signed with this key (by its kid) are sigil's own (auth/service_account_issuer.h):
  // each must name a service account that still exists with the uid in the token. (By key, not
  // issuer: sigil's issuer may well be the cluster's, whose tokens name accounts sigil lacks.)
  std::string own_key_id;
  std::function<bool(const std::string& ns, const std::string& name, const std::string& uid)> still_exists;
};

class ServiceAccountAuthenticator {
 public:
  ServiceAccountAuthenticator(ServiceAccountConfig config, Clock* clock) : config_(std::move(config)), clock_(clock) {}

  // The identity of a valid token; otherwise kUnauthenticated with the reason (never the token).
  Result<Identity> Authenticate(std::string_view token) const;

  // Whether `token` has the shape of a JWT (so other authenticators need not try it).
  static bool LooksLikeJwt(std::string_view token);

 private:
  ServiceAccountConfig config_;
  Clock* clock_;
};

}  // namespace sigil::auth
