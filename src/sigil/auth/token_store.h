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
#include <functional>
#include <map>
#include <utility>
#include <vector>
#include <memory>
#include <optional>
#include <string>

#include "sigil/base/clock.h"
#include "sigil/base/identity.h"
#include "sigil/base/secret_bytes.h"
#include "sigil/store/object_store.h"

namespace sigil::auth {

// What a token record holds. sigil's own tokens (sgl_) carry an identity and an expiry; Vault
// tokens (hvs., made through auth/token/*) also an accessor, policies and Vault's lifetime
// properties, and sit in a tree: revoking a token revokes every token made under it.
struct TokenInfo {
  std::string key;  // the record's store key (a keyed hash of the token); never the token
  int64_t revision = 0;
  std::string user, uid;            // sigil tokens: the identity
  std::vector<std::string> groups;  // without system:authenticated
  // Vault tokens.
  std::string accessor;             // "" for sigil tokens
  std::vector<std::string> policies;
  std::map<std::string, std::string> meta;
  std::string display_name, path;
  std::string parent;               // the parent's key; "" for an orphan
  Clock::TimePoint issued;
  std::optional<Clock::TimePoint> expires;  // none: never
  std::chrono::seconds creation_ttl{0}, explicit_max_ttl{0}, period{0};
  bool renewable = false;
  int64_t num_uses = 0;

  bool vault() const { return !accessor.empty(); }
  // The identity the token authenticates as (see docs/vault-api.md for a Vault token's user
  // and groups on the Kubernetes face).
  Identity ToIdentity() const;
};

// What a new Vault token is to be; the caller (the Vault face) has checked it against its
// parent (policies a subset, sudo for period and orphans).
struct TokenSpec {
  std::vector<std::string> policies;
  std::map<std::string, std::string> meta;
  std::string display_name = "token";
  std::string path = "auth/token/create";
  std::string parent;              // the parent's key; "" for an orphan
  int64_t parent_revision = 0;     // the create fails (kAborted) unless the parent is still there as read
  // The parent's expiry: a child never outlives its parent (its expiry, and every renewal, is
  // capped at the parent's), so no token escapes revocation by expiry through its children.
  std::optional<Clock::TimePoint> parent_expires;
  bool login = false;              // made by an auth method's login: may not hold "root"
  std::chrono::seconds ttl{0};     // 0: no expiry (only for root tokens; the face applies defaults)
  std::chrono::seconds explicit_max_ttl{0}, period{0};
  bool renewable = true;
  int64_t num_uses = 0;
};

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
  // is unknown, malformed or expired. `use`: this lookup authenticates a request, so it spends
  // one use of a limited-use Vault token (num_uses > 0): the last use revokes the token as it
  // authenticates, and concurrent requests never get more uses than the token had.
  Result<std::optional<Identity>> Lookup(std::string_view token, bool use = false);
  // Revokes a token: kNotFound if it is not valid.
  Status Revoke(std::string_view token);

  // ---- Vault tokens (auth/token/*) ----
  // The system's maximum lifetime of a non-periodic token (Vault's default max_lease_ttl).
  static constexpr std::chrono::seconds kMaxTtl{768 * 3600};
  // The most tokens one revocation removes (one transaction); a bigger tree is refused.
  static constexpr size_t kMaxTreeSize = 100000;
  // How deep a token tree may grow: a token is valid only while every ancestor is, and a
  // lookup checks them all.
  static constexpr int kMaxTreeDepth = 32;
  // A new Vault token ("hvs." and 32 base62 characters) with a fresh accessor; returned once.
  Result<std::pair<SecretBytes, TokenInfo>> CreateVault(const TokenSpec& spec);
  // A valid (known, unexpired) token's record, by the token, its accessor or its key.
  Result<std::optional<TokenInfo>> Find(std::string_view token);
  Result<std::optional<TokenInfo>> FindByAccessor(std::string_view accessor);
  Result<std::optional<TokenInfo>> FindByKey(const std::string& key);
  // Extends a Vault token's life: to now + `increment` (else its creation TTL), or its period
  // for a periodic token, capped by its explicit max TTL and the system's (not periodic ones).
  // kInvalidArgument (Vault's words) when it is not renewable. Returns the new record, and in
  // *capped whether the cap cut the increment.
  Result<TokenInfo> Renew(const std::string& key, std::optional<std::chrono::seconds> increment, bool* capped);
  // Revokes the token at `key` and every token made under it (top down; see the .cc).
  Status RevokeTree(const std::string& key);
  // Revokes the token at `key` alone; its children become orphans.
  Status RevokeOrphan(const std::string& key);
  // Every Vault token's accessor.
  Result<std::vector<std::string>> Accessors();
  // The record at `key` as stored, expired or not (nullopt: none). For the token's lease.
  Result<std::optional<TokenInfo>> RecordAt(const std::string& key);
  // Adds to `also` the deletion of the token `t` (its record, accessor and entry under its
  // parent), compared with t.revision, for a caller that commits it with its own writes (the
  // token's lease). False, adding nothing, when the token has children (use RevokeTree).
  Result<bool> PrepareDeletion(const TokenInfo& t, store::SideEffects* also);

  // What the store tells the rest of the server (its leases, leases/leases.h): `created` adds
  // writes to the creation of a token that expires (committed with it); `revoked` is told of
  // every token deleted before it expired (revoked, or used up) after the deletion commits.
  // Set once, before the store is used.
  struct Hooks {
    std::function<Status(const TokenInfo& t, store::SideEffects* also)> created;
    std::function<void(const TokenInfo& t)> revoked;
  };
  void SetHooks(Hooks hooks) { hooks_ = std::move(hooks); }
  // The path a sigil token's lease is under (Vault tokens use the path they were made at).
  static constexpr std::string_view kSigilTokenPath = "auth/sigil/tokens";

  // Token roles (auth/token/roles/<name>): one JSON document per role, kept as the face wrote
  // it. Names are checked by the face.
  Result<std::optional<std::string>> GetRole(std::string_view name);
  Status PutRole(std::string_view name, const std::string& doc);
  Status DeleteRole(std::string_view name);
  Result<std::vector<std::string>> RoleNames();

 private:
  TokenStore(store::ObjectStore* store, Clock* clock, SecretBytes key) : store_(store), clock_(clock), key_(std::move(key)) {}
  std::string KeyFor(std::string_view token) const;
  Result<TokenInfo> Decode(const store::Object& o) const;
  bool Expired(const TokenInfo& t) const { return t.expires && *t.expires <= clock_->Now(); }
  // Spends one use of the limited-use token at `key` (compare-on-revision): false when none
  // was left (a concurrent request took the last).
  Result<bool> SpendUse(const std::string& key);
  // Whether every ancestor of `t` still exists and has not expired.
  Result<bool> AncestorsAlive(const TokenInfo& t);

  store::ObjectStore* store_;
  Clock* clock_;
  SecretBytes key_;
  Hooks hooks_;
};

}  // namespace sigil::auth
