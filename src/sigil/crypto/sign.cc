#include "sigil/crypto/sign.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <memory>

#include "sigil/crypto/random.h"

namespace sigil::crypto {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct CtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Ctx = std::unique_ptr<EVP_PKEY_CTX, CtxFree>;

}  // namespace

SigningKeyPair NewEd25519() {
  Init();
  SigningKeyPair out;
  out.private_key = RandomKey(crypto_sign_SEEDBYTES);
  out.private_key.Lock();
  SecretBytes sk(crypto_sign_SECRETKEYBYTES);
  out.public_key.assign(crypto_sign_PUBLICKEYBYTES, '\0');
  crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(out.public_key.data()), sk.data(), out.private_key.data());
  return out;
}

Result<std::string> Ed25519Sign(const SecretBytes& seed, std::string_view message) {
  Init();
  if (seed.size() != crypto_sign_SEEDBYTES) return InvalidArgumentError("an Ed25519 seed is 32 bytes");
  SecretBytes sk(crypto_sign_SECRETKEYBYTES);
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_seed_keypair(pk, sk.data(), seed.data());
  std::string sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr, reinterpret_cast<const unsigned char*>(message.data()),
                       message.size(), sk.data());
  return sig;
}

bool Ed25519Verify(std::string_view public_key, std::string_view message, std::string_view signature) {
  Init();
  if (public_key.size() != crypto_sign_PUBLICKEYBYTES || signature.size() != crypto_sign_BYTES) return false;
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                     reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                                     reinterpret_cast<const unsigned char*>(public_key.data())) == 0;
}

Result<SigningKeyPair> NewEcdsaP256() {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return InternalError("ECDSA key generation failed");
  SigningKeyPair out;
  unsigned char* der = nullptr;
  int n = i2d_PrivateKey(key.get(), &der);
  if (n <= 0) return InternalError("ECDSA key encoding failed");
  out.private_key = SecretBytes(der, static_cast<size_t>(n));
  OPENSSL_clear_free(der, static_cast<size_t>(n));
  out.private_key.Lock();
  unsigned char* pub = nullptr;
  n = i2d_PUBKEY(key.get(), &pub);
  if (n <= 0) return InternalError("ECDSA key encoding failed");
  out.public_key.assign(reinterpret_cast<char*>(pub), static_cast<size_t>(n));
  OPENSSL_free(pub);
  return out;
}

Result<std::string> EcdsaP256Sign(const SecretBytes& private_der, std::string_view digest) {
  const unsigned char* p = private_der.data();
  Pkey key(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(private_der.size())));
  if (!key) return DataLossError("a stored ECDSA key does not decode");
  Ctx ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  size_t len = 0;
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
      EVP_PKEY_sign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(digest.data()), digest.size()) != 1) {
    return InternalError("ECDSA signing failed");
  }
  std::string sig(len, '\0');
  if (EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                    reinterpret_cast<const unsigned char*>(digest.data()), digest.size()) != 1) {
    return InternalError("ECDSA signing failed");
  }
  sig.resize(len);
  return sig;
}

bool EcdsaP256Verify(std::string_view public_der, std::string_view digest, std::string_view signature) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(public_der.data());
  Pkey key(d2i_PUBKEY(nullptr, &p, static_cast<long>(public_der.size())));
  if (!key) return false;
  Ctx ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  return ctx && EVP_PKEY_verify_init(ctx.get()) == 1 &&
         EVP_PKEY_verify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                         reinterpret_cast<const unsigned char*>(digest.data()), digest.size()) == 1;
}

std::string PublicKeyPem(std::string_view public_der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(public_der.data());
  Pkey key(d2i_PUBKEY(nullptr, &p, static_cast<long>(public_der.size())));
  if (!key) return "";
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace sigil::crypto
