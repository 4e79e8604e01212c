#include "sigil/crypto/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "sigil/base/encoding.h"
#include "sigil/crypto/hash.h"

namespace sigil::crypto {
namespace {

using Json = nlohmann::json;

std::shared_ptr<EVP_PKEY> Own(EVP_PKEY* p) { return std::shared_ptr<EVP_PKEY>(p, EVP_PKEY_free); }

Status OpenSslError(const std::string& what) {
  ERR_clear_error();
  return InvalidArgumentError(what);
}

bool IsP256(EVP_PKEY* pkey) {
  char name[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &len) != 1) return false;
  return std::string_view(name, len) == "prime256v1" || std::string_view(name, len) == "P-256";
}

bool VerifyDigest(EVP_PKEY* pkey, std::string_view signed_part, std::string_view sig) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey) != 1) return false;
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                            reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size());
  ERR_clear_error();
  return rc == 1;
}

// JWS ES256 signatures are r||s (32 bytes each); OpenSSL verifies DER.
std::string EcdsaRawToDer(std::string_view raw) {
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  std::string out = len > 0 ? std::string(reinterpret_cast<char*>(der), static_cast<size_t>(len)) : "";
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  return out;
}

Result<std::string> B64Field(const Json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) return InvalidArgumentError(std::string("JWK lacks \"") + name + "\"");
  auto v = Base64UrlDecode(it->get<std::string>());
  if (!v.ok()) return InvalidArgumentError(std::string("JWK \"") + name + "\" is not base64url");
  return v;
}

}  // namespace

Result<std::string> KubeKeyId(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(pkey, &der);
  if (len <= 0) return OpenSslError("cannot encode a public key");
  std::string d(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return Base64UrlEncode(Sha256(d));
}

Status JwtKeySet::Add(std::shared_ptr<EVP_PKEY> pkey, std::string kid) {
  Key k;
  int type = EVP_PKEY_get_base_id(pkey.get());
  if (type == EVP_PKEY_RSA) {
    if (EVP_PKEY_get_bits(pkey.get()) < 2048) return InvalidArgumentError("RSA keys under 2048 bits are refused");
    k.rsa = true;
  } else if (type == EVP_PKEY_EC) {
    if (!IsP256(pkey.get())) return InvalidArgumentError("EC keys must be on P-256 (ES256)");
  } else {
    return InvalidArgumentError("only RSA and EC P-256 public keys are supported");
  }
  if (kid.empty()) {
    SIGIL_ASSIGN_OR_RETURN(kid, KubeKeyId(pkey.get()));
  }
  k.kid = std::move(kid);
  k.pkey = std::move(pkey);
  keys_.push_back(std::move(k));
  return OkStatus();
}

Status JwtKeySet::AddPem(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  int added = 0;
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) break;
    std::string block_name(name);
    const unsigned char* p = data;
    EVP_PKEY* pkey = nullptr;
    if (block_name == "PUBLIC KEY") {
      pkey = d2i_PUBKEY(nullptr, &p, len);
    } else if (block_name == "RSA PUBLIC KEY") {
      pkey = d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, len);
    } else if (block_name == "CERTIFICATE") {
      if (X509* cert = d2i_X509(nullptr, &p, len)) {
        pkey = X509_get_pubkey(cert);
        X509_free(cert);
      }
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    if (pkey == nullptr) continue;  // private keys and other blocks are not verification keys
    SIGIL_RETURN_IF_ERROR(Add(Own(pkey), ""));
    ++added;
  }
  ERR_clear_error();
  if (added == 0) return InvalidArgumentError("no PEM public key or certificate found");
  return OkStatus();
}

