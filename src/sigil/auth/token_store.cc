#include "sigil/auth/token_store.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "sigil/base/encoding.h"
#include "sigil/crypto/hash.h"
#include "sigil/crypto/random.h"

namespace sigil::auth {
namespace {

using Json = nlohmann::json;

constexpr char kKeyKey[] = "/sigil/auth/token-key";
constexpr char kTokensPrefix[] = "/sigil/auth/tokens/";
constexpr char kRootKey[] = "/sigil/auth/root";
constexpr char kDecoyKey[] = "/sigil/auth/decoy";

Json Record(const Identity& who, const std::string& created, const std::string& expires) {
  Json j = {{"user", who.user}, {"uid", who.uid}, {"groups", who.groups}, {"created", created}};
  if (!expires.empty()) j["expires"] = expires;
  return j;
}

int64_t Unix(Clock::TimePoint t) { return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count(); }
Clock::TimePoint FromUnix(int64_t s) { return Clock::TimePoint(std::chrono::seconds(s)); }

std::optional<Clock::TimePoint> ParseUtc(const std::string& s) { return ParseRfc3339(s); }

Json VaultRecord(const TokenInfo& t) {
  Json j = {{"user", t.user},
            {"uid", t.uid},
            {"groups", t.groups},
            {"created", FormatRfc3339(t.issued)},
            {"accessor", t.accessor},
            {"policies", t.policies},
            {"meta", t.meta},
            {"display_name", t.display_name},
            {"path", t.path},
            {"parent", t.parent},
            {"issued_unix", Unix(t.issued)},
            {"creation_ttl", t.creation_ttl.count()},
            {"explicit_max_ttl", t.explicit_max_ttl.count()},
            {"period", t.period.count()},
            {"renewable", t.renewable},
            {"num_uses", t.num_uses}};
  if (t.expires) {
    j["expires"] = FormatRfc3339(*t.expires);
    j["expires_unix"] = Unix(*t.expires);
  }
  return j;
}

// A random string of `n` base62 characters.
std::string RandomBase62(size_t n) { return std::string(crypto::RandomString(n, crypto::kAlphanumeric).view()); }

constexpr char kAccessorsPrefix[] = "/sigil/auth/accessors/";
constexpr char kChildrenPrefix[] = "/sigil/auth/children/";
constexpr char kRolesPrefix[] = "/sigil/auth/token-roles/";
constexpr std::string_view kVaultPrefix = "hvs.";

// The children index of a token: /sigil/auth/children/<parent hash>/<child hash>.
std::string ChildKey(const std::string& parent_key, const std::string& child_key) {
  auto hash = [](const std::string& k) { return k.substr(k.rfind('/') + 1); };
  return std::string(kChildrenPrefix) + hash(parent_key) + "/" + hash(child_key);
}

}  // namespace

Result<std::unique_ptr<TokenStore>> TokenStore::Open(store::ObjectStore* store, Clock* clock) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> k, store->Get(kKeyKey));
    if (k) {
      if (k->doc.size() != 32) return DataLossError(std::string(kKeyKey) + " is not a 32-byte key");
      std::unique_ptr<TokenStore> ts(new TokenStore(store, clock, k->doc.Clone()));
      ts->key_.Lock();
      // The decoy a lookup of an unknown token reads (same size and shape as a real record).
      SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> decoy, store->Get(kDecoyKey));
      if (!decoy) {
        Identity nobody{"decoy-decoy-decoy", "00000000-0000-0000-0000-000000000000", {"system:masters"}, {}, ""};
        std::string doc = Record(nobody, FormatRfc3339(clock->Now()), "1970-01-01T00:00:00Z").dump();
        auto r = store->Create(kDecoyKey, SecretBytes(doc));
        if (!r.ok() && r.error().code() != StatusCode::kAlreadyExists) return r.error();
      }
      return ts;
    }
    SecretBytes key(crypto::RandomBytes(32));
    auto r = store->Create(kKeyKey, key);
    if (!r.ok() && r.error().code() != StatusCode::kAlreadyExists) return r.error();
  }
  return AbortedError("could not create the token key");
}

std::string TokenStore::KeyFor(std::string_view token) const {
  return std::string(kTokensPrefix) + HexEncode(crypto::HmacSha256(key_, token));
}

