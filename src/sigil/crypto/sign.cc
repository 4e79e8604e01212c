#include "sigil/crypto/sign.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <memory>

#include "sigil/crypto/hash.h"
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

// A new key's PKCS#8 private and SubjectPublicKeyInfo public encodings.
Result<SigningKeyPair> Encode(EVP_PKEY* key) {
  SigningKeyPair out;
  unsigned char* der = nullptr;
  int n = i2d_PrivateKey(key, &der);
  if (n <= 0) return InternalError("key encoding failed");
  out.private_key = SecretBytes(der, static_cast<size_t>(n));
  OPENSSL_clear_free(der, static_cast<size_t>(n));
  out.private_key.Lock();
  unsigned char* pub = nullptr;
  n = i2d_PUBKEY(key, &pub);
  if (n <= 0) return InternalError("key encoding failed");
  out.public_key.assign(reinterpret_cast<char*>(pub), static_cast<size_t>(n));
  OPENSSL_free(pub);
  return out;
}

Pkey PrivateKey(const SecretBytes& der) {
  const unsigned char* p = der.data();
  return Pkey(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size())));
}

Pkey PublicKey(std::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  return Pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
}

// Sets RSA padding (and PSS's salt and MGF1 hash) and the signature's hash on `ctx`.
bool SetRsaSignature(EVP_PKEY_CTX* ctx, std::string_view hash, RsaPadding padding, bool signing) {
  const char* name = DigestEvpName(hash);
  if (name == nullptr) return false;
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (md == nullptr) return false;
  bool ok = EVP_PKEY_CTX_set_signature_md(ctx, md) == 1;
  if (ok && padding == RsaPadding::kPss) {
    ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 && EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, signing ? RSA_PSS_SALTLEN_MAX : RSA_PSS_SALTLEN_AUTO) == 1;
  } else if (ok) {
    ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
  }
  EVP_MD_free(md);
  return ok;
}

// A signature over `digest` with `key`, `configure` setting the context up.
template <typename F>
Result<std::string> SignWith(EVP_PKEY* key, std::string_view digest, F configure) {
  Ctx ctx(EVP_PKEY_CTX_new(key, nullptr));
  size_t len = 0;
  const auto* d = reinterpret_cast<const unsigned char*>(digest.data());
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 || !configure(ctx.get()) ||
      EVP_PKEY_sign(ctx.get(), nullptr, &len, d, digest.size()) != 1) {
    return InvalidArgumentError("signing failed");
  }
  std::string sig(len, '\0');
  if (EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, d, digest.size()) != 1) {
    return InvalidArgumentError("signing failed");
  }
  sig.resize(len);
  return sig;
}

template <typename F>
bool VerifyWith(EVP_PKEY* key, std::string_view digest, std::string_view signature, F configure) {
  Ctx ctx(EVP_PKEY_CTX_new(key, nullptr));
  return ctx && EVP_PKEY_verify_init(ctx.get()) == 1 && configure(ctx.get()) &&
         EVP_PKEY_verify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                         reinterpret_cast<const unsigned char*>(digest.data()), digest.size()) == 1;
}

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

Result<SigningKeyPair> NewEcdsa(std::string_view curve) {
  if (curve != "P-256" && curve != "P-384" && curve != "P-521") return InvalidArgumentError("unsupported curve");
  std::string name(curve);
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", name.c_str()));
  if (!key) return InternalError("ECDSA key generation failed");
  return Encode(key.get());
}

Result<std::string> EcdsaSign(const SecretBytes& private_der, std::string_view digest) {
  Pkey key = PrivateKey(private_der);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) return DataLossError("a stored ECDSA key does not decode");
  return SignWith(key.get(), digest, [](EVP_PKEY_CTX*) { return true; });
}

bool EcdsaVerify(std::string_view public_der, std::string_view digest, std::string_view signature) {
  Pkey key = PublicKey(public_der);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) return false;
  return VerifyWith(key.get(), digest, signature, [](EVP_PKEY_CTX*) { return true; });
}

Result<std::string> EcdsaDerToRaw(std::string_view der, size_t field_bytes) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())), ECDSA_SIG_free);
  if (!sig || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) return InvalidArgumentError("malformed signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(2 * field_bytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, o, static_cast<int>(field_bytes)) < 0 || BN_bn2binpad(s, o + field_bytes, static_cast<int>(field_bytes)) < 0) {
    return InvalidArgumentError("malformed signature");
  }
  return out;
}

