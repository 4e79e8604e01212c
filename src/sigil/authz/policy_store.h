// authz/policy_store.h: the Vault face's ACL policies (acl_policy.h) by name, and its
// authorization decision.
//
// Each policy is kept as the text it was written in (HCL or JSON), encrypted in the store at
// /sigil/vault/policies/<name>; the parsed form lives in memory, loaded at Open and kept
// current by a store watch (so every server on a shared store sees every write), and a write
// through this object applies at once (read-your-writes), the watch's copy of it being ignored.
// Names are lowercased, as Vault does.
//
// Built in: "root" grants every capability on every path; it has no text and cannot be written
// or deleted. "default" is created at first start with sigil's default text (what every token
// needs about itself: look itself up, renew and revoke itself, its capabilities, its leases,
// cubbyhole) and may be edited but not deleted.
//
// Which policies an Identity holds: its `policies` when it carries any (Vault tokens and
// logins); otherwise "root" for members of system:masters (sigil's root token, as it is on
// the Kubernetes face) and "default" for everyone else. Documented in docs/vault-api.md.
// A policy a token names that does not exist grants nothing. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sigil/authz/acl.h"
#include "sigil/authz/acl_policy.h"
#include "sigil/authz/password_policy.h"
#include "sigil/base/identity.h"
#include "sigil/store/object_store.h"

namespace sigil::authz {

class PolicyStore {
 public:
  static Result<std::unique_ptr<PolicyStore>> Open(store::ObjectStore* store);
  ~PolicyStore();

  // The text of policy `name` (lowercased); nullopt when it does not exist. "root" has none.
  std::optional<std::string> Text(std::string_view name) const;
  // Every policy's name, sorted; "root" included.
  std::vector<std::string> Names() const;
  // Creates or replaces policy `name` with `text`. kInvalidArgument: a bad name, "root", or a
  // text that does not parse (the message says where). Returns the parser's warnings
  // (constructs accepted but not enforced).
  Result<std::vector<std::string>> Put(std::string_view name, std::string_view text);
  // Deletes policy `name`; deleting one that does not exist succeeds. kInvalidArgument for
  // "root" and "default".
  Status Delete(std::string_view name);

  // The policy names `who` holds (see above).
  static std::vector<std::string> PoliciesOf(const Identity& who);
  // The ACL of `who` now: the current contents of the policies it holds.
  Acl AclFor(const Identity& who) const;
  // Whether `who` may perform `needed` on `path` (no leading slash), with sudo when the path
  // is root-protected.
  bool Allows(const Identity& who, std::string_view path, Capability needed, bool needs_sudo) const {
    return AclFor(who).Allows(path, needed, needs_sudo);
  }

  static std::string Lower(std::string_view name);
  static constexpr char kPrefix[] = "/sigil/vault/policies/";

  // Password policies (password_policy.h), read from the store when used (no cache: they are
  // read when credentials are made). Names as ACL policy names. Put validates the text and
  // that it can generate a password (kInvalidArgument).
  static constexpr char kPasswordPrefix[] = "/sigil/vault/password-policies/";
  Status PutPasswordPolicy(std::string_view name, std::string_view text);
  Result<std::optional<std::string>> PasswordPolicyText(std::string_view name) const;
  Status DeletePasswordPolicy(std::string_view name);
  Result<std::vector<std::string>> PasswordPolicyNames() const;
  // A password under policy `name`: kNotFound when there is no such policy.
  Result<SecretBytes> GeneratePassword(std::string_view name) const;

 private:
  explicit PolicyStore(store::ObjectStore* store) : store_(store) {}
  struct Entry {
    int64_t revision = 0;
    std::shared_ptr<const AclPolicy> policy;  // null: deleted at `revision`
    std::string text;
  };
  // Applies the state of `name` at `revision`, unless a newer one has been applied.
  void Apply(const std::string& name, const std::optional<std::string>& text, int64_t revision);

  store::ObjectStore* store_;
  mutable std::shared_mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;  // guarded by mu_
  std::unique_ptr<storage::WatchHandle> watch_;
};

}  // namespace sigil::authz
