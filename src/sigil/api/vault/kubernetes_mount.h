// api/vault/kubernetes_mount.h: the kubernetes/ mount, Kubernetes Secrets as KV v2 secrets.
//
// One store, two faces: kubernetes/data/<namespace>/<name> IS the Secret <name> in <namespace>
// (the registry's object, registry/registry.h), not a copy. Its KV versions are the Secret's
// version history (store/history.h), numbered alike on both faces; a KV write is a Secret
// write (kubectl and its watches see it at once), a kubectl write is a new KV version.
//
// Mapping (docs/vault-api.md has the user's view):
// - data.data holds the Secret's values decoded. A value that is not valid UTF-8 (or that starts
//   with the marker itself) is shown as "sigil:base64:" followed by its base64, and a value
//   written in that form is stored as the bytes it encodes, so every value round-trips.
// - KV versions are the history's records that hold a Secret (and destroyed ones); tombstones
//   (a Secret deleted) are not KV versions, they mark the version before them deleted. So
//   version numbers can skip, and current_version is the newest KV version.
// - options.cas is that version number; delete/undelete/destroy amend the history's records;
//   soft-deleting or destroying the version the Secret stands at deletes the Secret;
//   undeleting the newest version of a deleted Secret re-creates it, as a new version.
// - How many versions are kept is the namespace's setting (sigil.dev/history-versions) or the
//   server's (history.versions); config and metadata writes are refused with that explanation.
//
// Authorization is double: the Vault face's ACL has checked the path before the engine runs;
// the engine then checks the caller's Kubernetes RBAC for what the operation does to the Secret,
// through the Kubernetes face's pipeline (core/pipeline.h), which also records the access in
// the audit trail as the Kubernetes face would (an audit.k8s.io Event with its objectRef). A
// Role limited by resourceNames cannot be bypassed through the Vault face. The RBAC verbs:
//   read latest, subkeys          get secrets
//   read ?version=N, metadata     get secrets/versions
//   write                         create, update or patch secrets
//   DELETE data/                  delete secrets
//   delete/, destroy/             delete secrets/versions (and delete secrets when the version
//                                 is the one the Secret stands at)
//   undelete/                     update secrets/versions (and create secrets/rollback when it
//                                 re-creates the Secret)
//   DELETE metadata/              delete secrets and delete secrets/versions
//   LIST metadata/                list namespaces;  LIST metadata/<ns>/  list secrets in <ns>
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sigil/authz/authorizer.h"
#include "sigil/base/clock.h"
#include "sigil/base/identity.h"
#include "sigil/core/pipeline.h"
#include "sigil/engines/engine.h"
#include "sigil/registry/registry.h"

namespace sigil::vault {

// The mount's type in sys/mounts (not "kubernetes", which is Vault's engine for service-account
// tokens); its options say KV version 2.
inline constexpr std::string_view kKubernetesMountType = "kubernetes-secrets";

// A Secret value's bytes as the KV face shows them, and back (kInvalidArgument for a marked
// value whose base64 is bad).
inline constexpr std::string_view kBase64Marker = "sigil:base64:";
std::string ShowValue(std::string_view bytes);
Result<std::string> TakeValue(std::string_view shown);

struct KubernetesMountContext {
  registry::Registry* registry = nullptr;
  const authz::Authorizer* rbac = nullptr;      // null: every RBAC check fails
  const core::Pipeline* kube_pipeline = nullptr;  // RBAC and the Kubernetes face's audit
  Clock* clock = nullptr;
  // The Vault request this engine serves (for RBAC and the audit event): null `who` only for
  // the ACL's existence check, which reads nothing but whether the Secret exists.
  const Identity* who = nullptr;
  std::string_view uri, user_agent, remote;
};

std::unique_ptr<engines::SecretsEngine> NewKubernetesMount(const KubernetesMountContext& c);

}  // namespace sigil::vault
