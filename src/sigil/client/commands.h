// client/commands.h: the CLI's commands that talk to a running server over its public API
// (sigil secret history|rollback). Each returns the text to print, or an error whose message
// reads like kubectl's ("Error from server (NotFound): ..."). Values are never printed.
#pragma once

#include <string>
#include <vector>

#include "sigil/client/http_client.h"

namespace sigil::client {

// "NAMESPACE/NAME" or "NAME" (in the kubeconfig's namespace).
struct SecretRef {
  std::string ns, name;
};
Result<SecretRef> ParseSecretRef(const std::string& text, const std::string& default_ns);

Result<std::string> SecretHistory(const Endpoint& ep, const SecretRef& ref, bool json);
// A new sigil bearer token for `user` and `groups`, valid for `ttl_seconds`: the token, or
// with `json` the server's whole answer.
Result<SecretBytes> CreateToken(const Endpoint& ep, const std::string& user, const std::vector<std::string>& groups,
                                int64_t ttl_seconds, bool json);
// What the server's audit trail shows for `value` ("hmac-sha256:<hex>").
Result<std::string> AuditHash(const Endpoint& ep, const std::string& value);
// Asks the server to rotate the Secret now by its rotation policy (POST .../rotate).
Result<std::string> SecretRotate(const Endpoint& ep, const SecretRef& ref);
Result<std::string> SecretRollback(const Endpoint& ep, const SecretRef& ref, int64_t to_version, bool dry_run);

}  // namespace sigil::client
