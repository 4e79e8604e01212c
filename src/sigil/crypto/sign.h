// crypto/sign.h: asymmetric keys for transit. Ed25519 from libsodium; ECDSA (P-256, P-384,
// P-521) and RSA (2048, 3072, 4096 bits: PSS or PKCS#1 v1.5 signatures, OAEP encryption) from
// OpenSSL 3 (EVP). Private keys are SecretBytes; public keys plain bytes. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::crypto {

struct SigningKeyPair {
  SecretBytes private_key;  // Ed25519: the 32-byte seed; ECDSA and RSA: PKCS#8 DER
  std::string public_key;   // Ed25519: the 32 raw bytes; ECDSA and RSA: SubjectPublicKeyInfo DER
};

SigningKeyPair NewEd25519();
// The 64-byte signature of `message`. kInvalidArgument for a seed that is not 32 bytes.
Result<std::string> Ed25519Sign(const SecretBytes& seed, std::string_view message);
bool Ed25519Verify(std::string_view public_key, std::string_view message, std::string_view signature);
// The 64-byte private key libsodium and Go use (seed then public key), for export.
SecretBytes Ed25519PrivateKey(const SecretBytes& seed);

// `curve`: "P-256", "P-384" or "P-521" (kInvalidArgument otherwise).
Result<SigningKeyPair> NewEcdsa(std::string_view curve);
// An ASN.1 DER ECDSA signature over `digest` (the caller hashes the message).
Result<std::string> EcdsaSign(const SecretBytes& private_der, std::string_view digest);
bool EcdsaVerify(std::string_view public_der, std::string_view digest, std::string_view signature);
// ECDSA signatures between ASN.1 DER and the fixed-size r || s of JWS (RFC 7518 3.4), each
// half `field_bytes` long (32, 48, 66). kInvalidArgument for a malformed input.
Result<std::string> EcdsaDerToRaw(std::string_view der, size_t field_bytes);
Result<std::string> EcdsaRawToDer(std::string_view raw);

// `bits`: 2048, 3072 or 4096 (kInvalidArgument otherwise). Public exponent 65537.
Result<SigningKeyPair> NewRsa(int bits);
enum class RsaPadding { kPss, kPkcs1v15 };
// A signature over `digest`, made with hash `hash` (a Vault name, "sha2-256": crypto/hash.h)
// for the padding's encoding; PSS uses MGF1 with the same hash and the longest salt when
// signing, and accepts any salt length when verifying (Go's rsa.PSSSaltLengthAuto).
Result<std::string> RsaSign(const SecretBytes& private_der, std::string_view digest, std::string_view hash, RsaPadding padding);
bool RsaVerify(std::string_view public_der, std::string_view digest, std::string_view signature, std::string_view hash,
               RsaPadding padding);
// RSA-OAEP with SHA-256 and MGF1-SHA-256, no label (as Vault's transit encrypts with RSA keys).
Result<std::string> RsaOaepEncrypt(std::string_view public_der, std::string_view plaintext);
Result<SecretBytes> RsaOaepDecrypt(const SecretBytes& private_der, std::string_view ciphertext);

// A SubjectPublicKeyInfo DER as PEM ("-----BEGIN PUBLIC KEY-----").
std::string PublicKeyPem(std::string_view public_der);
// A PKCS#8 DER private key as the PEM Vault exports: "EC PRIVATE KEY" (SEC 1) for ECDSA,
// "RSA PRIVATE KEY" (PKCS#1) for RSA. Holds key material.
Result<SecretBytes> PrivateKeyPem(const SecretBytes& private_der);

}  // namespace sigil::crypto
