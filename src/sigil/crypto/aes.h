// crypto/aes.h: AES-GCM and AES-CBC over OpenSSL 3 EVP.
//
// Keys are 16, 24 or 32 bytes (AES-128/192/256); sigil's own keyring always uses 32. Nonces
// and IVs are supplied by the caller so that formats (kube-apiserver's, sigil's) stay in the
// format code; callers draw them from RandomBytes. Decryption failures return kDataLoss with a
// fixed message: which check failed (tag, padding) is not revealed. All functions are
// thread-safe; plaintext outputs are SecretBytes.
#pragma once

#include <string>
#include <string_view>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::crypto {

inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kGcmTagSize = 16;
inline constexpr size_t kAesBlockSize = 16;

bool IsValidAesKeySize(size_t n);

// Returns ciphertext || 16-byte tag. kInvalidArgument for a bad key or nonce size.
Result<std::string> AesGcmSeal(const SecretBytes& key, std::string_view nonce,
                               std::string_view plaintext, std::string_view aad);
// `sealed` is ciphertext || tag. kDataLoss if authentication fails.
Result<SecretBytes> AesGcmOpen(const SecretBytes& key, std::string_view nonce,
                               std::string_view sealed, std::string_view aad);

// AES-CBC with PKCS#7 padding (always 1..16 pad bytes). Returns ciphertext without the IV.
Result<std::string> AesCbcEncrypt(const SecretBytes& key, std::string_view iv,
                                  std::string_view plaintext);
// kDataLoss on a length that is not a block multiple or on bad padding.
Result<SecretBytes> AesCbcDecrypt(const SecretBytes& key, std::string_view iv,
                                  std::string_view ciphertext);

}  // namespace sigil::crypto
