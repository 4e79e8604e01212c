// barrier/keyring.h: sigil's data-encryption keys, by term.
//
// Term n's key encrypts new values until term n+1 is added (rotation); every term is kept so
// old values still decrypt. The keyring is stored at kKeyringStorageKey, encrypted under the
// root key (docs/formats.md "Keyring"). Thread safety: a Keyring is a value; the Barrier guards
// the live one with a lock.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "sigil/base/clock.h"
#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::barrier {

inline constexpr std::string_view kKeyringStorageKey = "/sigil/core/keyring";
inline constexpr std::string_view kKeyringPrefix = "sigil:keyring:v1:";

struct KeyTerm {
  uint32_t term = 0;
  int64_t created_unix = 0;
  SecretBytes key;  // 32 bytes, locked in memory
};

class Keyring {
 public:
  // A keyring with one fresh term (1).
  static Keyring New(Clock* clock);

  // Adds term active()+1 with a fresh random key; returns it.
  uint32_t Rotate(Clock* clock);

  uint32_t active() const { return active_; }
  const KeyTerm* Term(uint32_t term) const;
  const std::map<uint32_t, KeyTerm>& terms() const { return terms_; }
  Keyring Clone() const;

  // Encrypts the keyring under `root_key` for storage (AAD = kKeyringStorageKey).
  Result<std::string> Seal(const SecretBytes& root_key) const;
  // kDataLoss with a hint when the root key is wrong or the value was altered.
  static Result<Keyring> Unseal(const SecretBytes& root_key, std::string_view stored);

 private:
  std::map<uint32_t, KeyTerm> terms_;
  uint32_t active_ = 0;
};

}  // namespace sigil::barrier
