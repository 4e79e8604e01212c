#include "sigil/crypto/random.h"

#include <openssl/crypto.h>
#include <sodium.h>

#include "sigil/base/check.h"

namespace sigil::crypto {

void Init() {
  static const bool ok = sodium_init() >= 0;
  SIGIL_CHECK(ok) << "libsodium initialisation failed";
}

void RandomFill(std::span<uint8_t> out) {
  Init();
  randombytes_buf(out.data(), out.size());
}

SecretBytes RandomKey(size_t n) {
  SecretBytes k(n);
  RandomFill({k.data(), k.size()});
  return k;
}

std::string RandomBytes(size_t n) {
  std::string s(n, '\0');
  RandomFill({reinterpret_cast<uint8_t*>(s.data()), s.size()});
  return s;
}

uint64_t RandomUint64() {
  uint64_t v;
  RandomFill({reinterpret_cast<uint8_t*>(&v), sizeof(v)});
  return v;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace sigil::crypto
