// api/vault/impl.h: the Vault face's implementation, split by concern: api.cc (decoding, the
// pipeline around each request, routing), sys_policy.cc (ACL policies and capabilities),
// sys_health.cc (health), sys_audit.cc (audit hashes), sys_auth.cc (the auth method table),
// auth_token.cc (Vault tokens), auth_userpass.cc (userpass), auth_kubernetes.cc (Kubernetes),
// auth_approle.cc (AppRole).
#pragma once

#include <string>

#include "sigil/api/vault/api.h"
#include "sigil/api/vault/request.h"
#include "sigil/api/vault/response.h"
#include "sigil/core/pipeline.h"

namespace sigil::vault {

// The `auth` block of a login: the new token, its accessor, policies, metadata and TTL.
Json LoginAuth(const auth::TokenInfo& t, std::string_view token);

// What follows "auth/<mount path>" in `path` ("" for the mount itself, "auth/userpass").
inline std::string MountRest(const std::string& path, const engines::Mount& mount) {
  size_t at = 5 + mount.path.size();
  return path.size() > at ? path.substr(at) : std::string();
}

class VaultApi::Impl {
 public:
  Impl(Clock* clock, const Options& o)
      : clock_(clock), options_(o), pipeline_(core::Pipeline::Deps{nullptr, o.auditor, o.policies}) {}

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
  // auth/<userpass mount>/*.
  std::optional<Reply> AuthUserpass(const Request& r, const engines::Mount& mount);
  // A login's answer: an orphan token holding the `token_policies` of `record` (a role or a
  // user) and "default", never "root"; TTL `token_ttl` (else 768h) capped by `token_max_ttl`.
  Reply IssueLoginToken(const Json& record, std::map<std::string, std::string> meta, std::string display_name,
                        std::string path);
  // auth/<approle mount>/*.
  std::optional<Reply> AuthAppRole(const Request& r, const engines::Mount& mount);
  // auth/<kubernetes mount>/*.
  std::optional<Reply> AuthKubernetes(const Request& r, const engines::Mount& mount);
  // auth/token/*.
  std::optional<Reply> AuthToken(const Request& r, const Identity* who);

 private:
  Clock* clock_;
  Options options_;
  core::Pipeline pipeline_;
  VaultErrors errors_;
};

}  // namespace sigil::vault
