// server/unsealed.h: everything above the barrier. The server builds one Unsealed when it
// unseals (from the root key) and destroys it when it seals; a sealed server holds none of it,
// so none of its key material (the keyring, the audit HMAC key, token digests' key) is in
// memory. It owns the routes of both faces for its lifetime (router()).
// Thread safety: built and destroyed by one thread (server/lifecycle.h); the router's handlers
// run concurrently while it lives.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <optional>
#include <string>

#include "sigil/api/http/server.h"
#include "sigil/api/kubernetes/api.h"
#include "sigil/api/vault/api.h"
#include "sigil/api/vault/seal_control.h"
#include "sigil/audit/auditor.h"
#include "sigil/auth/authenticator.h"
#include "sigil/authz/authorizer.h"
#include "sigil/authz/policy_store.h"
#include "sigil/barrier/barrier.h"
#include "sigil/auth/service_account_issuer.h"
#include "sigil/core/authentication.h"
#include "sigil/core/inflight.h"
#include "sigil/database/database.h"
#include "sigil/engines/mount_table.h"
#include "sigil/kms/plugin.h"
#include "sigil/server/config.h"
#include "sigil/server/secret_rotation.h"
#include "sigil/store/object_store.h"

namespace sigil::server {

class Unsealed {
 public:
  struct Deps {
    const Config* config = nullptr;
    storage::Backend* backend = nullptr;
    std::shared_ptr<const barrier::EncryptionConfig> encryption;
    auth::FailureThrottle* throttle = nullptr;      // survives sealing: it holds no secrets
    boost::asio::thread_pool* delay_pool = nullptr;  // answers throttled refusals after their delay
    vault::SealControl* seal = nullptr;
    std::string dev_dir;  // dev mode: where the audit trail goes when configured
  };
  // Opens the barrier with `root_key` and builds the stores, authentication, authorization,
  // audit and both faces on it.
  static Result<std::unique_ptr<Unsealed>> Build(const Deps& deps, SecretBytes root_key);
  // Tears down in the order that lets nothing outlive what it points into (see the .cc).
  ~Unsealed();

  const http::Router& router() const { return router_; }
  barrier::Barrier* barrier() { return barrier_.get(); }
  audit::Auditor* auditor() { return auditor_.get(); }
  // The root token this build created (the store had none), once.
  std::optional<SecretBytes> TakeNewRootToken() { return std::exchange(new_root_token_, std::nullopt); }
  const std::string& cluster_name() const { return cluster_name_; }
  const std::string& cluster_id() const { return cluster_id_; }

 private:
  Unsealed() = default;
  void BuildRouter();
  // Runs `inner` only for authenticated callers; others get 401 (403 "permission denied" on
  // the Vault face), slowed down after repeated failures. On /v1/ the token may also come in
  // X-Vault-Token.
  http::Handler Authenticated(http::Handler inner);

  Deps deps_;
  std::string cluster_name_, cluster_id_;
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<store::ObjectStore> store_;
  std::unique_ptr<registry::Registry> registry_;
  std::unique_ptr<auth::TokenStore> tokens_;
  std::unique_ptr<leases::Manager> leases_;
  std::unique_ptr<auth::ServiceAccountIssuer> sa_issuer_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  std::unique_ptr<authz::Authorizer> authorizer_;
  std::unique_ptr<audit::Auditor> auditor_;
  std::unique_ptr<core::Authentication> authentication_;
  std::unique_ptr<core::InflightLimiter> limiter_;  // outlives both faces
  std::optional<SecretBytes> new_root_token_;
  std::unique_ptr<kube::KubernetesApi> kube_;
  std::unique_ptr<authz::PolicyStore> policies_;
  std::unique_ptr<engines::MountTable> auth_mounts_;
  std::unique_ptr<engines::MountTable> secret_mounts_;
  std::unique_ptr<database::Service> database_;
  std::unique_ptr<SecretRotations> rotations_;  // Secrets' rotation policies, on the lease manager's jobs  // the database engines' pools and revokers
  std::unique_ptr<kms::Plugin> kms_plugin_;  // sigil as a KMS v2 plugin, when configured
  std::unique_ptr<vault::VaultApi> vault_;
  http::Router router_;
};

// Opens a barrier, the token store on it, and makes the root token if the store has none
// (the Shamir seal's sys/init does this once, then seals again).
Result<std::optional<SecretBytes>> CreateRootToken(storage::Backend* backend, SecretBytes root_key,
                                                   std::shared_ptr<const barrier::EncryptionConfig> encryption);

}  // namespace sigil::server
