// api/vault/impl.h: the Vault face's implementation, split by concern: api.cc (decoding, the
// pipeline around each request, routing), sys_policy.cc (ACL policies and capabilities),
// sys_keys.cc (seal, rotate, key status), sys_audit.cc (audit hashes), sys_auth.cc (the auth
// method table), sys_mounts.cc (the secrets engine table, tuning, engine requests),
// auth_token.cc (Vault tokens), auth_userpass.cc (userpass), auth_kubernetes.cc (Kubernetes),
// auth_approle.cc (AppRole).
#pragma once

#include <set>
#include <string>

#include "sigil/api/vault/api.h"
#include "sigil/api/vault/request.h"
#include "sigil/api/vault/response.h"
#include "sigil/core/pipeline.h"
#include "sigil/engines/engine.h"

namespace sigil::vault {

// The `auth` block of a login: the new token, its accessor, policies, metadata and TTL.
Json LoginAuth(const auth::TokenInfo& t, std::string_view token);

// What follows "auth/<mount path>" in `path` ("" for the mount itself, "auth/userpass").
inline std::string MountRest(const std::string& path, const engines::Mount& mount) {
  size_t at = 5 + mount.path.size();
  return path.size() > at ? path.substr(at) : std::string();
}

// Applies a mount config or tune body's default_lease_ttl and max_lease_ttl to `m`, with
// Vault's checks (kInvalidArgument).
Status ApplyMountConfig(const Json& config, engines::Mount* m);
// Mount config fields sigil does not support; set to anything but their default: 400.
extern const std::initializer_list<const char*> kUnsupportedMountConfig;

class VaultApi::Impl {
 public:
  Impl(Clock* clock, const Options& o)
      : clock_(clock),
        options_(o),
        pipeline_(core::Pipeline::Deps{nullptr, o.auditor, o.policies}),
        kube_pipeline_(core::Pipeline::Deps{o.rbac, o.auditor, nullptr}) {}

  http::Response Serve(const http::Request& req, const Identity* who, const std::string& remote);

  // What the ACL check needs to know of `r`: the capability and whether sudo is required.
  core::VaultAccess AccessFor(const Request& r) const;
  // Whether `path` (after /v1/) is served without a token: the login paths of the auth methods
  // mounted (sys/health and the other seal endpoints are served outside the face:
  // seal_control.h).
  bool Unauthenticated(std::string_view path) const;
  // Runs an authorized request.
  Reply Dispatch(const Request& r, const Identity* who);

  // sys/policy, sys/policies/acl, sys/capabilities-self.
  std::optional<Reply> SysPolicy(const Request& r, const Identity* who);
  // sys/seal, sys/rotate, sys/key-status.
  std::optional<Reply> SysKeys(const Request& r);
  // sys/audit-hash.
  std::optional<Reply> SysAudit(const Request& r);
  // sys/auth.
  std::optional<Reply> SysAuth(const Request& r);
  // sys/leases/* (and the legacy sys/renew, sys/revoke, sys/revoke-prefix, sys/revoke-force).
  std::optional<Reply> SysLeases(const Request& r);
  // sys/mounts, sys/remount.
  std::optional<Reply> SysMounts(const Request& r);
  // Enable (POST), disable (DELETE) or read (GET) the entry at `path` of `table` (sys/mounts
  // and sys/auth): `unsupported` body fields are refused, `check_type` vets and prepares the
  // new mount's type and options.
  Reply MountEntry(const Request& r, engines::MountTable* table, const std::string& path,
                   std::initializer_list<const char*> unsupported, const std::function<Status(engines::Mount*)>& check_type);
  // sys/mounts/<path>/tune and sys/auth/<path>/tune: read or write `path` in `table`.
  std::optional<Reply> Tune(const Request& r, engines::MountTable* table, std::string_view path, bool secrets);
  // The secrets engine mount serving `path`, if one does (not sys/ or auth/).
  std::optional<engines::Mount> EngineMount(std::string_view path) const;
  static engines::Request EngineRequest(const Request& r, const engines::Mount& m);
  // The engine serving `m`, for request `r` by `who` (null: the ACL's existence check).
  std::unique_ptr<engines::SecretsEngine> EngineFor(const engines::Mount& m, const Request& r, const Identity* who) const;
  // A request under a secrets engine's mount, handed to its engine.
  Reply Logical(const Request& r, const engines::Mount& m, const Identity* who);
  // auth/<userpass mount>/*.
  std::optional<Reply> AuthUserpass(const Request& r, const engines::Mount& mount);
  // A login's answer: an orphan token holding the `token_policies` of `record` (a role or a
  // user) and "default", never "root"; TTL `token_ttl`, else the mount's default lease TTL,
  // else 768h; capped by `token_max_ttl` and the mount's max lease TTL.
  Reply IssueLoginToken(const Json& record, std::map<std::string, std::string> meta, std::string display_name,
                        std::string path, const engines::Mount& mount);
  // auth/<approle mount>/*.
  std::optional<Reply> AuthAppRole(const Request& r, const engines::Mount& mount);
  // auth/<kubernetes mount>/*.
  std::optional<Reply> AuthKubernetes(const Request& r, const engines::Mount& mount);
  // auth/token/*.
  std::optional<Reply> AuthToken(const Request& r, const Identity* who);
  // auth/token/roles/*, and a stored role by name (nullopt: none, or an invalid name).
  std::optional<Reply> TokenRoles(const Request& r);
  Result<std::optional<Json>> TokenRole(std::string_view name);

 private:
  Clock* clock_;
  Options options_;
  core::Pipeline pipeline_;
  // The Kubernetes face's checks (RBAC and its audit events) for the kubernetes/ mount.
  core::Pipeline kube_pipeline_;
  VaultErrors errors_;
};

}  // namespace sigil::vault
