// api/vault/auth_token.cc: Vault tokens (auth/token/*): create (child or orphan), look up,
// renew and revoke (by token, accessor or self), revoke-orphan, and the accessor list.
// Tokens live in auth::TokenStore, as keyed hashes; token roles in auth_token_roles.cc. See
// docs/vault-api.md for what differs from Vault (no batch tokens or custom ids).
#include <algorithm>
#include <set>

#include "sigil/api/vault/impl.h"
#include "sigil/base/logging.h"

namespace sigil::vault {
namespace {

int64_t Seconds(std::chrono::seconds s) { return s.count(); }
int64_t UnixOf(Clock::TimePoint t) { return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count(); }

Json MetaJson(const std::map<std::string, std::string>& meta) {
  if (meta.empty()) return nullptr;
  Json m = Json::object();
  for (const auto& [k, v] : meta) m[k] = v;
  return m;
}

// The `auth` block of a create or renew.
Json AuthBlock(const auth::TokenInfo& t, std::string_view token, Clock::TimePoint now) {
  int64_t ttl = t.expires ? std::max<int64_t>(0, UnixOf(*t.expires) - UnixOf(now)) : 0;
  return Json{{"client_token", std::string(token)},
              {"accessor", t.accessor},
              {"policies", t.policies},
              {"token_policies", t.policies},
              {"metadata", MetaJson(t.meta)},
              {"lease_duration", ttl},
              {"renewable", t.renewable},
              {"entity_id", ""},
              {"token_type", "service"},
              {"orphan", t.parent.empty()},
              {"mfa_requirement", nullptr},
              {"num_uses", t.num_uses}};
}

// lookup's data. `id` is the token when the caller presented it, "" for an accessor lookup.
Json LookupData(const auth::TokenInfo& t, std::string_view id, Clock::TimePoint now) {
  int64_t ttl = t.expires ? std::max<int64_t>(0, UnixOf(*t.expires) - UnixOf(now)) : 0;
  Json d = Json{{"accessor", t.accessor},
              {"creation_time", UnixOf(t.issued)},
              {"creation_ttl", Seconds(t.creation_ttl)},
              {"display_name", t.display_name},
              {"entity_id", ""},
              {"expire_time", t.expires ? Json(FormatRfc3339(*t.expires)) : Json(nullptr)},
              {"explicit_max_ttl", Seconds(t.explicit_max_ttl)},
              {"id", std::string(id)},
              {"issue_time", FormatRfc3339(t.issued)},
              {"meta", MetaJson(t.meta)},
              {"num_uses", t.num_uses},
              {"orphan", t.parent.empty()},
              {"path", t.path},
              {"policies", t.policies},
              {"renewable", t.renewable},
              {"ttl", ttl},
              {"type", "service"}};
  if (t.period.count() > 0) d["period"] = Seconds(t.period);  // Vault omits a zero period
  return d;
}

// A caller that is not a Vault token (sigil's root token, a token-file user, a service
// account...), described as lookup-self describes a token.
auth::TokenInfo DescribeIdentity(const Identity& who) {
  auth::TokenInfo t;
  t.accessor = who.token_accessor;  // a limited-use token on its last use: revoked as it authenticated
  t.policies = authz::PolicyStore::PoliciesOf(who);
  t.display_name = who.user;
  t.path = "auth/token/create";
  t.expires = who.expires;
  return t;
}

}  // namespace

Json LoginAuth(const auth::TokenInfo& t, std::string_view token) { return AuthBlock(t, token, t.issued); }

Reply VaultApi::Impl::IssueLoginToken(const Json& record, std::map<std::string, std::string> meta, std::string display_name,
                                      std::string path, const engines::Mount& mount) {
  if (options_.tokens == nullptr) return Error(500, "tokens are not available");
  auth::TokenSpec spec;
  std::set<std::string> set;
  for (const Json& p : record.value("token_policies", Json::array())) {
    if (p.is_string()) set.insert(p.get<std::string>());
  }
  set.insert("default");
  spec.policies.assign(set.begin(), set.end());
  spec.meta = std::move(meta);
  spec.display_name = std::move(display_name);
  spec.path = std::move(path);
  int64_t ttl = record.value("token_ttl", int64_t{0});
  int64_t max = record.value("token_max_ttl", int64_t{0});
  if (ttl <= 0) ttl = mount.default_lease_ttl > 0 ? mount.default_lease_ttl : mount.max_lease_ttl;
  if (mount.max_lease_ttl > 0 && (max <= 0 || mount.max_lease_ttl < max)) max = mount.max_lease_ttl;
  spec.ttl = std::chrono::seconds(ttl > 0 ? ttl : auth::TokenStore::kMaxTtl.count());
  spec.explicit_max_ttl = std::chrono::seconds(max);
  if (max > 0 && spec.ttl.count() > max) spec.ttl = std::chrono::seconds(max);
  spec.login = true;  // the store refuses "root"
  Result<std::pair<SecretBytes, auth::TokenInfo>> made = options_.tokens->CreateVault(spec);
  if (!made.ok()) {
    if (made.error().code() == StatusCode::kInvalidArgument) return Error(400, made.error().message());
    return errors_.Render(made.error(), core::RequestInfo{});
  }
  return Envelope(nullptr, {}, LoginAuth(made->second, made->first.view()));
}

std::optional<Reply> VaultApi::Impl::AuthToken(const Request& r, const Identity* who) {
  if (!r.path.starts_with("auth/token/")) return std::nullopt;
  if (options_.tokens == nullptr || who == nullptr) return std::nullopt;
  auth::TokenStore& tokens = *options_.tokens;
  std::string_view op = std::string_view(r.path).substr(11);
  Clock::TimePoint now = clock_->Now();
  auto fail = [this](const Status& st) {
    if (st.code() == StatusCode::kInvalidArgument) return Error(400, st.message());
    return errors_.Render(st, core::RequestInfo{});
  };
  auto write_only = [&r]() { return r.op == Operation::kWrite; };

  // The caller's own record, when the caller is a Vault token.
  auto self = [&]() -> Result<std::optional<auth::TokenInfo>> {
    if (who->token_accessor.empty()) return std::optional<auth::TokenInfo>();
    return tokens.FindByAccessor(who->token_accessor);
  };
  // The token a request names: by "token" in the body, by "accessor", or the caller's own.
  enum class By { kToken, kAccessor, kSelf };
  auto target = [&](By by, std::string* id) -> Result<std::optional<auth::TokenInfo>> {
    if (by == By::kSelf) {
      *id = r.token;
      return self();
    }
    SIGIL_ASSIGN_OR_RETURN(std::optional<std::string> v, StringField(r.body, by == By::kToken ? "token" : "accessor"));
    if (!v || v->empty()) return InvalidArgumentError(by == By::kToken ? "missing token" : "missing accessor");
    if (by == By::kToken) {
      *id = *v;
      return tokens.Find(*v);
    }
    return tokens.FindByAccessor(*v);
  };

  if (std::optional<Reply> roles = TokenRoles(r)) return roles;

  if (op == "create" || op == "create-orphan" || op.starts_with("create/")) {
    if (!write_only()) return Error(405, "unsupported operation");
    // auth/token/create/<role>: the role's rules replace some of the usual ones (below).
    std::optional<Json> role;
    std::string role_name;
    if (op.starts_with("create/")) {
      role_name = std::string(op.substr(7));
      Result<std::optional<Json>> found = TokenRole(role_name);
      if (!found.ok()) return fail(found.error());
      if (!*found) return Error(400, "unknown role " + role_name.substr(0, 128));
      role = std::move(*found);
    }
    for (const char* unsupported : {"id", "entity_alias"}) {
      if (r.body.contains(unsupported) && !r.body[unsupported].is_null() && r.body[unsupported] != "") {
        return Error(400, std::string("\"") + unsupported + "\" is not supported by sigil");
      }
    }
    Result<std::optional<std::string>> type = StringField(r.body, "type");
    if (!type.ok()) return fail(type.error());
    if (*type && **type != "service" && **type != "default") return Error(400, "only service tokens are supported by sigil");
    Result<std::optional<int64_t>> uses = IntField(r.body, "num_uses");
    if (!uses.ok()) return fail(uses.error());
    if (*uses && **uses < 0) return Error(400, "number of uses cannot be negative");
    auto policies = ListField(r.body, "policies");
    auto no_default = BoolField(r.body, "no_default_policy");
    auto no_parent = BoolField(r.body, "no_parent");
    auto renewable = BoolField(r.body, "renewable");
    auto ttl = DurationField(r.body, "ttl");
    auto lease = DurationField(r.body, "lease");  // Vault's deprecated alias of ttl
    auto max_ttl = DurationField(r.body, "explicit_max_ttl");
    auto period = DurationField(r.body, "period");
    auto display = StringField(r.body, "display_name");
    for (const Status& st : {policies.status(), no_default.status(), no_parent.status(), renewable.status(), ttl.status(),
                             lease.status(), max_ttl.status(), period.status(), display.status()}) {
      if (!st.ok()) return fail(st);
    }
    std::map<std::string, std::string> meta;
    if (r.body.contains("meta") && !r.body["meta"].is_null()) {
      if (!r.body["meta"].is_object()) return Error(400, "error converting input for field \"meta\": expected a map of strings");
      for (const auto& [k, v] : r.body["meta"].items()) {
        if (!v.is_string()) return Error(400, "error converting input for field \"meta\": expected a map of strings");
        meta[k] = v.get<std::string>();
      }
    }
    authz::Acl acl = options_.policies->AclFor(*who);
    // With a role, the role decides orphan-ness (no_parent is ignored, as in Vault). Sudo is
    // looked up on the path the request used.
    bool role_orphan = role && role->value("orphan", false);
    bool orphan = op == "create-orphan" || (role ? role_orphan : no_parent->value_or(false));
    bool sudo = acl.Allows(r.path, authz::kCapUpdate, true);
    if (!role && no_parent->value_or(false) && op != "create-orphan" && !sudo) {
      return Error(400, "root or sudo privileges required to create orphan token");
    }
    if (period->value_or(std::chrono::seconds(0)).count() > 0 && !sudo) {
      return Error(400, "root or sudo privileges required to create periodic token");
    }
    // The parent: the caller's own Vault token. Other callers (sigil's tokens, token-file users,
    // service accounts, certificates) have no place in Vault's tree, so what they make is an
    // orphan.
    Result<std::optional<auth::TokenInfo>> parent = self();
    if (!parent.ok()) return fail(parent.error());
    // The caller is a Vault token that no longer exists (revoked since it authenticated): it
    // must not make an orphan that escapes the revocation.
    if (!who->token_accessor.empty() && !parent->has_value()) return Error(403, "permission denied");
    if (parent->has_value() && (*parent)->num_uses > 0) return Error(400, "restricted use token cannot generate child tokens");
    std::vector<std::string> parent_policies = authz::PolicyStore::PoliciesOf(*who);
    bool parent_root = std::find(parent_policies.begin(), parent_policies.end(), "root") != parent_policies.end();
    std::vector<std::string> allowed, disallowed;
    if (role) {
      for (const Json& p : role->value("allowed_policies", Json::array())) {
        if (p.is_string()) allowed.push_back(p.get<std::string>());
      }
      for (const Json& p : role->value("disallowed_policies", Json::array())) {
        if (p.is_string()) disallowed.push_back(p.get<std::string>());
      }
    }
    std::vector<std::string> wanted = policies->value_or(allowed.empty() ? parent_policies : allowed);
    std::set<std::string> set;
    for (std::string p : wanted) {
      p = authz::PolicyStore::Lower(p);
      if (!p.empty()) set.insert(p);
    }
    bool default_disallowed = std::find(disallowed.begin(), disallowed.end(), "default") != disallowed.end();
    if (default_disallowed && set.count("default")) return Error(400, "token policy (default) is disallowed by this role");
    bool drop_default = no_default->value_or(false) || (role && role->value("token_no_default_policy", false)) ||
                        default_disallowed;
    if (!drop_default) {
      set.insert("default");
    } else {
      set.erase("default");
    }
    for (const std::string& p : set) {
      if (std::find(disallowed.begin(), disallowed.end(), p) != disallowed.end()) {
        return Error(400, "token policy (" + p + ") is disallowed by this role");
      }
    }
    if (!allowed.empty()) {
      // A role's allowed policies replace the rule that a child holds a subset of its parent's.
      for (const std::string& p : set) {
        if (p != "default" && std::find(allowed.begin(), allowed.end(), p) == allowed.end()) {
          return Error(400, "token policies (" + p + ") must be subset of the role's allowed policies");
        }
      }
    } else if (!parent_root) {  // (the usual rule)
      for (const std::string& p : set) {
        if (p == "default") continue;
        if (std::find(parent_policies.begin(), parent_policies.end(), p) == parent_policies.end()) {
          return Error(400, "child policies must be subset of parent");
        }
      }
    }
    // Only a root token makes root tokens, whatever a role allows (Vault's rule).
    if (set.count("root") && !parent_root) return Error(400, "root tokens may not be created without parent token being root");
    auth::TokenSpec spec;
    spec.policies.assign(set.begin(), set.end());
    if (set.count("root") && set.size() > 1) {  // a root token holds root alone, as Vault's do
      spec.policies = {"root"};
    }
    spec.meta = std::move(meta);
    std::string name = display->value_or("");
    std::string clean;
    for (char c : name) {
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') clean += c;
    }
    spec.display_name = clean.empty() ? "token" : "token-" + clean.substr(0, 64);
    spec.path = "auth/token/" + std::string(op);
    if (role && !role->value("path_suffix", "").empty()) spec.path += "/" + role->value("path_suffix", "");
    if (!orphan && parent->has_value()) {
      spec.parent = (*parent)->key;
      spec.parent_revision = (*parent)->revision;
      spec.parent_expires = (*parent)->expires;
    }
    std::vector<std::string> warnings;
    std::chrono::seconds want = ttl->value_or(lease->value_or(std::chrono::seconds(0)));
    bool root_token = spec.policies == std::vector<std::string>{"root"};
    if (want.count() == 0 && !root_token) want = auth::TokenStore::kMaxTtl;  // Vault's default TTL: 768h
    if (want.count() == 0 && who->expires) return Error(400, "expiring root tokens cannot create non-expiring root tokens");
    if (period->value_or(std::chrono::seconds(0)).count() == 0 && want > auth::TokenStore::kMaxTtl) {
      want = auth::TokenStore::kMaxTtl;
      warnings.push_back("TTL of \"" + std::to_string(want.count()) + "s\" exceeded the effective max_ttl; TTL value is capped");
    }
    spec.ttl = want;
    spec.explicit_max_ttl = max_ttl->value_or(std::chrono::seconds(0));
    spec.period = period->value_or(std::chrono::seconds(0));
    spec.renewable = renewable->value_or(true);
    spec.num_uses = uses->value_or(0);
    if (role) {
      // The role's limits apply whatever the request asks; they need no sudo.
      std::chrono::seconds role_max(role->value("token_explicit_max_ttl", int64_t{0}));
      if (role_max.count() > 0 && (spec.explicit_max_ttl.count() == 0 || role_max < spec.explicit_max_ttl)) {
        spec.explicit_max_ttl = role_max;
      }
      std::chrono::seconds role_period(role->value("token_period", int64_t{0}));
      if (role_period.count() > 0 && (spec.period.count() == 0 || role_period < spec.period)) spec.period = role_period;
      if (!role->value("renewable", true)) spec.renewable = false;
      int64_t role_uses = role->value("token_num_uses", int64_t{0});
      if (role_uses > 0 && (spec.num_uses == 0 || role_uses < spec.num_uses)) spec.num_uses = role_uses;
    }
    // A period is capped at the system's max TTL, as Vault caps it at the effective max.
    if (spec.period > auth::TokenStore::kMaxTtl) {
      spec.period = auth::TokenStore::kMaxTtl;
      warnings.push_back("period of the token was capped at the system's max TTL (768h)");
    }
    for (const std::string& p : spec.policies) {
      if (p != "root" && !options_.policies->Text(p)) warnings.push_back("Policy \"" + p + "\" does not exist");
    }
    Result<std::pair<SecretBytes, auth::TokenInfo>> made = tokens.CreateVault(spec);
    if (!made.ok() && made.error().code() == StatusCode::kAborted) {
      return Error(400, "the parent token changed or was revoked while the child was created; try again");
    }
    if (!made.ok()) return fail(made.error());
    Json auth = AuthBlock(made->second, made->first.view(), now);
    return Envelope(nullptr, warnings, std::move(auth));
  }

  if (op == "lookup-self" || op == "lookup" || op == "lookup-accessor") {
    By by = op == "lookup-self" ? By::kSelf : op == "lookup" ? By::kToken : By::kAccessor;
    if (by == By::kSelf ? r.op != Operation::kRead : !write_only()) return Error(405, "unsupported operation");
    std::string id;
    Result<std::optional<auth::TokenInfo>> t = target(by, &id);
    if (!t.ok()) return fail(t.error());
    if (!*t && by == By::kSelf) return Envelope(LookupData(DescribeIdentity(*who), r.token, now));
    if (!*t) return Error(403, "bad token");
    return Envelope(LookupData(**t, by == By::kAccessor ? "" : id, now));
  }

  if (op == "renew-self" || op == "renew" || op == "renew-accessor") {
    if (!write_only()) return Error(405, "unsupported operation");
    By by = op == "renew-self" ? By::kSelf : op == "renew" ? By::kToken : By::kAccessor;
    std::string id;
    Result<std::optional<auth::TokenInfo>> t = target(by, &id);
    if (!t.ok()) return fail(t.error());
    if (!*t) {
      if (by == By::kSelf) return Error(400, "lease is not renewable");
      return Error(400, "token not found");
    }
    Result<std::optional<std::chrono::seconds>> inc = DurationField(r.body, "increment");
    if (!inc.ok()) return fail(inc.error());
    bool capped = false;
    // A token whose revocation was asked for (its lease queued) cannot be renewed out of it.
    std::string lease_id = leases::Manager::IdFor((*t)->path.empty() ? auth::TokenStore::kSigilTokenPath : std::string_view((*t)->path), (*t)->key);
    if (options_.leases != nullptr) {
      Result<std::optional<leases::Lease>> lease = options_.leases->Lookup(lease_id);
      if (!lease.ok()) return fail(lease.error());
      if (*lease && (*lease)->requested) return Error(400, "the token is being revoked");
    }
    Result<auth::TokenInfo> renewed = tokens.Renew((*t)->key, *inc, &capped);
    if (!renewed.ok()) return fail(renewed.error());
    if (options_.leases != nullptr && renewed->expires) {  // the token's lease follows it
      Status moved = options_.leases->Extend(lease_id, *renewed->expires);
      if (!moved.ok() && moved.code() != StatusCode::kNotFound) log::Warn("leases: a renewed token's lease did not follow", {{"error", moved.message()}});
    }
    std::vector<std::string> warnings;
    if (capped) warnings.push_back("TTL of the renewal exceeded the token's max TTL; TTL value is capped accordingly");
    return Envelope(nullptr, warnings, AuthBlock(*renewed, by == By::kAccessor ? "" : id, now));
  }

  if (op == "revoke-self" || op == "revoke" || op == "revoke-accessor" || op == "revoke-orphan") {
    if (!write_only()) return Error(405, "unsupported operation");
    By by = op == "revoke-self" ? By::kSelf : op == "revoke-accessor" ? By::kAccessor : By::kToken;
    std::string id;
    Result<std::optional<auth::TokenInfo>> t = target(by, &id);
    if (!t.ok()) return fail(t.error());
    if (!*t) {
      // sigil's own tokens (sgl_) are revoked here too; others have nothing to revoke.
      if (by == By::kSelf && r.token.starts_with(auth::TokenStore::kPrefix)) {
        Status st = tokens.Revoke(r.token);
        if (!st.ok() && st.code() != StatusCode::kNotFound) return fail(st);
        return NoContent();
      }
      // A limited-use Vault token on its last use was revoked as it authenticated: done.
      if (by == By::kSelf && !who->token_accessor.empty()) return NoContent();
      if (by == By::kSelf) return Error(400, "this caller's credential is not a token that can be revoked");
      return Error(400, "token to revoke not found");
    }
    if (!(*t)->vault()) {
      Status st = tokens.Revoke(id);
      if (!st.ok() && st.code() != StatusCode::kNotFound) return fail(st);
      return NoContent();
    }
    Status st = op == "revoke-orphan" ? tokens.RevokeOrphan((*t)->key) : tokens.RevokeTree((*t)->key);
    if (!st.ok()) return fail(st);
    return NoContent();
  }

  if (op == "accessors" || op == "accessors/") {
    if (r.op != Operation::kList) return Error(405, "unsupported operation");
    Result<std::vector<std::string>> keys = tokens.Accessors();
    if (!keys.ok()) return fail(keys.error());
    if (keys->empty()) return NotFound();
    return Envelope(Json{{"keys", *keys}});
  }
  return std::nullopt;
}

}  // namespace sigil::vault
