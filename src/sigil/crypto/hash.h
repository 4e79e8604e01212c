// crypto/hash.h: SHA-256, HMAC-SHA256 and HKDF-SHA256 (RFC 5869). Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::crypto {

inline constexpr size_t kSha256Size = 32;

// 32-byte digests.
std::string Sha256(std::string_view data);
std::string HmacSha256(const SecretBytes& key, std::string_view data);

// The digest of `data` with a named algorithm, as Vault's transit names them: sha2-224,
// sha2-256, sha2-384, sha2-512, sha3-224, sha3-256, sha3-384, sha3-512 (OpenSSL EVP).
// kInvalidArgument for another name.
Result<std::string> Digest(std::string_view algorithm, std::string_view data);
// OpenSSL's name of one of those algorithms ("SHA2-256"), or null.
const char* DigestEvpName(std::string_view algorithm);
// HMAC of `data` under `key` with one of the same algorithms (OpenSSL EVP_MAC).
Result<std::string> Hmac(std::string_view algorithm, const SecretBytes& key, std::string_view data);

// HKDF-Extract then Expand. `salt` may be empty (RFC 5869: a string of zeros). Output holds key
// material. kInvalidArgument if length > 255*32.
Result<SecretBytes> HkdfSha256(const SecretBytes& ikm, std::string_view salt, std::string_view info,
                               size_t length);
// HKDF-Expand only, with `prk` used directly as the pseudorandom key (as kube-apiserver's KMS v2
// derives DEKs from a seed).
Result<SecretBytes> HkdfExpandSha256(const SecretBytes& prk, std::string_view info, size_t length);

}  // namespace sigil::crypto
