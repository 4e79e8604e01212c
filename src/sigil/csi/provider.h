// csi/provider.h: sigil as a Secrets Store CSI driver provider. For each Mount the driver
// sends, the SecretProviderClass's parameters say which objects to fetch, and the pod's own
// service-account token (the driver's `csi.storage.k8s.io/serviceAccount.tokens`) is the only
// credential used, so a pod gets exactly what its service account may read:
//
//   - with `roleName` (as hashicorp/vault-csi-provider): the token logs in through the Vault
//     face's Kubernetes auth method (`auth/<vaultKubernetesMountPath>/login`), and each object's
//     `secretPath` is read as a Vault path (`secret/data/app`, `kubernetes/data/ns/name`,
//     `database/creds/role`, ...) with `secretKey` picking a field (KV v2's `data.data` first);
//   - without `roleName`: the token is a bearer token on the Kubernetes face, and each object
//     names a Secret (`secretName`, `secretNamespace` defaulting to the pod's) and its
//     `secretKey`.
//
// The files go back to the driver in the response (it writes them atomically); nothing is
// written here. Object versions are the sources' own (KV version, Secret resourceVersion),
// else an HMAC of the contents under a key that lives only in this process. Errors carry the
// server's message, never a value. Thread safety: Mount may be called concurrently.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"
#include "sigil/client/kubeconfig.h"

namespace sigil::csi {

// One entry of the `objects` parameter (a YAML list, as vault-csi-provider takes it).
struct Object {
  std::string name;         // objectName: the file's path in the volume
  std::string path;         // secretPath (with roleName)
  std::string secret_name;  // secretName (without roleName)
  std::string secret_namespace;
  std::string key;                 // secretKey; empty: the whole answer as JSON (Vault paths only)
  std::string encoding = "utf-8";  // utf-8 | base64 | hex: how the value is decoded into the file
  std::optional<int> mode;         // filePermission
};

struct Parameters {
  std::string role;  // roleName; empty: Kubernetes face
  std::string auth_mount = "kubernetes";
  std::string audience;  // which token of serviceAccount.tokens; empty: the only one
  std::string pod_namespace;
  std::vector<Object> objects;
  int mode = 0644;      // from the request's permission
  SecretBytes token;    // the pod's service-account token
  std::string address;  // vaultAddress / sigilAddress, if given
};

// Parses a MountRequest's attributes (JSON) and permission. kInvalidArgument with a message
// that names the parameter.
Result<Parameters> ParseMount(const std::string& attributes_json, const std::string& permission);

struct File {
  std::string path;
  int mode = 0644;
  SecretBytes contents;
};

struct MountResult {
  std::vector<File> files;
  std::vector<std::pair<std::string, std::string>> versions;  // object id -> version
};

class Provider {
 public:
  // `server` is the only sigil server the provider talks to (a SecretProviderClass's
  // vaultAddress/sigilAddress must name it or be absent).
  Provider(client::Endpoint server, std::chrono::seconds timeout = std::chrono::seconds(15));

  // kInvalidArgument (bad parameters), kPermissionDenied / kUnauthenticated (refused by the
  // server), kNotFound (no such object or key), kUnavailable (server unreachable).
  Result<MountResult> Mount(const std::string& attributes_json,
                            const std::string& permission) const;

 private:
  Result<SecretBytes> Fetch(const std::string& method, const std::string& target,
                            const SecretBytes& token, std::string_view body, bool vault) const;

  client::Endpoint server_;
  std::chrono::seconds timeout_;  // for each request to the server
  SecretBytes version_key_;       // HMAC key for versions of unversioned objects
};

}  // namespace sigil::csi
