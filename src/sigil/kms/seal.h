// kms/seal.h: the KMS seal. A KMS v2 plugin wraps sigil's root key (barrier/seal.h's
// NewWrappedKeySeal stores the wrapped key in the store), so the server unseals itself at start
// whenever the plugin answers, and no key file sits beside the data. The stored blob is
// JSON: {"key_id", "ciphertext" (base64), "annotations" {name: base64}}, exactly what Decrypt
// needs; a plugin that rotates its key must keep the old one able to decrypt (every KMS v2
// plugin must, for kube-apiserver's values too). Thread-safe.
#pragma once

#include <memory>

#include "sigil/barrier/seal.h"
#include "sigil/kms/client.h"

namespace sigil::kms {

// `label` names the plugin in messages ("kms unix:///run/kms.sock").
std::unique_ptr<barrier::KeyWrapper> NewKmsKeyWrapper(std::unique_ptr<Client> client, std::string label);

}  // namespace sigil::kms
