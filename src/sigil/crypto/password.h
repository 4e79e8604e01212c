// crypto/password.h: password hashes for sigil's user-password logins (Vault's userpass auth
// method), with libsodium's crypto_pwhash_str: Argon2id, memory-hard, a random salt per hash,
// the parameters inside the encoded string ("$argon2id$v=19$m=...,t=...,p=1$salt$hash"), and
// a constant-time check. Interactive parameters (64 MiB, 2 passes): one check costs about
// 0.1 s of one core and 64 MiB while it runs. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "sigil/base/result.h"

namespace sigil::crypto {

// The encoded hash of `password`. kResourceExhausted when the memory cannot be had.
Result<std::string> HashPassword(std::string_view password);
// Whether `password` matches `encoded` (false for anything that is not an encoded hash).
bool VerifyPassword(std::string_view encoded, std::string_view password);
// Work equal to one VerifyPassword, for a user that does not exist: a miss costs what a hit does.
void VerifyPasswordDecoy(std::string_view password);

}  // namespace sigil::crypto
