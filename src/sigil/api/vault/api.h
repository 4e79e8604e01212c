// api/vault/api.h: the Vault face: HashiCorp Vault's HTTP API under /v1/, for the clients
// people already run (hvac, node-vault, the vault CLI), over the same store, identities,
// audit trail and pipeline as the Kubernetes face (core/pipeline.h).
//
// Each request is decoded by Vault's wire conventions (request.h), authorized by the ACL
// policies its token holds (authz/policy_store.h: the capability its operation needs on its
// path, sudo on root-protected paths), audited and answered in Vault's formats (response.h).
// What is served, and how it differs from Vault, is listed in docs/vault-api.md; everything
// else is 404 "unsupported path" (after the ACL check, as Vault: a token that may not touch a
// path learns nothing about it).
//
// Requests run on a worker pool, so I/O threads never wait for storage. Thread-safe.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "sigil/api/http/server.h"
#include "sigil/api/vault/seal_control.h"
#include "sigil/audit/auditor.h"
#include "sigil/auth/token_store.h"
#include "sigil/authz/authorizer.h"
#include "sigil/authz/policy_store.h"
#include "sigil/base/clock.h"
#include "sigil/core/inflight.h"
#include "sigil/database/database.h"
#include "sigil/engines/mount_table.h"
#include "sigil/kms/plugin.h"
#include "sigil/leases/leases.h"
#include "sigil/registry/registry.h"

namespace sigil::vault {

class VaultApi {
 public:
  struct Options {
    int workers = 8;
    authz::PolicyStore* policies = nullptr;  // required
    auth::TokenStore* tokens = nullptr;      // auth/token/*; null: not served
    engines::MountTable* auth_mounts = nullptr;  // sys/auth and auth methods; null: not served
    engines::MountTable* secret_mounts = nullptr;  // sys/mounts and secrets engines; null: not served
    audit::Auditor* auditor = nullptr;       // null: no audit
    SealControl* seal = nullptr;             // sys/seal, sys/rotate, sys/key-status; null: not served
    // The kubernetes/ mount (Secrets as KV v2; api/vault/kubernetes_mount.h): the Secrets, and
    // the RBAC that governs them. Without a registry the mount is not served.
    registry::Registry* registry = nullptr;
    const authz::Authorizer* rbac = nullptr;
    leases::Manager* leases = nullptr;  // sys/leases/*; null: not served
    database::Service* database = nullptr;  // the database secrets engine; null: not served
    core::InflightLimiter* limiter = nullptr;  // bounds requests in flight; null: unbounded
    kms::Plugin* kms_plugin = nullptr;  // sys/kms-plugin/*; null: not served
  };
  VaultApi(Clock* clock, const Options& options);
  ~VaultApi();

  // Registers /v1/: the paths Vault serves without a token directly, every other one wrapped
  // by `guard` (authentication; it must answer a missing or bad token in Vault's format).
  void Register(http::Router* router, const std::function<http::Handler(http::Handler)>& guard);

  // Handles one request; `who` is the authenticated caller (null on unauthenticated paths).
  http::Response Serve(const http::Request& req, const Identity* who, const std::string& remote = "");

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  core::InflightLimiter* limiter_;
  boost::asio::thread_pool pool_;
};

}  // namespace sigil::vault