Result<SecretBytes> TokenStore::Create(const Identity& who, std::chrono::seconds ttl) {
  std::string random = crypto::RandomBytes(32);
  std::string token = std::string(kPrefix) + Base64UrlEncode(random);
  internal::SecureZero(random.data(), random.size());
  std::string expires = ttl.count() > 0 ? FormatRfc3339(clock_->Now() + ttl) : "";
  store::SideEffects also;
  if (ttl.count() > 0 && hooks_.created) {
    TokenInfo t;
    t.key = KeyFor(token);
    t.path = std::string(kSigilTokenPath);
    t.issued = clock_->Now();
    t.expires = clock_->Now() + ttl;
    SIGIL_RETURN_IF_ERROR(hooks_.created(t, &also));
  }
  SIGIL_RETURN_IF_ERROR(
      store_->Create(KeyFor(token), SecretBytes(Record(who, FormatRfc3339(clock_->Now()), expires).dump()), also).status());
  SecretBytes out(token);
  internal::SecureZero(token.data(), token.size());
  return out;
}

Result<std::optional<SecretBytes>> TokenStore::CreateRootOnce() {
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> marker, store_->Get(kRootKey));
  if (marker) return std::optional<SecretBytes>();
  std::string random = crypto::RandomBytes(32);
  std::string token = std::string(kPrefix) + Base64UrlEncode(random);
  internal::SecureZero(random.data(), random.size());
  Identity root{"sigil-root", "sigil-root", {"system:masters"}, {}, ""};
  std::string key = KeyFor(token);
  store::SideEffects also;
  also.compares.push_back({kRootKey, 0});
  also.puts.emplace_back(kRootKey, SecretBytes(key));
  auto r = store_->Create(key, SecretBytes(Record(root, FormatRfc3339(clock_->Now()), "").dump()), also);
  if (!r.ok() && r.error().code() == StatusCode::kAborted) return std::optional<SecretBytes>();  // made concurrently
  SIGIL_RETURN_IF_ERROR(r.status());
  std::optional<SecretBytes> out{SecretBytes(std::string_view(token))};
  internal::SecureZero(token.data(), token.size());
  return out;
}

Result<TokenInfo> TokenStore::Decode(const store::Object& o) const {
  Json j = Json::parse(o.doc.view(), nullptr, false);
  if (!j.is_object() || !j.contains("user") || !j["user"].is_string()) return DataLossError(o.key + " is malformed");
  TokenInfo t;
  t.key = o.key;
  t.revision = o.revision;
  t.user = j["user"].get<std::string>();
  t.uid = j.value("uid", "");
  auto strings = [&j](const char* f) {
    std::vector<std::string> out;
    if (j.contains(f) && j[f].is_array()) {
      for (const Json& g : j[f]) {
        if (g.is_string()) out.push_back(g.get<std::string>());
      }
    }
    return out;
  };
  t.groups = strings("groups");
  t.policies = strings("policies");
  t.accessor = j.value("accessor", "");
  if (j.contains("meta") && j["meta"].is_object()) {
    for (const auto& [k, v] : j["meta"].items()) {
      if (v.is_string()) t.meta[k] = v.get<std::string>();
    }
  }
  t.display_name = j.value("display_name", "");
  t.path = j.value("path", "");
  t.parent = j.value("parent", "");
  t.creation_ttl = std::chrono::seconds(j.value("creation_ttl", int64_t{0}));
  t.explicit_max_ttl = std::chrono::seconds(j.value("explicit_max_ttl", int64_t{0}));
  t.period = std::chrono::seconds(j.value("period", int64_t{0}));
  t.renewable = j.value("renewable", false);
  t.num_uses = j.value("num_uses", int64_t{0});
  if (j.contains("issued_unix")) {
    t.issued = FromUnix(j.value("issued_unix", int64_t{0}));
  } else if (auto c = ParseUtc(j.value("created", ""))) {
    t.issued = *c;
  }
  if (j.contains("expires_unix")) {
    t.expires = FromUnix(j.value("expires_unix", int64_t{0}));
  } else if (std::string e = j.value("expires", ""); !e.empty()) {
    t.expires = ParseUtc(e).value_or(FromUnix(0));  // unreadable: treat as expired
  }
  return t;
}

