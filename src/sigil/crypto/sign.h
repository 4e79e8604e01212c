// crypto/sign.h: signatures for transit's signing keys. Ed25519 from libsodium; ECDSA P-256
// from OpenSSL 3 (EVP). Private keys are SecretBytes; public keys plain bytes. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::crypto {

struct SigningKeyPair {
  SecretBytes private_key;  // Ed25519: the 32-byte seed; ECDSA: PKCS#8 DER
  std::string public_key;   // Ed25519: the 32 raw bytes; ECDSA: SubjectPublicKeyInfo DER
};

SigningKeyPair NewEd25519();
// The 64-byte signature of `message`. kInvalidArgument for a seed that is not 32 bytes.
Result<std::string> Ed25519Sign(const SecretBytes& seed, std::string_view message);
bool Ed25519Verify(std::string_view public_key, std::string_view message, std::string_view signature);

Result<SigningKeyPair> NewEcdsaP256();
// An ASN.1 DER ECDSA signature over `digest` (the caller hashes the message).
Result<std::string> EcdsaP256Sign(const SecretBytes& private_der, std::string_view digest);
bool EcdsaP256Verify(std::string_view public_der, std::string_view digest, std::string_view signature);
// A SubjectPublicKeyInfo DER as PEM ("-----BEGIN PUBLIC KEY-----").
std::string PublicKeyPem(std::string_view public_der);

}  // namespace sigil::crypto