Result<std::string> EcdsaRawToDer(std::string_view raw) {
  if (raw.empty() || raw.size() % 2 != 0 || raw.size() > 2 * 66) return InvalidArgumentError("malformed signature");
  size_t half = raw.size() / 2;
  const auto* in = reinterpret_cast<const unsigned char*>(raw.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(in, static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(in + half, static_cast<int>(half), nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return InvalidArgumentError("malformed signature");
  }
  unsigned char* der = nullptr;
  int n = i2d_ECDSA_SIG(sig.get(), &der);
  if (n <= 0) return InvalidArgumentError("malformed signature");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

Result<SigningKeyPair> NewRsa(int bits) {
  if (bits != 2048 && bits != 3072 && bits != 4096) return InvalidArgumentError("unsupported RSA key size");
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  if (!key) return InternalError("RSA key generation failed");
  return Encode(key.get());
}

Result<std::string> RsaSign(const SecretBytes& private_der, std::string_view digest, std::string_view hash, RsaPadding padding) {
  Pkey key = PrivateKey(private_der);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) return DataLossError("a stored RSA key does not decode");
  return SignWith(key.get(), digest, [&](EVP_PKEY_CTX* c) { return SetRsaSignature(c, hash, padding, true); });
}

bool RsaVerify(std::string_view public_der, std::string_view digest, std::string_view signature, std::string_view hash,
               RsaPadding padding) {
  Pkey key = PublicKey(public_der);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) return false;
  return VerifyWith(key.get(), digest, signature, [&](EVP_PKEY_CTX* c) { return SetRsaSignature(c, hash, padding, false); });
}

namespace {

bool SetOaep(EVP_PKEY_CTX* ctx) {
  return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 && EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1;
}

}  // namespace

Result<std::string> RsaOaepEncrypt(std::string_view public_der, std::string_view plaintext) {
  Pkey key = PublicKey(public_der);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) return DataLossError("a stored RSA key does not decode");
  Ctx ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(plaintext.data());
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 || !SetOaep(ctx.get()) ||
      EVP_PKEY_encrypt(ctx.get(), nullptr, &len, in, plaintext.size()) != 1) {
    return InvalidArgumentError("RSA encryption failed (is the plaintext too long for the key?)");
  }
  std::string out(len, '\0');
  if (EVP_PKEY_encrypt(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, in, plaintext.size()) != 1) {
    return InvalidArgumentError("RSA encryption failed (is the plaintext too long for the key?)");
  }
  out.resize(len);
  return out;
}

Result<SecretBytes> RsaOaepDecrypt(const SecretBytes& private_der, std::string_view ciphertext) {
  Pkey key = PrivateKey(private_der);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) return DataLossError("a stored RSA key does not decode");
  Ctx ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(ciphertext.data());
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 || !SetOaep(ctx.get()) ||
      EVP_PKEY_decrypt(ctx.get(), nullptr, &len, in, ciphertext.size()) != 1) {
    return InvalidArgumentError("message authentication failed");
  }
  SecretBytes out(len);
  if (EVP_PKEY_decrypt(ctx.get(), out.data(), &len, in, ciphertext.size()) != 1) return InvalidArgumentError("message authentication failed");
  return SecretBytes(out.view().substr(0, len));
}

std::string PublicKeyPem(std::string_view public_der) {
  Pkey key = PublicKey(public_der);
  if (!key) return "";
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<SecretBytes> PrivateKeyPem(const SecretBytes& private_der) {
  Pkey key = PrivateKey(private_der);
  if (!key) return DataLossError("a stored private key does not decode");
  // The traditional (type-specific) PEM: SEC 1 for EC, PKCS#1 for RSA, as Vault's export.
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_secmem()), BIO_free);
  if (!bio || PEM_write_bio_PrivateKey_traditional(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return InternalError("private key encoding failed");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return SecretBytes(std::string_view(data, static_cast<size_t>(n)));
}

SecretBytes Ed25519PrivateKey(const SecretBytes& seed) {
  Init();
  SecretBytes sk(crypto_sign_SECRETKEYBYTES);
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  if (seed.size() == crypto_sign_SEEDBYTES) crypto_sign_seed_keypair(pk, sk.data(), seed.data());
  return sk;
}

}  // namespace sigil::crypto
