#include "sigil/authz/policy_store.h"

#include <algorithm>
#include <mutex>

#include "sigil/base/logging.h"

namespace sigil::authz {
namespace {

// What every token holds unless it is created without it (Vault's "default" policy grants the
// same paths): a token may look itself up, renew and revoke itself, ask its capabilities, look
// up and renew its leases, hash with sys/tools, use response wrapping, and keep a cubbyhole.
constexpr char kDefaultPolicy[] = R"(# Allows a token to look up its own properties.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Allows a token to renew and to revoke itself.
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Allows a token to ask what it may do on a path.
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# Allows a token to look up and renew the leases it holds.
path "sys/leases/lookup" {
  capabilities = ["update"]
}
path "sys/leases/renew" {
  capabilities = ["update"]
}
path "sys/renew" {
  capabilities = ["update"]
}

# Hashing tools.
path "sys/tools/hash" {
  capabilities = ["update"]
}
path "sys/tools/hash/*" {
  capabilities = ["update"]
}

# Response wrapping.
path "sys/wrapping/wrap" {
  capabilities = ["update"]
}
path "sys/wrapping/lookup" {
  capabilities = ["update"]
}
path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}

# The token's own cubbyhole.
path "cubbyhole/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
)";

bool ValidName(std::string_view n) {
  if (n.empty() || n.size() > 128 || n == "." || n == "..") return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '@';
  });
}

}  // namespace

std::string PolicyStore::Lower(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Result<std::unique_ptr<PolicyStore>> PolicyStore::Open(store::ObjectStore* store) {
  std::unique_ptr<PolicyStore> p(new PolicyStore(store));
  auto made = store->Create(std::string(kPrefix) + "default", SecretBytes(std::string_view(kDefaultPolicy)));
  if (!made.ok() && made.error().code() != StatusCode::kAlreadyExists) return made.error();
  SIGIL_ASSIGN_OR_RETURN(store::ObjectList l, store->List(kPrefix, "", 0));
  for (const store::Object& o : l.items) {
    p->Apply(o.key.substr(sizeof(kPrefix) - 1), std::string(o.doc.view()), o.revision);
  }
  PolicyStore* self = p.get();
  SIGIL_ASSIGN_OR_RETURN(p->watch_, store->Watch(kPrefix, l.revision, [self](const std::vector<store::ObjectEvent>& events,
                                                                              const Status& error) {
    for (const store::ObjectEvent& e : events) {
      std::string name = e.key.substr(sizeof(kPrefix) - 1);
      if (e.type == store::ObjectEvent::Type::kPut && e.object) {
        self->Apply(name, std::string(e.object->doc.view()), e.revision);
      } else {
        self->Apply(name, std::nullopt, e.revision);
      }
    }
    if (!error.ok()) log::Error("policy watch: a policy failed to decrypt; decisions may be stale", {{"error", error.message()}});
  }));
  return p;
}

PolicyStore::~PolicyStore() { watch_.reset(); }

void PolicyStore::Apply(const std::string& name, const std::optional<std::string>& text, int64_t revision) {
  std::shared_ptr<const AclPolicy> parsed;
  if (text) {
    Result<AclPolicy> r = ParseAclPolicy(name, *text);
    if (r.ok()) {
      parsed = std::make_shared<const AclPolicy>(std::move(r).value());
    } else {
      // Only valid text is ever written; a stored policy that does not parse grants nothing.
      log::Error("stored ACL policy does not parse; it grants nothing", {{"policy", name}});
      parsed = std::make_shared<const AclPolicy>(AclPolicy{name, {}, {}});
    }
  }
  std::unique_lock<std::shared_mutex> l(mu_);
  Entry& e = entries_[name];
  if (revision <= e.revision) return;  // already applied (by Put, or an older event)
  e.revision = revision;
  e.policy = std::move(parsed);
  e.text = text.value_or("");
}

std::optional<std::string> PolicyStore::Text(std::string_view name) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  auto it = entries_.find(Lower(name));
  if (it == entries_.end() || !it->second.policy) return std::nullopt;
  return it->second.text;
}

std::vector<std::string> PolicyStore::Names() const {
  std::vector<std::string> out;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    for (const auto& [name, e] : entries_) {
      if (e.policy) out.push_back(name);
    }
  }
  out.push_back("root");
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<std::string>> PolicyStore::Put(std::string_view raw_name, std::string_view text) {
  std::string name = Lower(raw_name);
  if (name == "root") return InvalidArgumentError("cannot update \"root\" policy");
  if (!ValidName(name)) {
    return InvalidArgumentError("invalid policy name: up to 128 of the characters a-z, 0-9, '-', '_', '.' and '@'");
  }
  SIGIL_ASSIGN_OR_RETURN(AclPolicy parsed, ParseAclPolicy(name, text));
  std::vector<std::string> warnings = parsed.warnings;
  std::string key = std::string(kPrefix) + name;
  SecretBytes doc{text};
  // Create or replace, whichever the store's state calls for; a racing writer makes us retry.
  for (int attempt = 0; attempt < 8; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> cur, store_->Get(key));
    Result<int64_t> rev = cur ? store_->Update(key, doc, cur->revision) : store_->Create(key, doc);
    if (rev.ok()) {
      Apply(name, std::string(text), *rev);
      return warnings;
    }
    if (rev.error().code() != StatusCode::kAborted && rev.error().code() != StatusCode::kAlreadyExists &&
        rev.error().code() != StatusCode::kNotFound) {
      return rev.error();
    }
  }
  return AbortedError("the policy kept changing while it was written; try again");
}

