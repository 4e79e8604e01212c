// server/config.h: the server's configuration, from a YAML file and command-line flags.
//
// Every key is documented in docs/configuration.md. Unknown keys are errors, so a typo cannot
// silently leave a setting at its default. Thread safety: a value type.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sigil/api/http/server.h"
#include "sigil/base/result.h"

namespace sigil::server {

inline constexpr char kDefaultSigningIssuer[] = "https://kubernetes.default.svc.cluster.local";

struct Config {
  bool dev = false;
  std::string listen = "127.0.0.1:8443";
  std::string data_dir;
  std::string log_level = "info";
  std::string log_format = "text";  // text | json
  // TLS: a configured certificate, or one sigil generates and keeps in data_dir/tls.
  std::string tls_cert_file, tls_key_file, tls_ca_file;
  std::vector<std::string> tls_hosts;  // extra names for the generated certificate
  // Seal: "key-file" (production) or "dev" (implied by dev mode).
  std::string seal_type = "key-file";
  std::string seal_key_file;
  // The KMS seal (seal.type kms): a KMS v2 plugin wraps the root key (kms/seal.h).
  std::string seal_kms_endpoint;  // unix:///path/to/socket
  std::chrono::milliseconds seal_kms_timeout{3000};
  std::string encryption_config_file;  // a Kubernetes EncryptionConfiguration
  // EncryptionConfiguration kms providers (kms/envelope.h): kube-apiserver's fixed intervals,
  // tunable here (kms.*).
  std::chrono::seconds kms_poll_healthy{60}, kms_poll_unhealthy{10}, kms_write_seed_ttl{180};
  // sigil as a KMS v2 plugin (kms/plugin.h): served on this unix socket when set.
  std::string kms_plugin_socket;
  std::chrono::seconds kms_plugin_rotation_period{0};  // 0: rotated only when asked
  uint64_t storage_max_bytes = uint64_t{1} << 30;
  // Watch history kept in memory (storage/watch_hub.h): at most this many events and bytes.
  size_t watch_history = 10000;
  uint64_t watch_history_bytes = uint64_t{64} << 20;
  // Earlier versions kept per Secret (a namespace annotation sigil.dev/history-versions
  // overrides it); 0 turns version history off.
  int history_versions = 10;
  // Authentication (docs/configuration.md "auth"). Client certificates are checked against
  // client_ca_file, by default the CA sigil generated (data_dir/tls/ca.crt, or the dev CA).
  std::string auth_token_file;   // kube-apiserver --token-auth-file format
  std::string auth_client_ca_file;
  // Service-account JWTs (auth.service_accounts): accepted when at least one key is given.
  std::vector<std::string> sa_issuers, sa_audiences, sa_key_files, sa_jwks_files;
  // The issuer of the tokens sigil signs itself (TokenRequest, `kubectl create token`).
  std::string sa_signing_issuer = kDefaultSigningIssuer;
  // Audit (docs/configuration.md "audit"). Production default: every request at Metadata level
  // to data_dir/audit/audit.log. Dev default: off unless configured.
  std::optional<bool> audit_enabled;   // audit.enabled
  std::string audit_policy_file;       // an audit.k8s.io/v1 Policy; default: Metadata for all
  std::string audit_log_path;          // a file; "-" is standard output
  bool audit_stdout = false;           // also write to standard output
  int64_t audit_max_size_mb = 100;     // rotate the file when larger
  bool audit_fsync = true;             // fdatasync each batch
  http::ServerOptions http;
  // Requests in flight (core/inflight.h), as kube-apiserver's --max-requests-inflight and
  // --max-mutating-requests-inflight; 0: unbounded.
  size_t max_requests_inflight = 400;
  size_t max_mutating_requests_inflight = 200;

  // "127.0.0.1:8443" -> address and port into `http`. kInvalidArgument on a bad value.
  Status ApplyListen();
  // Checks the combination of settings; fills in dev-mode defaults.
  Status Validate();
};

// Parses a YAML config document. kInvalidArgument names the offending key.
Result<Config> ParseConfig(std::string_view yaml);
Result<Config> LoadConfigFile(const std::string& path);

}  // namespace sigil::server
