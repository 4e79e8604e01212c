// auth/service_account_issuer.h: service-account tokens that sigil signs itself (the
// TokenRequest API, `kubectl create token`), as kube-apiserver signs them: ES256 JWTs with the
// key id kube-apiserver derives (base64url of the SHA-256 of the public key's PKIX DER), and
// the claims it writes (k/k pkg/serviceaccount/claims.go): iss, sub
// "system:serviceaccount:<ns>:<name>", aud, exp, iat, nbf, jti, and "kubernetes.io" with the
// namespace and the service account's name and uid.
//
// The key is made on first use and kept in the store under the barrier (encrypted like every
// value); one key per store, so every server of a store signs alike. Its public half is
// published as a JWKS (/openid/v1/jwks) and accepted by sigil's own service-account
// authenticator. Rotation of the key is not offered yet. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sigil/base/clock.h"
#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"
#include "sigil/crypto/jwt.h"
#include "sigil/store/object_store.h"

namespace sigil::auth {

class ServiceAccountIssuer {
 public:
  // Loads the signing key from the store, or makes and stores one.
  static Result<std::unique_ptr<ServiceAccountIssuer>> Open(store::ObjectStore* store, std::string issuer, Clock* clock);

  struct Issued {
    SecretBytes token;
    std::chrono::system_clock::time_point expires;
  };
  // A token for the service account `ns`/`name` (whose uid is `uid`) for `audiences`, valid
  // for `ttl`.
  Result<Issued> Issue(const std::string& ns, const std::string& name, const std::string& uid,
                       const std::vector<std::string>& audiences, std::chrono::seconds ttl) const;

  const std::string& issuer() const { return issuer_; }
  const std::string& key_id() const { return kid_; }
  // {"keys": [the public key as a JWK, "use": "sig", "alg": "ES256", "kid"]}.
  nlohmann::json Jwks() const;
  // The public key, for verifying what this issuer signed.
  const crypto::JwtKeySet& keys() const { return keys_; }

 private:
  ServiceAccountIssuer() = default;
  std::string issuer_;
  Clock* clock_ = nullptr;
  SecretBytes private_der_;  // PKCS#8
  std::string public_der_;   // PKIX
  std::string kid_;
  crypto::JwtKeySet keys_;
};

}  // namespace sigil::auth
