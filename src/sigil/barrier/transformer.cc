#include "sigil/barrier/transformer.h"

#include "sigil/crypto/aes.h"
#include "sigil/crypto/random.h"
#include "sigil/crypto/secretbox.h"

namespace sigil::barrier {
namespace {

Status TooShort() { return DataLossError("the stored data was shorter than the required size"); }

class Identity final : public Transformer {
 public:
  const std::string& prefix() const override { return prefix_; }
  std::string name() const override { return "identity"; }
  Result<std::string> Encrypt(std::string_view plaintext, std::string_view) const override {
    return std::string(plaintext);
  }
  Result<SecretBytes> Decrypt(std::string_view stored, std::string_view, bool*, bool) const override {
    if (stored.starts_with(kK8sEncryptedPrefix)) {
      return DataLossError("identity transformer tried to read encrypted data");
    }
    return SecretBytes(stored);
  }

 private:
  std::string prefix_;
};

class KeyedTransformer : public Transformer {
 public:
  KeyedTransformer(std::string provider, std::string key_name, SecretBytes key)
      : provider_(std::move(provider)), key_name_(std::move(key_name)), key_(std::move(key)) {
    prefix_ = std::string(kK8sEncryptedPrefix) + provider_ + ":v1:" + key_name_ + ":";
    key_.Lock();
  }
  const std::string& prefix() const override { return prefix_; }
  std::string name() const override { return provider_ + " " + key_name_; }

 protected:
  std::string provider_, key_name_, prefix_;
  SecretBytes key_;
};

class AesCbc final : public KeyedTransformer {
 public:
  using KeyedTransformer::KeyedTransformer;
  Result<std::string> Encrypt(std::string_view plaintext, std::string_view) const override {
    std::string iv = crypto::RandomNonce(crypto::kAesBlockSize);
    SIGIL_ASSIGN_OR_RETURN(std::string ct, crypto::AesCbcEncrypt(key_, iv, plaintext));
    return prefix_ + iv + ct;
  }
  Result<SecretBytes> Decrypt(std::string_view stored, std::string_view, bool*, bool) const override {
    std::string_view body = stored.substr(prefix_.size());
    if (body.size() < crypto::kAesBlockSize) return TooShort();
    return crypto::AesCbcDecrypt(key_, body.substr(0, crypto::kAesBlockSize), body.substr(crypto::kAesBlockSize));
  }
};

class AesGcm final : public KeyedTransformer {
 public:
  using KeyedTransformer::KeyedTransformer;
  Result<std::string> Encrypt(std::string_view plaintext, std::string_view aad) const override {
    std::string nonce = crypto::RandomNonce(crypto::kGcmNonceSize);
    SIGIL_ASSIGN_OR_RETURN(std::string sealed, crypto::AesGcmSeal(key_, nonce, plaintext, aad));
    return prefix_ + nonce + sealed;
  }
  Result<SecretBytes> Decrypt(std::string_view stored, std::string_view aad, bool*, bool) const override {
    std::string_view body = stored.substr(prefix_.size());
    if (body.size() < crypto::kGcmNonceSize) return TooShort();
    return crypto::AesGcmOpen(key_, body.substr(0, crypto::kGcmNonceSize), body.substr(crypto::kGcmNonceSize), aad);
  }
};

class Secretbox final : public KeyedTransformer {
 public:
  using KeyedTransformer::KeyedTransformer;
  Result<std::string> Encrypt(std::string_view plaintext, std::string_view) const override {
    std::string nonce = crypto::RandomNonce(crypto::kSecretboxNonceSize);
    SIGIL_ASSIGN_OR_RETURN(std::string sealed, crypto::SecretboxSeal(key_, nonce, plaintext));
    return prefix_ + nonce + sealed;
  }
  Result<SecretBytes> Decrypt(std::string_view stored, std::string_view, bool*, bool) const override {
    std::string_view body = stored.substr(prefix_.size());
    if (body.size() < crypto::kSecretboxNonceSize + crypto::kSecretboxTagSize) return TooShort();
    return crypto::SecretboxOpen(key_, body.substr(0, crypto::kSecretboxNonceSize),
                                 body.substr(crypto::kSecretboxNonceSize));
  }
};

}  // namespace

std::unique_ptr<Transformer> NewIdentityTransformer() { return std::make_unique<Identity>(); }

Result<std::unique_ptr<Transformer>> NewAesCbcTransformer(std::string key_name, SecretBytes key) {
  if (!crypto::IsValidAesKeySize(key.size())) return InvalidArgumentError("aescbc key must be 16, 24 or 32 bytes");
  return std::unique_ptr<Transformer>(new AesCbc("aescbc", std::move(key_name), std::move(key)));
}

Result<std::unique_ptr<Transformer>> NewAesGcmTransformer(std::string key_name, SecretBytes key) {
  if (!crypto::IsValidAesKeySize(key.size())) return InvalidArgumentError("aesgcm key must be 16, 24 or 32 bytes");
  return std::unique_ptr<Transformer>(new AesGcm("aesgcm", std::move(key_name), std::move(key)));
}

Result<std::unique_ptr<Transformer>> NewSecretboxTransformer(std::string key_name, SecretBytes key) {
  if (key.size() != crypto::kSecretboxKeySize) return InvalidArgumentError("secretbox key must be 32 bytes");
  return std::unique_ptr<Transformer>(new Secretbox("secretbox", std::move(key_name), std::move(key)));
}

}  // namespace sigil::barrier
