// engines/transit.h: Vault's transit secrets engine (encryption as a service), first slice:
//
//   keys (LIST), keys/<name> (POST create, GET, DELETE if deletion_allowed), keys/<name>/config,
//   keys/<name>/rotate; encrypt/<name> (creates the key on first use, as Vault does, when the
//   caller may create), decrypt/<name>, rewrap/<name> (each with batch_input);
//   datakey/{plaintext,wrapped}/<name>; hmac/<name>[/<algorithm>], verify/<name>[/<algorithm>]
//   (HMACs, and signatures of signing keys); sign/<name>[/<hash>]; random[/<bytes>];
//   hash[/<algorithm>].
//
// Key types: aes256-gcm96 (the default) and chacha20-poly1305 (encryption); ed25519 and
// ecdsa-p256 (signing, ASN.1 signatures; their read shows each version's public key). Ciphertexts are Vault's:
// "vault:v<version>:" + base64(nonce(12) | ciphertext | tag(16)). Each key version also has an
// HMAC key of its own. Key material lives only in the mount's storage (behind the barrier)
// and in memory while a request uses it; it never appears in answers (no export), logs or the
// audit trail. Not served yet: rsa keys, jws marshaling, derived and convergent keys, export,
// backup/restore, trim, auto-rotation. Thread-safe.
#pragma once

#include <memory>

#include "sigil/base/clock.h"
#include "sigil/engines/engine.h"

namespace sigil::engines {

std::unique_ptr<SecretsEngine> NewTransit(const Mount& mount, Storage storage, Clock* clock);

}  // namespace sigil::engines
