// client/operator.h: `sigil operator init|unseal|seal|status`, against a running server's Vault
// API (sys/init, sys/unseal, sys/seal, sys/seal-status), printed as the vault CLI prints them.
// The server is $VAULT_ADDR (or --address), its CA $VAULT_CACERT (or --ca-cert), the token
// $VAULT_TOKEN (or --token). Key shares and the root token are printed by init only, as the
// operator needs them; nothing else prints key material.
#pragma once

#include <string>

#include "sigil/client/http_client.h"

namespace sigil::client {

// The endpoint from the flags, falling back to the environment (and https://127.0.0.1:8443).
Result<Endpoint> VaultEndpoint(const std::string& address, const std::string& ca_file, const std::string& token);

// The text to print. `json`: the server's answer as it came.
Result<SecretBytes> OperatorInit(const Endpoint& ep, int shares, int threshold, bool json);
// One share (hex or base64). The seal status after it.
Result<std::string> OperatorUnseal(const Endpoint& ep, const SecretBytes& share, bool reset, bool json);
Result<std::string> OperatorSeal(const Endpoint& ep);
// The seal status; `sealed` tells the caller (the vault CLI exits 2 when sealed).
Result<std::string> OperatorStatus(const Endpoint& ep, bool json, bool* sealed);

}  // namespace sigil::client
