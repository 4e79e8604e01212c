#include "sigil/auth/service_account_issuer.h"

#include "sigil/base/encoding.h"
#include "sigil/crypto/hash.h"
#include "sigil/crypto/random.h"
#include "sigil/crypto/sign.h"

namespace sigil::auth {
namespace {

// Where the key lives: its private half (PKCS#8 DER) and public half (PKIX DER), base64, as one
// JSON document under the barrier.
constexpr char kKeyPath[] = "/sigil/serviceaccounts/signing-key";

int64_t Seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

Result<std::unique_ptr<ServiceAccountIssuer>> ServiceAccountIssuer::Open(store::ObjectStore* store, std::string issuer, Clock* clock) {
  std::unique_ptr<ServiceAccountIssuer> out(new ServiceAccountIssuer());
  out->issuer_ = std::move(issuer);
  out->clock_ = clock;
  for (int attempt = 0; attempt < 3; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store->Get(kKeyPath));
    if (o) {
      nlohmann::json j = nlohmann::json::parse(o->doc.view(), nullptr, false);
      if (!j.is_object() || !j.contains("private") || !j.contains("public")) {
        return DataLossError("the service-account signing key in the store is malformed");
      }
      std::string priv = j["private"].get<std::string>();
      auto priv_der = Base64Decode(priv);
      internal::SecureZero(priv.data(), priv.size());
      auto pub_der = Base64Decode(j["public"].get<std::string>());
      if (!priv_der.ok() || !pub_der.ok()) return DataLossError("the service-account signing key in the store is malformed");
      out->private_der_ = SecretBytes(*priv_der);
      internal::SecureZero(priv_der->data(), priv_der->size());
      out->public_der_ = *pub_der;
      break;
    }
    SIGIL_ASSIGN_OR_RETURN(crypto::SigningKeyPair pair, crypto::NewEcdsa("P-256"));
    std::string priv = Base64Encode(pair.private_key.view());
    std::string doc = nlohmann::json{{"private", priv}, {"public", Base64Encode(pair.public_key)}}.dump();
    internal::SecureZero(priv.data(), priv.size());
    SecretBytes sealed(doc);
    internal::SecureZero(doc.data(), doc.size());
    auto created = store->Create(kKeyPath, sealed);
    if (!created.ok() && created.error().code() != StatusCode::kAlreadyExists) return created.error();
    // Created, or another server made one first: read whichever is stored.
  }
  if (out->public_der_.empty()) return UnavailableError("the service-account signing key could not be stored");
  out->kid_ = Base64UrlEncode(crypto::Sha256(out->public_der_));
  SIGIL_RETURN_IF_ERROR(out->keys_.AddPem(crypto::PublicKeyPem(out->public_der_)));
  return out;
}

Result<ServiceAccountIssuer::Issued> ServiceAccountIssuer::Issue(const std::string& ns, const std::string& name,
                                                                 const std::string& uid, const std::vector<std::string>& audiences,
                                                                 std::chrono::seconds ttl) const {
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(clock_->Now());
  auto expires = now + ttl;
  nlohmann::json header = {{"alg", "ES256"}, {"kid", kid_}};
  nlohmann::json claims = {
      {"aud", audiences},
      {"exp", Seconds(expires)},
      {"iat", Seconds(now)},
      {"iss", issuer_},
      {"jti", crypto::RandomUuid()},
      {"kubernetes.io", {{"namespace", ns}, {"serviceaccount", {{"name", name}, {"uid", uid}}}}},
      {"nbf", Seconds(now)},
      {"sub", "system:serviceaccount:" + ns + ":" + name},
  };
  std::string signing_input = Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  SIGIL_ASSIGN_OR_RETURN(std::string der, crypto::EcdsaSign(private_der_, crypto::Sha256(signing_input)));
  SIGIL_ASSIGN_OR_RETURN(std::string raw, crypto::EcdsaDerToRaw(der, 32));
  std::string token = signing_input + "." + Base64UrlEncode(raw);
  Issued out{SecretBytes(token), expires};
  internal::SecureZero(token.data(), token.size());
  return out;
}

nlohmann::json ServiceAccountIssuer::Jwks() const {
  // A P-256 PKIX key ends with the uncompressed point: 0x04, then x and y (32 bytes each).
  std::string point = public_der_.size() >= 65 ? public_der_.substr(public_der_.size() - 65) : std::string();
  nlohmann::json key = {{"use", "sig"}, {"kty", "EC"}, {"kid", kid_}, {"crv", "P-256"}, {"alg", "ES256"},
                        {"x", Base64UrlEncode(point.substr(1, 32))}, {"y", Base64UrlEncode(point.substr(33, 32))}};
  return nlohmann::json{{"keys", nlohmann::json::array({key})}};
}

}  // namespace sigil::auth