Status PolicyStore::Delete(std::string_view raw_name) {
  std::string name = Lower(raw_name);
  if (name == "root") return InvalidArgumentError("cannot delete \"root\" policy");
  if (name == "default") return InvalidArgumentError("cannot delete \"default\" policy");
  std::string key = std::string(kPrefix) + name;
  for (int attempt = 0; attempt < 8; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> cur, store_->Get(key));
    if (!cur) return OkStatus();
    Result<int64_t> rev = store_->Delete(key, cur->revision);
    if (rev.ok()) {
      Apply(name, std::nullopt, *rev);
      return OkStatus();
    }
    if (rev.error().code() != StatusCode::kAborted && rev.error().code() != StatusCode::kNotFound) return rev.error();
  }
  return AbortedError("the policy kept changing while it was deleted; try again");
}

namespace {

bool ValidPasswordPolicyName(std::string_view n) {
  return !n.empty() && n.size() <= 128 && n.find('/') == std::string_view::npos && n != "." && n != ".." &&
         std::all_of(n.begin(), n.end(), [](char c) { return static_cast<unsigned char>(c) > 0x20 && c != 0x7f; });
}

}  // namespace

Status PolicyStore::PutPasswordPolicy(std::string_view name, std::string_view text) {
  if (!ValidPasswordPolicyName(name)) return InvalidArgumentError("invalid password policy name");
  SIGIL_ASSIGN_OR_RETURN(PasswordPolicy p, ParsePasswordPolicy(text));
  Result<SecretBytes> sample = authz::GeneratePassword(p);  // as Vault: a policy that cannot generate is refused
  if (!sample.ok()) return InvalidArgumentError("unable to generate password from provided policy: " + sample.error().message());
  std::string key = std::string(kPasswordPrefix) + std::string(name);
  for (int attempt = 0; attempt < 8; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> cur, store_->Get(key));
    Result<int64_t> w = cur ? store_->Update(key, SecretBytes(text), cur->revision) : store_->Create(key, SecretBytes(text));
    if (w.ok()) return OkStatus();
    if (w.error().code() != StatusCode::kAborted && w.error().code() != StatusCode::kAlreadyExists) return w.error();
  }
  return AbortedError("the password policy kept changing; try again");
}

Result<std::optional<std::string>> PolicyStore::PasswordPolicyText(std::string_view name) const {
  if (!ValidPasswordPolicyName(name)) return std::optional<std::string>();
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> cur, store_->Get(std::string(kPasswordPrefix) + std::string(name)));
  if (!cur) return std::optional<std::string>();
  return std::optional<std::string>(std::string(cur->doc.view()));
}

Status PolicyStore::DeletePasswordPolicy(std::string_view name) {
  if (!ValidPasswordPolicyName(name)) return OkStatus();
  std::string key = std::string(kPasswordPrefix) + std::string(name);
  for (int attempt = 0; attempt < 8; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> cur, store_->Get(key));
    if (!cur) return OkStatus();
    Result<int64_t> d = store_->Delete(key, cur->revision);
    if (d.ok() || d.error().code() == StatusCode::kNotFound) return OkStatus();
    if (d.error().code() != StatusCode::kAborted) return d.error();
  }
  return AbortedError("the password policy kept changing; try again");
}

Result<std::vector<std::string>> PolicyStore::PasswordPolicyNames() const {
  SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> keys, store_->Keys(kPasswordPrefix));
  for (std::string& k : keys) k = k.substr(sizeof(kPasswordPrefix) - 1);
  return keys;
}

Result<SecretBytes> PolicyStore::GeneratePassword(std::string_view name) const {
  SIGIL_ASSIGN_OR_RETURN(std::optional<std::string> text, PasswordPolicyText(name));
  if (!text) return NotFoundError("password policy \"" + std::string(name.substr(0, 64)) + "\" not found");
  SIGIL_ASSIGN_OR_RETURN(PasswordPolicy p, ParsePasswordPolicy(*text));
  return authz::GeneratePassword(p);
}

std::vector<std::string> PolicyStore::PoliciesOf(const Identity& who) {
  if (!who.policies.empty() || !who.token_accessor.empty()) return who.policies;  // a Vault token's, even none
  if (std::find(who.groups.begin(), who.groups.end(), "system:masters") != who.groups.end()) return {"root"};
  return {"default"};
}

Acl PolicyStore::AclFor(const Identity& who) const {
  std::vector<std::string> names = PoliciesOf(who);
  bool root = std::find(names.begin(), names.end(), "root") != names.end();
  std::vector<std::shared_ptr<const AclPolicy>> held;
  {
    std::shared_lock<std::shared_mutex> l(mu_);
    for (const std::string& n : names) {
      auto it = entries_.find(Lower(n));
      if (it != entries_.end() && it->second.policy) held.push_back(it->second.policy);
    }
  }
  std::vector<const AclPolicy*> ptrs;
  for (const auto& p : held) ptrs.push_back(p.get());
  return Acl::Compile(ptrs, root);
}

}  // namespace sigil::authz
