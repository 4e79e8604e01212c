#include "sigil/auth/token_store.h"

#include <nlohmann/json.hpp>

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
  SIGIL_RETURN_IF_ERROR(store_->Create(KeyFor(token), SecretBytes(Record(who, FormatRfc3339(clock_->Now()), expires).dump())).status());
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

Result<std::optional<Identity>> TokenStore::Decode(const store::Object& o, bool* expired) const {
  Json j = Json::parse(o.doc.view(), nullptr, false);
  if (!j.is_object() || !j.contains("user") || !j["user"].is_string()) return DataLossError(o.key + " is malformed");
  Identity id;
  id.user = j["user"].get<std::string>();
  id.uid = j.value("uid", "");
  if (j.contains("groups") && j["groups"].is_array()) {
    for (const Json& g : j["groups"]) {
      if (g.is_string()) id.groups.push_back(g.get<std::string>());
    }
  }
  id.groups.push_back("system:authenticated");
  id.method = "token";
  std::string expires = j.value("expires", "");
  *expired = !expires.empty() && expires <= FormatRfc3339(clock_->Now());  // RFC 3339 UTC sorts as time
  return std::optional<Identity>(std::move(id));
}

Result<std::optional<Identity>> TokenStore::Lookup(std::string_view token) {
  bool well_formed = token.starts_with(kPrefix) && token.size() == kPrefix.size() + 43;
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(KeyFor(token)));
  bool expired = false;
  if (!o || !well_formed) {
    // Same work as a hit: read and decode the decoy, then answer "unknown".
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> decoy, store_->Get(kDecoyKey));
    if (decoy) (void)Decode(*decoy, &expired);
    return std::optional<Identity>();
  }
  SIGIL_ASSIGN_OR_RETURN(std::optional<Identity> id, Decode(*o, &expired));
  if (expired) return std::optional<Identity>();
  return id;
}

Status TokenStore::Revoke(std::string_view token) {
  std::string key = KeyFor(token);
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(key));
  if (!o) return NotFoundError("no such token");
  return store_->Delete(key, o->revision).status();
}

}  // namespace sigil::auth
