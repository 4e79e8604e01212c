// client/kubeconfig.h: the client side of sigil's CLI: where the server is and how to prove
// who we are, read from a kubeconfig (the same file kubectl uses), and kubeconfigs written for
// users. Only what sigil's CLI needs is read: the current (or named) context's cluster server,
// certificate-authority(-data), insecure-skip-tls-verify is refused, and the user's
// client-certificate(-data)/client-key(-data) or token(File). Thread safety: value types.
#pragma once

#include <string>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::client {

struct Endpoint {
  std::string server;     // https://host:port
  std::string ca_pem;     // trusted CA certificates (PEM); empty: the system's
  std::string cert_pem;   // client certificate (PEM), if any
  SecretBytes key_pem;    // its key
  SecretBytes token;      // bearer token, if any
  std::string namespace_ = "default";
};

// `path` empty: $KUBECONFIG (its first entry), else ~/.kube/config. `context` empty: the
// current context. Relative file paths in the kubeconfig resolve against its directory.
Result<Endpoint> LoadKubeconfig(const std::string& path, const std::string& context);

// A kubeconfig with one cluster, user and context, all named `name`.
std::string RenderKubeconfig(const std::string& name, const std::string& server, const std::string& ca_pem,
                             const std::string& user, const std::string& cert_pem, const SecretBytes& key_pem);

}  // namespace sigil::client
