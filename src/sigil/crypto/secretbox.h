// crypto/secretbox.h: NaCl secretbox (XSalsa20-Poly1305) from libsodium. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::crypto {

inline constexpr size_t kSecretboxKeySize = 32;
inline constexpr size_t kSecretboxNonceSize = 24;
inline constexpr size_t kSecretboxTagSize = 16;

// Returns tag(16) || ciphertext, exactly NaCl's secretbox.Seal output without the nonce.
Result<std::string> SecretboxSeal(const SecretBytes& key, std::string_view nonce,
                                  std::string_view plaintext);
// kDataLoss if authentication fails.
Result<SecretBytes> SecretboxOpen(const SecretBytes& key, std::string_view nonce,
                                  std::string_view sealed);

// ChaCha20-Poly1305 (IETF: 12-byte nonce, RFC 8439) from libsodium. Returns ciphertext || tag(16).
inline constexpr size_t kChaChaNonceSize = 12;
Result<std::string> ChaCha20Poly1305Seal(const SecretBytes& key, std::string_view nonce, std::string_view plaintext,
                                         std::string_view aad);
// kDataLoss if authentication fails.
Result<SecretBytes> ChaCha20Poly1305Open(const SecretBytes& key, std::string_view nonce, std::string_view sealed,
                                         std::string_view aad);

}  // namespace sigil::crypto
