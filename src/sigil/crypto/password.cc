#include "sigil/crypto/password.h"

#include <sodium.h>

#include <mutex>

namespace sigil::crypto {

Result<std::string> HashPassword(std::string_view password) {
  if (sodium_init() < 0) return InternalError("libsodium could not be initialised");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return ResourceExhaustedError("not enough memory to hash a password");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view encoded, std::string_view password) {
  if (sodium_init() < 0) return false;
  std::string z(encoded);  // crypto_pwhash_str_verify wants a NUL-terminated string
  if (z.size() >= crypto_pwhash_STRBYTES || !z.starts_with("$argon2")) return false;
  return crypto_pwhash_str_verify(z.c_str(), password.data(), password.size()) == 0;
}

void VerifyPasswordDecoy(std::string_view password) {
  static std::once_flag once;
  static std::string decoy;
  std::call_once(once, [] {
    Result<std::string> h = HashPassword("sigil-decoy-password");
    if (h.ok()) decoy = *h;
  });
  (void)VerifyPassword(decoy, password);
}

}  // namespace sigil::crypto
