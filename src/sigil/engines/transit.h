// engines/transit.h: Vault's transit secrets engine (encryption as a service):
//
//   keys (LIST), keys/<name> (POST create, GET, DELETE if deletion_allowed), keys/<name>/config,
//   keys/<name>/rotate, keys/<name>/trim; encrypt/<name> (creates the key on first use, as Vault
//   does, when the caller may create), decrypt/<name>, rewrap/<name> (each with batch_input);
//   datakey/{plaintext,wrapped}/<name>; hmac/<name>[/<algorithm>], verify/<name>[/<algorithm>]
//   (HMACs, and signatures of signing keys); sign/<name>[/<hash>]; export/<kind>/<name>[/<v>];
//   backup/<name>, restore[/<name>]; random[/<bytes>]; hash[/<algorithm>].
//
// Key types: aes256-gcm96 (the default) and chacha20-poly1305 (encryption, optionally derived:
// HKDF-SHA256 of the version's key with the request's context); ed25519, ecdsa-p256/p384/p521
// (signing; ECDSA signatures ASN.1 or JWS); rsa-2048/3072/4096 (PSS or PKCS#1 v1.5 signatures,
// OAEP-SHA256 encryption). Ciphertexts are Vault's: "vault:v<version>:" + base64(nonce(12) |
// ciphertext | tag(16)), or of the OAEP ciphertext for RSA. Each key version also has an HMAC
// key of its own. Key material lives only in the mount's storage (behind the barrier) and in
// memory while a request uses it; it leaves only through export/ and backup/ of a key created
// (or configured, irreversibly) exportable. auto_rotate_period rotates a key on its first use
// (or read) after the period has passed since its latest version. Not served: convergent
// encryption, key import, BYOK, managed keys, cache configuration. Thread-safe.
#pragma once

#include <memory>

#include "sigil/base/clock.h"
#include "sigil/engines/engine.h"

namespace sigil::engines {

std::unique_ptr<SecretsEngine> NewTransit(const Mount& mount, Storage storage, Clock* clock);

}  // namespace sigil::engines