Identity TokenInfo::ToIdentity() const {
  Identity id;
  if (!vault()) {
    id.user = user;
    id.uid = uid;
    id.groups = groups;
  } else {
    // A Vault token on the Kubernetes face: user vault-token:<accessor>, uid its accessor, a group
    // per policy (vault:policy:<name>), and system:masters for a root token, so RBAC bindings
    // can grant by policy and a root token is root on both faces.
    id.user = "vault-token:" + accessor;  // never the display name, which the creator chooses
    id.uid = accessor;
    id.extra["sigil.dev/vault-display-name"] = {display_name};
    for (const std::string& p : policies) {
      id.groups.push_back("vault:policy:" + p);
      if (p == "root") id.groups.push_back("system:masters");
    }
    id.policies = policies;
    id.token_accessor = accessor;
    id.metadata = meta;
  }
  id.groups.push_back("system:authenticated");
  id.method = "token";
  id.expires = expires;
  id.limited_use = num_uses > 0;
  id.token_key = key;
  return id;
}

Result<std::optional<Identity>> TokenStore::Lookup(std::string_view token, bool use) {
  SIGIL_ASSIGN_OR_RETURN(std::optional<TokenInfo> t, Find(token));
  if (!t) return std::optional<Identity>();
  if (use && t->num_uses > 0) {
    SIGIL_ASSIGN_OR_RETURN(bool spent, SpendUse(KeyFor(token)));
    if (!spent) return std::optional<Identity>();
  }
  return std::optional<Identity>(t->ToIdentity());
}

Result<bool> TokenStore::SpendUse(const std::string& key) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(key));
    if (!o) return false;
    SIGIL_ASSIGN_OR_RETURN(TokenInfo t, Decode(*o));
    if (t.num_uses <= 0) return false;
    if (t.num_uses == 1) {
      // The last use: revoke now (the token cannot have children: limited-use tokens may not
      // make any). The delete compares the revision read, so of two requests racing for the
      // last use, one wins and the other finds the token gone.
      store::SideEffects also;
      if (!t.accessor.empty()) also.deletes.push_back(std::string(kAccessorsPrefix) + t.accessor);
      if (!t.parent.empty()) also.deletes.push_back(ChildKey(t.parent, key));
      Result<int64_t> r = store_->Delete(key, o->revision, also);
      if (r.ok()) {
        if (hooks_.revoked) hooks_.revoked(t);
        return true;
      }
      if (r.error().code() != StatusCode::kAborted && r.error().code() != StatusCode::kNotFound) return r.error();
      continue;
    }
    t.num_uses -= 1;
    Result<int64_t> r = store_->Update(key, SecretBytes(VaultRecord(t).dump()), o->revision);
    if (r.ok()) return true;
    // kNotFound: another request took the last use (or revoked the token) since the read; the
    // next read finds it gone.
    if (r.error().code() != StatusCode::kAborted && r.error().code() != StatusCode::kNotFound) return r.error();
  }
  return AbortedError("the token kept changing while it was used; try again");
}

Result<std::optional<TokenInfo>> TokenStore::Find(std::string_view token) {
  bool well_formed = (token.starts_with(kPrefix) && token.size() == kPrefix.size() + 43) ||
                     (token.starts_with(kVaultPrefix) && token.size() == kVaultPrefix.size() + 32);
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(KeyFor(token)));
  if (!o || !well_formed) {
    // Same work as a hit: read and decode the decoy, then answer "unknown".
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> decoy, store_->Get(kDecoyKey));
    if (decoy) (void)Decode(*decoy);
    return std::optional<TokenInfo>();
  }
  SIGIL_ASSIGN_OR_RETURN(TokenInfo t, Decode(*o));
  if (Expired(t)) return std::optional<TokenInfo>();
  SIGIL_ASSIGN_OR_RETURN(bool alive, AncestorsAlive(t));
  if (!alive) return std::optional<TokenInfo>();
  return std::optional<TokenInfo>(std::move(t));
}

Status TokenStore::Revoke(std::string_view token) {
  std::string key = KeyFor(token);
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(key));
  if (!o) return NotFoundError("no such token");
  SIGIL_RETURN_IF_ERROR(store_->Delete(key, o->revision).status());
  if (hooks_.revoked) {
    if (Result<TokenInfo> t = Decode(*o); t.ok()) {
      t->path = std::string(kSigilTokenPath);
      hooks_.revoked(*t);
    }
  }
  return OkStatus();
}

Result<bool> TokenStore::PrepareDeletion(const TokenInfo& t, store::SideEffects* also) {
  std::string hash = t.key.substr(t.key.rfind('/') + 1);
  SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> kids, store_->Keys(std::string(kChildrenPrefix) + hash + "/"));
  if (!kids.empty()) return false;
  also->compares.push_back({t.key, t.revision});
  also->deletes.push_back(t.key);
  if (!t.accessor.empty()) also->deletes.push_back(std::string(kAccessorsPrefix) + t.accessor);
  if (!t.parent.empty()) also->deletes.push_back(ChildKey(t.parent, t.key));
  return true;
}

