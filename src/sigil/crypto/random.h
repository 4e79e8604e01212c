// crypto/random.h: the CSPRNG (libsodium randombytes, backed by getrandom(2)) and
// constant-time comparison. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "sigil/base/secret_bytes.h"

namespace sigil::crypto {

// Must be called once before any other crypto function (idempotent, thread-safe). Aborts if
// libsodium cannot initialise, since nothing secure can happen without randomness.
void Init();

void RandomFill(std::span<uint8_t> out);
// n random bytes in a zeroing buffer (use for keys).
SecretBytes RandomKey(size_t n);
// n random bytes (use for identifiers and salts: not secret once used).
std::string RandomBytes(size_t n);
// n random bytes for an AEAD nonce or a CBC IV, from a per-thread buffer of OS randomness
// (fork-safe). Never use for keys.
std::string RandomNonce(size_t n);
uint64_t RandomUint64();
// `n` characters drawn uniformly from `alphabet` (at most 256 characters; no modulo bias), in a
// zeroing buffer: for passwords, user names and identifiers.
SecretBytes RandomString(size_t n, std::string_view alphabet);
inline constexpr std::string_view kAlphanumeric = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
// Vault's default password: `n` (at least 4) characters of letters, digits and '-', with at
// least one lower-case letter, upper-case letter, digit and '-' (drawn again until it has).
SecretBytes RandomPassword(size_t n);
// A random (version 4) UUID in its text form, as Kubernetes' metadata.uid.
std::string RandomUuid();

// True when a and b have the same length and contents. The time taken depends only on the
// lengths, never on where the first difference is. Use for tokens, MACs and hashes.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace sigil::crypto
