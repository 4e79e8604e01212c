#include "sigil/crypto/hash.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <sodium.h>

#include <memory>

#include "sigil/crypto/random.h"

namespace sigil::crypto {
namespace {

Result<SecretBytes> Hkdf(int mode, const SecretBytes& key, std::string_view salt,
                         std::string_view info, size_t length) {
  if (length == 0 || length > 255 * kSha256Size) return InvalidArgumentError("HKDF length out of range");
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return InternalError("HKDF unavailable");
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf), EVP_KDF_CTX_free);
  EVP_KDF_free(kdf);
  if (!ctx) return InternalError("HKDF context failed");
  OSSL_PARAM params[6];
  int n = 0;
  char digest[] = "SHA256";
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(key.data()), key.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()), salt.size());
  }
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size());
  params[n] = OSSL_PARAM_construct_end();
  SecretBytes out(length);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) return InternalError("HKDF failed");
  return out;
}

}  // namespace

std::string Sha256(std::string_view data) {
  std::string out(kSha256Size, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()),
                     reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return out;
}

std::string HmacSha256(const SecretBytes& key, std::string_view data) {
  Init();
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key.data(), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  std::string out(kSha256Size, '\0');
  crypto_auth_hmacsha256_final(&st, reinterpret_cast<unsigned char*>(out.data()));
  sodium_memzero(&st, sizeof(st));
  return out;
}

Result<SecretBytes> HkdfSha256(const SecretBytes& ikm, std::string_view salt, std::string_view info,
                               size_t length) {
  return Hkdf(EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, ikm, salt, info, length);
}

Result<SecretBytes> HkdfExpandSha256(const SecretBytes& prk, std::string_view info, size_t length) {
  return Hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk, "", info, length);
}

const char* DigestEvpName(std::string_view algorithm) {
  static const std::pair<std::string_view, const char*> kNames[] = {
      {"sha2-224", "SHA2-224"}, {"sha2-256", "SHA2-256"}, {"sha2-384", "SHA2-384"}, {"sha2-512", "SHA2-512"},
      {"sha3-224", "SHA3-224"}, {"sha3-256", "SHA3-256"}, {"sha3-384", "SHA3-384"}, {"sha3-512", "SHA3-512"}};
  for (const auto& [name, evp] : kNames) {
    if (name == algorithm) return evp;
  }
  return nullptr;
}

Result<std::string> Digest(std::string_view algorithm, std::string_view data) {
  const char* name = DigestEvpName(algorithm);
  if (name == nullptr) return InvalidArgumentError("unsupported hash algorithm");
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t len = 0;
  if (EVP_Q_digest(nullptr, name, nullptr, data.data(), data.size(), out, &len) != 1) return InternalError("digest failed");
  return std::string(reinterpret_cast<char*>(out), len);
}

Result<std::string> Hmac(std::string_view algorithm, const SecretBytes& key, std::string_view data) {
  const char* name = DigestEvpName(algorithm);
  if (name == nullptr) return InvalidArgumentError("unsupported hash algorithm");
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, name, nullptr, key.data(), key.size(),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, sizeof(out), &len) == nullptr) {
    return InternalError("hmac failed");
  }
  return std::string(reinterpret_cast<char*>(out), len);
}

}  // namespace sigil::crypto