Result<std::optional<TokenInfo>> TokenStore::RecordAt(const std::string& key) {
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(key));
  if (!o) return std::optional<TokenInfo>();
  SIGIL_ASSIGN_OR_RETURN(TokenInfo t, Decode(*o));
  return std::optional<TokenInfo>(std::move(t));
}


// ---- Vault tokens ----

Result<std::pair<SecretBytes, TokenInfo>> TokenStore::CreateVault(const TokenSpec& spec) {
  if (spec.login && std::find(spec.policies.begin(), spec.policies.end(), "root") != spec.policies.end()) {
    return InvalidArgumentError("auth methods cannot create root tokens");
  }
  TokenInfo t;
  t.accessor = RandomBase62(24);
  t.policies = spec.policies;
  t.meta = spec.meta;
  t.display_name = spec.display_name;
  t.path = spec.path;
  t.parent = spec.parent;
  t.issued = clock_->Now();
  if (spec.period.count() > 0) {
    t.expires = t.issued + spec.period;
  } else if (spec.ttl.count() > 0) {
    t.expires = t.issued + spec.ttl;
  }
  if (spec.explicit_max_ttl.count() > 0 && (!t.expires || *t.expires > t.issued + spec.explicit_max_ttl)) {
    t.expires = t.issued + spec.explicit_max_ttl;
  }
  if (spec.parent_expires && (!t.expires || *t.expires > *spec.parent_expires)) t.expires = spec.parent_expires;
  t.creation_ttl = t.expires ? std::chrono::duration_cast<std::chrono::seconds>(*t.expires - t.issued) : std::chrono::seconds(0);
  t.explicit_max_ttl = spec.explicit_max_ttl;
  t.period = spec.period;
  t.renewable = spec.renewable && t.expires.has_value();
  t.num_uses = spec.num_uses;
  std::string token = std::string(kVaultPrefix) + RandomBase62(32);
  t.key = KeyFor(token);
  store::SideEffects also;
  also.compares.push_back({std::string(kAccessorsPrefix) + t.accessor, 0});
  also.puts.emplace_back(std::string(kAccessorsPrefix) + t.accessor, SecretBytes(std::string_view(t.key)));
  if (!t.parent.empty()) {
    // The parent is still there as read, and is rewritten (unchanged) in the same transaction:
    // its new revision makes a revocation of the tree that listed the children before this one
    // fail its compare and start again, so it cannot miss this child.
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> parent, store_->Get(t.parent));
    if (!parent || parent->revision != spec.parent_revision) return AbortedError("the parent token changed or was revoked");
    SIGIL_ASSIGN_OR_RETURN(TokenInfo p, Decode(*parent));
    int depth = 1;
    for (std::string up = p.parent; !up.empty() && depth < kMaxTreeDepth; ++depth) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> a, store_->Get(up));
      if (!a) break;
      SIGIL_ASSIGN_OR_RETURN(TokenInfo ai, Decode(*a));
      up = ai.parent;
    }
    if (depth >= kMaxTreeDepth) {
      return InvalidArgumentError("token trees are limited to " + std::to_string(kMaxTreeDepth) + " levels; create an orphan");
    }
    also.compares.push_back({t.parent, spec.parent_revision});
    also.puts.emplace_back(t.parent, std::move(parent->doc));
    also.puts.emplace_back(ChildKey(t.parent, t.key), SecretBytes(std::string_view("1")));
  }
  if (t.expires && hooks_.created) SIGIL_RETURN_IF_ERROR(hooks_.created(t, &also));
  SIGIL_ASSIGN_OR_RETURN(t.revision, store_->Create(t.key, SecretBytes(VaultRecord(t).dump()), also));
  SecretBytes out(token);
  internal::SecureZero(token.data(), token.size());
  return std::make_pair(std::move(out), std::move(t));
}

Result<std::optional<TokenInfo>> TokenStore::FindByKey(const std::string& key) {
  if (!key.starts_with(kTokensPrefix)) return std::optional<TokenInfo>();
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(key));
  if (!o) return std::optional<TokenInfo>();
  SIGIL_ASSIGN_OR_RETURN(TokenInfo t, Decode(*o));
  if (Expired(t)) return std::optional<TokenInfo>();
  SIGIL_ASSIGN_OR_RETURN(bool alive, AncestorsAlive(t));
  if (!alive) return std::optional<TokenInfo>();
  return std::optional<TokenInfo>(std::move(t));
}

