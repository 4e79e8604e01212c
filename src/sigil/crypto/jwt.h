// crypto/jwt.h: verification of JSON Web Tokens signed with RS256 or ES256 (RFC 7515/7518), the
// algorithms Kubernetes service-account tokens use, against a set of public keys from PEM or a
// JWKS document. Only verification: sigil issues no JWTs.
//
// Refused: anything but three base64url segments; a header that is not a JSON object or names
// another algorithm ("none", HS256 and friends: a public key is never used as an HMAC secret);
// a key whose type does not match the algorithm; RSA keys under 2048 bits; EC keys not on
// P-256; a kid that names no key. Without a kid every key of the algorithm's type is tried.
// Claims are returned unchecked: the caller validates iss, aud, exp, nbf. Error messages never
// quote the token. Thread-safe once built.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sigil/base/result.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace sigil::crypto {

class JwtKeySet {
 public:
  // One or more PEM public keys (or certificates, whose keys are used); each key's kid is
  // kube-apiserver's: base64url(SHA-256(PKIX DER of the public key)).
  Status AddPem(std::string_view pem);
  // {"keys": [{"kty": "RSA", "n", "e", "kid"?}, {"kty": "EC", "crv": "P-256", "x", "y", "kid"?}]};
  // keys with "use" other than "sig" are skipped.
  Status AddJwks(std::string_view json);
  size_t size() const { return keys_.size(); }

  // The verified claims of `token`.
  Result<nlohmann::json> Verify(std::string_view token) const;

 private:
  struct Key {
    std::string kid;
    bool rsa = false;  // else EC P-256
    std::shared_ptr<EVP_PKEY> pkey;
  };
  Status Add(std::shared_ptr<EVP_PKEY> pkey, std::string kid);
  std::vector<Key> keys_;
};

// The kid kube-apiserver derives for a public key.
Result<std::string> KubeKeyId(EVP_PKEY* pkey);

}  // namespace sigil::crypto
