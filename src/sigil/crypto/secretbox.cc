#include "sigil/crypto/secretbox.h"

#include <sodium.h>

#include "sigil/crypto/random.h"

namespace sigil::crypto {

static_assert(crypto_secretbox_KEYBYTES == kSecretboxKeySize);
static_assert(crypto_secretbox_NONCEBYTES == kSecretboxNonceSize);
static_assert(crypto_secretbox_MACBYTES == kSecretboxTagSize);

Result<std::string> SecretboxSeal(const SecretBytes& key, std::string_view nonce,
                                  std::string_view plaintext) {
  Init();
  if (key.size() != kSecretboxKeySize) return InvalidArgumentError("secretbox key must be 32 bytes");
  if (nonce.size() != kSecretboxNonceSize) return InvalidArgumentError("secretbox nonce must be 24 bytes");
  std::string out(plaintext.size() + kSecretboxTagSize, '\0');
  crypto_secretbox_easy(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
                        reinterpret_cast<const unsigned char*>(nonce.data()), key.data());
  return out;
}

Result<SecretBytes> SecretboxOpen(const SecretBytes& key, std::string_view nonce,
                                  std::string_view sealed) {
  Init();
  if (key.size() != kSecretboxKeySize) return InvalidArgumentError("secretbox key must be 32 bytes");
  if (nonce.size() != kSecretboxNonceSize || sealed.size() < kSecretboxTagSize) {
    return DataLossError("decryption failed: value is corrupt or the key is wrong");
  }
  SecretBytes out(sealed.size() - kSecretboxTagSize);
  if (crypto_secretbox_open_easy(out.data(), reinterpret_cast<const unsigned char*>(sealed.data()),
                                 sealed.size(), reinterpret_cast<const unsigned char*>(nonce.data()),
                                 key.data()) != 0) {
    return DataLossError("decryption failed: value is corrupt or the key is wrong");
  }
  return out;
}

Result<std::string> ChaCha20Poly1305Seal(const SecretBytes& key, std::string_view nonce, std::string_view plaintext,
                                         std::string_view aad) {
  Init();
  if (key.size() != crypto_aead_chacha20poly1305_ietf_KEYBYTES) return InvalidArgumentError("chacha20-poly1305 key must be 32 bytes");
  if (nonce.size() != crypto_aead_chacha20poly1305_ietf_NPUBBYTES) return InvalidArgumentError("chacha20-poly1305 nonce must be 12 bytes");
  std::string out(plaintext.size() + crypto_aead_chacha20poly1305_ietf_ABYTES, '\0');
  unsigned long long len = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(out.data()), &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
      plaintext.size(), reinterpret_cast<const unsigned char*>(aad.data()), aad.size(), nullptr,
      reinterpret_cast<const unsigned char*>(nonce.data()), key.data());
  out.resize(len);
  return out;
}

Result<SecretBytes> ChaCha20Poly1305Open(const SecretBytes& key, std::string_view nonce, std::string_view sealed,
                                         std::string_view aad) {
  Init();
  if (key.size() != crypto_aead_chacha20poly1305_ietf_KEYBYTES) return InvalidArgumentError("chacha20-poly1305 key must be 32 bytes");
  if (nonce.size() != crypto_aead_chacha20poly1305_ietf_NPUBBYTES) return InvalidArgumentError("chacha20-poly1305 nonce must be 12 bytes");
  if (sealed.size() < crypto_aead_chacha20poly1305_ietf_ABYTES) return DataLossError("message authentication failed");
  SecretBytes out(sealed.size() - crypto_aead_chacha20poly1305_ietf_ABYTES);
  unsigned long long len = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(
          out.data(), &len, nullptr, reinterpret_cast<const unsigned char*>(sealed.data()), sealed.size(),
          reinterpret_cast<const unsigned char*>(aad.data()), aad.size(), reinterpret_cast<const unsigned char*>(nonce.data()),
          key.data()) != 0) {
    return DataLossError("message authentication failed");
  }
  out.resize(len);
  return out;
}

}  // namespace sigil::crypto