Result<std::optional<TokenInfo>> TokenStore::FindByAccessor(std::string_view accessor) {
  if (accessor.empty() || accessor.size() > 64 || accessor.find('/') != std::string_view::npos) return std::optional<TokenInfo>();
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> a, store_->Get(std::string(kAccessorsPrefix) + std::string(accessor)));
  if (!a) return std::optional<TokenInfo>();
  return FindByKey(std::string(a->doc.view()));
}

Result<TokenInfo> TokenStore::Renew(const std::string& key, std::optional<std::chrono::seconds> increment, bool* capped) {
  *capped = false;
  for (int attempt = 0; attempt < 8; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<TokenInfo> cur, FindByKey(key));
    if (!cur) return NotFoundError("token not found");
    TokenInfo t = std::move(*cur);
    if (!t.renewable || !t.expires) return InvalidArgumentError("lease is not renewable");
    Clock::TimePoint now = clock_->Now();
    std::chrono::seconds want = t.period.count() > 0 ? t.period : increment.value_or(t.creation_ttl);
    if (want.count() <= 0) want = t.creation_ttl;
    Clock::TimePoint next = now + want;
    std::optional<Clock::TimePoint> limit;
    if (t.explicit_max_ttl.count() > 0) limit = t.issued + t.explicit_max_ttl;
    if (t.period.count() == 0) {
      Clock::TimePoint system = t.issued + kMaxTtl;
      if (!limit || system < *limit) limit = system;
    }
    if (!t.parent.empty()) {  // never past the parent's expiry
      SIGIL_ASSIGN_OR_RETURN(std::optional<TokenInfo> parent, FindByKey(t.parent));
      if (!parent) return NotFoundError("token not found");
      if (parent->expires && (!limit || *parent->expires < *limit)) limit = parent->expires;
    }
    if (limit && next > *limit) {
      next = *limit;
      *capped = true;
    }
    if (next <= now) return InvalidArgumentError("past the max TTL, cannot renew");
    t.expires = next;
    Result<int64_t> r = store_->Update(key, SecretBytes(VaultRecord(t).dump()), t.revision);
    if (r.ok()) {
      t.revision = *r;
      return t;
    }
    if (r.error().code() == StatusCode::kNotFound) return NotFoundError("token not found");  // revoked meanwhile
    if (r.error().code() != StatusCode::kAborted) return r.error();
  }
  return AbortedError("the token kept changing while it was renewed; try again");
}

Status TokenStore::RevokeTree(const std::string& key) {
  // Top down, one token at a time. A token is deleted (with its accessor and its entry under
  // its parent) in a compare-on-revision write; a child being made at the same time rewrites
  // its parent, so one of the two retries. Once a token is gone no child can be made under it
  // (a creation compares its parent), so its children index is complete: its children are
  // revoked next. A crash part way leaves descendants whose ancestor is gone, and Find refuses
  // those (it checks the chain).
  std::vector<std::string> todo = {key};
  size_t revoked = 0;
  while (!todo.empty()) {
    if (++revoked > kMaxTreeSize) {
      return ResourceExhaustedError("the token tree has more than " + std::to_string(kMaxTreeSize) +
                                    " tokens; what is revoked so far stays revoked, and the rest is refused");
    }
    std::string k = std::move(todo.back());
    todo.pop_back();
    for (int attempt = 0;; ++attempt) {
      if (attempt == 1000) return AbortedError("the token kept changing while it was revoked; try again");
      SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(k));
      if (!o) break;
      store::SideEffects also;
      Result<TokenInfo> t = Decode(*o);
      if (t.ok()) {
        if (!t->accessor.empty()) also.deletes.push_back(std::string(kAccessorsPrefix) + t->accessor);
        if (!t->parent.empty()) also.deletes.push_back(ChildKey(t->parent, k));
      }
      Result<int64_t> r = store_->Delete(k, o->revision, also);
      if (r.ok()) {
        if (t.ok() && hooks_.revoked) hooks_.revoked(*t);
        break;
      }
      if (r.error().code() != StatusCode::kAborted && r.error().code() != StatusCode::kNotFound) return r.error();
    }
    std::string hash = k.substr(k.rfind('/') + 1);
    SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> kids, store_->Keys(std::string(kChildrenPrefix) + hash + "/"));
    for (const std::string& c : kids) {
      todo.push_back(std::string(kTokensPrefix) + c.substr(c.rfind('/') + 1));
      SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> entry, store_->Get(c));
      if (entry) {
        Result<int64_t> gone = store_->Delete(c, entry->revision);
        if (!gone.ok() && gone.error().code() != StatusCode::kAborted && gone.error().code() != StatusCode::kNotFound) {
          return gone.error();
        }
      }
    }
  }
  return OkStatus();
}

