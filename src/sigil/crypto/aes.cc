#include "sigil/crypto/aes.h"

#include <openssl/evp.h>

#include <memory>

namespace sigil::crypto {
namespace {

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

// Explicitly fetched ciphers, once per process (avoids an implicit fetch per operation).
const EVP_CIPHER* Cipher(const char* mode, size_t key_size) {
  struct Fetched {
    EVP_CIPHER* gcm[3];
    EVP_CIPHER* cbc[3];
  };
  static const Fetched fetched = [] {
    Fetched f{};
    const char* gcm[] = {"AES-128-GCM", "AES-192-GCM", "AES-256-GCM"};
    const char* cbc[] = {"AES-128-CBC", "AES-192-CBC", "AES-256-CBC"};
    for (int i = 0; i < 3; ++i) {
      f.gcm[i] = EVP_CIPHER_fetch(nullptr, gcm[i], nullptr);
      f.cbc[i] = EVP_CIPHER_fetch(nullptr, cbc[i], nullptr);
    }
    return f;
  }();
  int idx = key_size == 16 ? 0 : key_size == 24 ? 1 : 2;
  return std::string_view(mode) == "gcm" ? fetched.gcm[idx] : fetched.cbc[idx];
}

const unsigned char* U(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

Status DecryptFailed() { return DataLossError("decryption failed: value is corrupt or the key is wrong"); }

}  // namespace

bool IsValidAesKeySize(size_t n) { return n == 16 || n == 24 || n == 32; }

Result<std::string> AesGcmSeal(const SecretBytes& key, std::string_view nonce,
                               std::string_view plaintext, std::string_view aad) {
  if (!IsValidAesKeySize(key.size())) return InvalidArgumentError("AES key must be 16, 24 or 32 bytes");
  if (nonce.size() != kGcmNonceSize) return InvalidArgumentError("AES-GCM nonce must be 12 bytes");
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return InternalError("EVP_CIPHER_CTX_new failed");
  std::string out(plaintext.size() + kGcmTagSize, '\0');
  int len = 0;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (EVP_EncryptInit_ex2(ctx.get(), Cipher("gcm", key.size()), key.data(), U(nonce), nullptr) != 1 ||
      (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1) ||
      EVP_EncryptUpdate(ctx.get(), o, &len, U(plaintext), static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagSize, o + plaintext.size()) != 1) {
    return InternalError("AES-GCM encryption failed");
  }
  return out;
}

Result<SecretBytes> AesGcmOpen(const SecretBytes& key, std::string_view nonce,
                               std::string_view sealed, std::string_view aad) {
  if (!IsValidAesKeySize(key.size())) return InvalidArgumentError("AES key must be 16, 24 or 32 bytes");
  if (nonce.size() != kGcmNonceSize || sealed.size() < kGcmTagSize) return DecryptFailed();
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return InternalError("EVP_CIPHER_CTX_new failed");
  size_t ct_len = sealed.size() - kGcmTagSize;
  SecretBytes out(ct_len);
  int len = 0;
  std::string tag(sealed.substr(ct_len));
  if (EVP_DecryptInit_ex2(ctx.get(), Cipher("gcm", key.size()), key.data(), U(nonce), nullptr) != 1 ||
      (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1) ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, U(sealed), static_cast<int>(ct_len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagSize, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &len) != 1) {
    return DecryptFailed();
  }
  return out;
}

Result<std::string> AesCbcEncrypt(const SecretBytes& key, std::string_view iv,
                                  std::string_view plaintext) {
  if (!IsValidAesKeySize(key.size())) return InvalidArgumentError("AES key must be 16, 24 or 32 bytes");
  if (iv.size() != kAesBlockSize) return InvalidArgumentError("AES-CBC IV must be 16 bytes");
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return InternalError("EVP_CIPHER_CTX_new failed");
  std::string out(plaintext.size() + kAesBlockSize, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len1 = 0, len2 = 0;
  // OpenSSL's default padding is PKCS#7 with a full block when aligned, as kube-apiserver does.
  if (EVP_EncryptInit_ex2(ctx.get(), Cipher("cbc", key.size()), key.data(), U(iv), nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o, &len1, U(plaintext), static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + len1, &len2) != 1) {
    return InternalError("AES-CBC encryption failed");
  }
  out.resize(static_cast<size_t>(len1 + len2));
  return out;
}

Result<SecretBytes> AesCbcDecrypt(const SecretBytes& key, std::string_view iv,
                                  std::string_view ciphertext) {
  if (!IsValidAesKeySize(key.size())) return InvalidArgumentError("AES key must be 16, 24 or 32 bytes");
  if (iv.size() != kAesBlockSize || ciphertext.empty() || ciphertext.size() % kAesBlockSize != 0) {
    return DecryptFailed();
  }
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return InternalError("EVP_CIPHER_CTX_new failed");
  SecretBytes out(ciphertext.size() + kAesBlockSize);
  int len1 = 0, len2 = 0;
  if (EVP_DecryptInit_ex2(ctx.get(), Cipher("cbc", key.size()), key.data(), U(iv), nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len1, U(ciphertext), static_cast<int>(ciphertext.size())) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out.data() + len1, &len2) != 1) {
    return DecryptFailed();
  }
  out.resize(static_cast<size_t>(len1 + len2));
  return out;
}

}  // namespace sigil::crypto
