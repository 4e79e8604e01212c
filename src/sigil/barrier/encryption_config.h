// barrier/encryption_config.h: the Kubernetes EncryptionConfiguration file, as kube-apiserver's
// --encryption-provider-config reads it (apiserver.config.k8s.io/v1 EncryptionConfiguration, and
// the older apiVersion v1 kind EncryptionConfig).
//
// Each resource rule lists providers in order: the first encrypts new writes, all are tried on
// reads (by prefix). Within aescbc, aesgcm and secretbox the first key encrypts. Matching a
// storage key to a rule: an exact resource ("secrets", "roles.rbac.authorization.k8s.io") wins
// over a group wildcard ("*." for the core group, "*.<group>"), which wins over "*.*".
// Thread safety: immutable after Parse; thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sigil/barrier/transformer.h"
#include "sigil/base/result.h"

namespace sigil::barrier {

// A `kms` provider as written in the file (apiVersion v2; sigil does not speak KMS v1).
struct KmsProviderConfig {
  std::string name;
  std::string endpoint;  // "unix:///path/to/socket", as written
  std::string socket;    // the path part
  std::chrono::milliseconds timeout{3000};
};
// Makes the transformer of a kms provider (kms/envelope.h: a client of the plugin). barrier
// itself speaks no gRPC; programs that accept kms providers pass one of these.
using KmsFactory = std::function<Result<std::unique_ptr<Transformer>>(const KmsProviderConfig&)>;

class EncryptionConfig {
 public:
  struct Rule {
    std::vector<std::string> resources;  // as written in the file
    std::vector<std::unique_ptr<Transformer>> transformers;  // providers expanded per key
    bool has_identity = false;
  };

  // Parses and validates the file's contents (YAML or JSON). Errors are kInvalidArgument with
  // kube-apiserver's field paths and messages; key material is shown as "REDACTED".
  // A kms provider needs `kms`; without one it is refused with a clear message.
  static Result<std::unique_ptr<EncryptionConfig>> Parse(std::string_view text, const KmsFactory& kms = nullptr);
  static Result<std::unique_ptr<EncryptionConfig>> LoadFile(const std::string& path, const KmsFactory& kms = nullptr);

  // The rule for the resource a storage key belongs to (/registry/<resource>/...), or nullptr
  // when no rule matches (sigil then uses its own keyring; kube-apiserver would store
  // plaintext).
  const Rule* RuleForKey(std::string_view storage_key) const;

  // Resources whose first (write) provider is identity: the server warns about each at start.
  std::vector<std::string> IdentityWriteResources() const;

  const std::vector<Rule>& rules() const { return rules_; }

  // The kms providers, by name, for health checks (/healthz's kms-providers check).
  const std::vector<std::pair<std::string, Transformer*>>& kms_providers() const { return kms_; }

 private:
  std::vector<Rule> rules_;
  std::vector<std::pair<std::string, Transformer*>> kms_;
};

// The group-qualified resource for a storage key: "/registry/secrets/ns/x" -> "secrets",
// "/registry/roles/ns/x" -> "roles.rbac.authorization.k8s.io". Empty if the key is not under
// /registry/.
std::string GroupResourceForKey(std::string_view storage_key);

}  // namespace sigil::barrier