Result<bool> TokenStore::AncestorsAlive(const TokenInfo& t) {
  std::string parent = t.parent;
  for (int depth = 0; !parent.empty(); ++depth) {
    if (depth >= kMaxTreeDepth) return false;
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(parent));
    if (!o) return false;
    SIGIL_ASSIGN_OR_RETURN(TokenInfo p, Decode(*o));
    if (Expired(p)) return false;
    parent = p.parent;
  }
  return true;
}

Status TokenStore::RevokeOrphan(const std::string& key) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> top, store_->Get(key));
    if (!top) return OkStatus();
    SIGIL_ASSIGN_OR_RETURN(TokenInfo t, Decode(*top));
    store::SideEffects also;
    if (!t.accessor.empty()) also.deletes.push_back(std::string(kAccessorsPrefix) + t.accessor);
    if (!t.parent.empty()) also.deletes.push_back(ChildKey(t.parent, key));
    std::string hash = key.substr(key.rfind('/') + 1);
    SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> kids, store_->Keys(std::string(kChildrenPrefix) + hash + "/"));
    for (const std::string& c : kids) {
      also.deletes.push_back(c);
      // The child becomes an orphan: its record forgets the parent.
      std::string child_key = std::string(kTokensPrefix) + c.substr(c.rfind('/') + 1);
      SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> co, store_->Get(child_key));
      if (!co) continue;
      SIGIL_ASSIGN_OR_RETURN(TokenInfo child, Decode(*co));
      child.parent.clear();
      also.compares.push_back({child_key, co->revision});
      also.puts.emplace_back(child_key, SecretBytes(VaultRecord(child).dump()));
    }
    Result<int64_t> r = store_->Delete(key, top->revision, also);
    if (r.ok()) {
      if (hooks_.revoked) {
        if (Result<TokenInfo> gone = Decode(*top); gone.ok()) hooks_.revoked(*gone);
      }
      return OkStatus();
    }
    if (r.error().code() != StatusCode::kAborted && r.error().code() != StatusCode::kNotFound) return r.error();
  }
  return AbortedError("the token kept changing while it was revoked; try again");
}

Result<std::vector<std::string>> TokenStore::Accessors() {
  SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> keys, store_->Keys(kAccessorsPrefix));
  std::vector<std::string> out;
  for (const std::string& k : keys) out.push_back(k.substr(sizeof(kAccessorsPrefix) - 1));
  return out;
}

Result<std::optional<std::string>> TokenStore::GetRole(std::string_view name) {
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(kRolesPrefix + std::string(name)));
  if (!o) return std::optional<std::string>();
  return std::optional<std::string>(std::string(o->doc.view()));
}

Status TokenStore::PutRole(std::string_view name, const std::string& doc) {
  std::string key = kRolesPrefix + std::string(name);
  for (int attempt = 0; attempt < 8; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(key));
    Result<int64_t> r = o ? store_->Update(key, SecretBytes(doc), o->revision) : store_->Create(key, SecretBytes(doc));
    if (r.ok()) return OkStatus();
    if (r.error().code() != StatusCode::kAborted && r.error().code() != StatusCode::kAlreadyExists) return r.error();
  }
  return AbortedError("the role kept changing; try again");
}

Status TokenStore::DeleteRole(std::string_view name) {
  std::string key = kRolesPrefix + std::string(name);
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(key));
  if (!o) return OkStatus();
  Result<int64_t> r = store_->Delete(key, o->revision);
  if (!r.ok() && r.error().code() != StatusCode::kNotFound && r.error().code() != StatusCode::kAborted) return r.error();
  return OkStatus();
}

Result<std::vector<std::string>> TokenStore::RoleNames() {
  SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> keys, store_->Keys(kRolesPrefix));
  std::vector<std::string> out;
  for (const std::string& k : keys) out.push_back(k.substr(sizeof(kRolesPrefix) - 1));
  return out;
}

}  // namespace sigil::auth
