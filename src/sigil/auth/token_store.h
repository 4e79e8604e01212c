// auth/token_store.h: bearer tokens issued by sigil.
//
// A token is "sgl_" + 43 characters of base64url: 256 random bits. Only a keyed hash of it is
// stored: /sigil/auth/tokens/<hex HMAC-SHA256(token key, token)>, whose value (encrypted by
// the barrier like every value) is the identity and expiry in JSON. The 32-byte token key is
// made at first use and kept, encrypted, at /sigil/auth/token-key. So neither the store nor a
// copy of it gives anyone a usable token, and a lookup compares keyed hashes, never the token
// itself. A lookup of an unknown token also reads and decodes a decoy record, so a wrong token
// costs the same work as a right one.
//
// The root token (user sigil-root, group system:masters) is made once per store; its hash id is
// kept at /sigil/auth/root so it is never made twice. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "sigil/base/clock.h"
#include "sigil/base/identity.h"
#include "sigil/base/secret_bytes.h"
#include "sigil/store/object_store.h"

namespace sigil::auth {

class TokenStore {
 public:
  static constexpr std::string_view kPrefix = "sgl_";

  static Result<std::unique_ptr<TokenStore>> Open(store::ObjectStore* store, Clock* clock);

  // A new token for `who` (user, uid, groups), valid for `ttl` (zero: no expiry). The token is
  // returned once and never stored.
  Result<SecretBytes> Create(const Identity& who, std::chrono::seconds ttl);
  // The root token if the store has none yet (nullopt if one was made before).
  Result<std::optional<SecretBytes>> CreateRootOnce();

  // The identity of a valid token (groups include system:authenticated); nullopt if the token
  // is unknown, malformed or expired.
  Result<std::optional<Identity>> Lookup(std::string_view token);
  // Revokes a token: kNotFound if it is not valid.
  Status Revoke(std::string_view token);

 private:
  TokenStore(store::ObjectStore* store, Clock* clock, SecretBytes key) : store_(store), clock_(clock), key_(std::move(key)) {}
  std::string KeyFor(std::string_view token) const;
  Result<std::optional<Identity>> Decode(const store::Object& o, bool* expired) const;

  store::ObjectStore* store_;
  Clock* clock_;
  SecretBytes key_;
};

}  // namespace sigil::auth