Status JwtKeySet::AddJwks(std::string_view text) {
  Json doc = Json::parse(text, nullptr, false);
  if (!doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array()) {
    return InvalidArgumentError("a JWKS document is {\"keys\": [...]}");
  }
  for (const Json& jwk : doc["keys"]) {
    if (!jwk.is_object()) return InvalidArgumentError("a JWK must be an object");
    if (jwk.contains("use") && jwk["use"] != "sig") continue;
    std::string kty = jwk.value("kty", "");
    std::string kid = jwk.contains("kid") && jwk["kid"].is_string() ? jwk["kid"].get<std::string>() : "";
    std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
    std::unique_ptr<BIGNUM, decltype(&BN_free)> n(nullptr, BN_free), e(nullptr, BN_free);
    std::string point;
    const char* type = nullptr;
    if (kty == "RSA") {
      SIGIL_ASSIGN_OR_RETURN(std::string nb, B64Field(jwk, "n"));
      SIGIL_ASSIGN_OR_RETURN(std::string eb, B64Field(jwk, "e"));
      n.reset(BN_bin2bn(reinterpret_cast<const unsigned char*>(nb.data()), static_cast<int>(nb.size()), nullptr));
      e.reset(BN_bin2bn(reinterpret_cast<const unsigned char*>(eb.data()), static_cast<int>(eb.size()), nullptr));
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get());
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get());
      type = "RSA";
    } else if (kty == "EC") {
      if (jwk.value("crv", "") != "P-256") return InvalidArgumentError("EC JWKs must use crv P-256");
      SIGIL_ASSIGN_OR_RETURN(std::string x, B64Field(jwk, "x"));
      SIGIL_ASSIGN_OR_RETURN(std::string y, B64Field(jwk, "y"));
      if (x.size() != 32 || y.size() != 32) return InvalidArgumentError("EC JWK coordinates must be 32 bytes");
      point = std::string(1, '\x04') + x + y;
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0);
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
      type = "EC";
    } else {
      return InvalidArgumentError("unsupported JWK kty (RSA and EC only)");
    }
    std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(OSSL_PARAM_BLD_to_param(bld.get()), OSSL_PARAM_free);
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr),
                                                                     EVP_PKEY_CTX_free);
    EVP_PKEY* pkey = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
      return OpenSslError("a JWK does not describe a valid public key");
    }
    SIGIL_RETURN_IF_ERROR(Add(Own(pkey), kid));
  }
  return OkStatus();
}

Result<nlohmann::json> JwtKeySet::Verify(std::string_view token) const {
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d1 == std::string_view::npos || d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos ||
      d1 == 0 || d2 == d1 + 1 || d2 + 1 == token.size()) {
    return InvalidArgumentError("malformed JWT: expected three non-empty segments");
  }
  auto header_raw = Base64UrlDecode(token.substr(0, d1));
  auto claims_raw = Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1));
  auto sig = Base64UrlDecode(token.substr(d2 + 1));
  if (!header_raw.ok() || !claims_raw.ok() || !sig.ok()) return InvalidArgumentError("malformed JWT: a segment is not base64url");
  Json header = Json::parse(*header_raw, nullptr, false);
  if (!header.is_object() || !header.contains("alg") || !header["alg"].is_string()) {
    return InvalidArgumentError("malformed JWT: the header is not a JSON object with alg");
  }
  std::string alg = header["alg"].get<std::string>();
  bool rsa = alg == "RS256";
  if (!rsa && alg != "ES256") return InvalidArgumentError("JWT algorithm \"" + alg.substr(0, 16) + "\" is not accepted (RS256, ES256)");
  if (!rsa && sig->size() != 64) return InvalidArgumentError("malformed JWT: an ES256 signature is 64 bytes");
  std::string kid;
  if (header.contains("kid")) {
    if (!header["kid"].is_string()) return InvalidArgumentError("malformed JWT: kid is not a string");
    kid = header["kid"].get<std::string>();
  }
  std::string der = rsa ? "" : EcdsaRawToDer(*sig);
  std::string_view signed_part = token.substr(0, d2);
  bool any_key = false;
  for (const Key& k : keys_) {
    if (k.rsa != rsa || (!kid.empty() && k.kid != kid)) continue;
    any_key = true;
    if (VerifyDigest(k.pkey.get(), signed_part, rsa ? *sig : der)) {
      Json claims = Json::parse(*claims_raw, nullptr, false);
      if (!claims.is_object()) return InvalidArgumentError("malformed JWT: the claims are not a JSON object");
      return claims;
    }
  }
  if (!any_key) return InvalidArgumentError(kid.empty() ? "no key for the JWT's algorithm" : "the JWT's kid names no known key");
  return InvalidArgumentError("the JWT's signature does not verify");
}

}  // namespace sigil::crypto
