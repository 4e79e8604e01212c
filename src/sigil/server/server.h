// server/server.h: the composition root. Opens storage, starts the lifecycle (which unseals the
// barrier when the seal allows: server/lifecycle.h), builds the HTTP routes and runs until
// SIGINT/SIGTERM, then drains and closes everything in reverse order.
// Thread safety: one controlling thread calls these methods.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <optional>
#include <string>

#include "sigil/api/http/server.h"
#include "sigil/api/kubernetes/api.h"
#include "sigil/api/vault/api.h"
#include "sigil/auth/authenticator.h"
#include "sigil/audit/auditor.h"
#include "sigil/authz/authorizer.h"
#include "sigil/authz/policy_store.h"
#include "sigil/barrier/barrier.h"
#include "sigil/core/authentication.h"
#include "sigil/client/kubeconfig.h"
#include "sigil/server/config.h"
#include "sigil/server/lifecycle.h"
#include "sigil/storage/backend.h"
#include "sigil/store/object_store.h"

namespace sigil::server {

// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it creates later.
// Call first in main, before any thread exists: otherwise the kernel may deliver a shutdown
// signal to a thread that does not block it (the storage writer, say) and kill the process
// instead of draining it. SigilServer::Run takes the signals with sigwait.
void BlockShutdownSignals();

// Disables core dumps (RLIMIT_CORE 0, PR_SET_DUMPABLE 0), sets umask 077 and raises the
// descriptor limit to its hard limit. Key material is additionally mlocked and excluded from
// dumps where it is held (SecretBytes::Lock).
void HardenProcess();

// glibc gives every thread that allocates its own heap ("arena"), up to 8 per core; with the
// server's worker pools that is a dozen heaps, each holding freed memory of its own, and the
// resident size creeps up as more of them come into use (measured in the soak run,
// docs/benchmarks.md). Limits them to one per core unless MALLOC_ARENA_MAX is set.
void LimitMallocArenas();

class SigilServer {
 public:
  static Result<std::unique_ptr<SigilServer>> Create(Config config);
  ~SigilServer();

  Status Start();
  void Stop();
  uint16_t port() const { return http_->bound_port(); }
  // Starts, prints how to connect, waits for SIGINT or SIGTERM, stops. The exit code.
  int Run();

 private:
  SigilServer() = default;
  // The routes that exist in every state (health, version, the seal endpoints); everything
  // else goes to the lifecycle, which serves it unsealed or answers 503 sealed.
  http::Router BuildRouter();

  Config config_;
  std::string dev_dir_;  // removed at exit in dev mode
  std::unique_ptr<storage::Backend> backend_;
  std::unique_ptr<auth::FailureThrottle> throttle_;
  boost::asio::thread_pool delay_pool_{1};  // answers throttled 401s after their delay
  std::unique_ptr<Lifecycle> lifecycle_;
  std::unique_ptr<vault::SealEndpoints> seal_endpoints_;
  std::optional<SecretBytes> new_root_token_;  // made at this start; shown once (dev)
  std::optional<SecretBytes> dev_unseal_key_;  // dev mode's single unseal key; shown once
  std::string root_token_file_;                // where a production start put the new root token
  http::CertificateSet certs_;
  std::string ca_file_;  // where clients find the CA
  std::unique_ptr<http::Server> http_;
};

// `sigil operator rotate`: adds a keyring term to a stopped server's store. Prints the result.
Status RotateOffline(const Config& config);

// `sigil kubeconfig`: a kubeconfig for the server `config` describes, with a client
// certificate for `user` in `groups` issued by the server's own CA (data_dir/tls, which the
// server generated; kFailedPrecondition when the server uses a configured certificate, whose
// CA key sigil does not hold). `server_url` empty: https://<listen address>:<port>, with a
// wildcard address read as 127.0.0.1.
struct KubeconfigRequest {
  std::string server_url;
  std::string user;
  std::vector<std::string> groups;  // none unless asked: least privilege by default
  long days = 30;
};
struct IssuedKubeconfig {
  std::string text;           // the kubeconfig document
  client::Endpoint endpoint;  // the same, to check the server with
};
Result<IssuedKubeconfig> KubeconfigFor(const Config& config, const KubeconfigRequest& request);

// The /version document (Kubernetes version.Info; kubectl's dispatcher picks its build by minor).
std::string VersionJson();

}  // namespace sigil::server
