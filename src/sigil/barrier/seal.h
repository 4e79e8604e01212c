// barrier/seal.h: where the root key comes from.
//
// The root key (32 bytes) encrypts only the keyring; it is never stored in plaintext by sigil.
// - DevSeal: a random root key generated in memory, for tests (dev mode itself is a one-share
//   Shamir seal: barrier/shamir_seal.h, server/lifecycle.h).
// - KeyFileSeal: the root key is read from a file named in the config: 32 raw bytes, or their
//   standard base64 (whitespace around it ignored). A file that is not a regular file or whose
//   mode grants anything to group or others is refused: that key is already exposed.
// The Shamir seal, which needs key shares rather than a key source, is barrier/shamir_seal.h.
// Thread safety: RootKey() is thread-safe.
#pragma once

#include <memory>
#include <string>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"
#include "sigil/storage/backend.h"

namespace sigil::barrier {

inline constexpr size_t kRootKeySize = 32;

class Seal {
 public:
  virtual ~Seal() = default;
  virtual std::string name() const = 0;
  // A copy of the root key (locked in memory). Errors: kNotFound / kPermissionDenied for an
  // unusable key file, kInvalidArgument for a key of the wrong size or encoding.
  virtual Result<SecretBytes> RootKey() = 0;
};

std::unique_ptr<Seal> NewDevSeal();
std::unique_ptr<Seal> NewKeyFileSeal(std::string path);

// A key service that wraps the root key (kms/seal.h: a KMS v2 plugin). The blob it returns is
// stored as is, outside the barrier, so it must be safe to store: a ciphertext and the names
// needed to open it.
class KeyWrapper {
 public:
  virtual ~KeyWrapper() = default;
  virtual std::string name() const = 0;
  virtual Result<std::string> Wrap(const SecretBytes& key) = 0;
  // kUnavailable / kDeadlineExceeded when the service does not answer (retry later).
  virtual Result<SecretBytes> Unwrap(std::string_view blob) = 0;
};

// Where a wrapper-sealed store keeps its wrapped root key (raw, in the backend).
inline constexpr std::string_view kServiceWrappedRootKeyKey = "/sigil/core/kms-root-key";

// Auto-unseal through a key service: the first start of an empty store makes a random root key,
// has `wrapper` wrap it and stores the blob (compare-and-create, so two servers starting at once
// agree on one key); later starts unwrap it. A store that already has a keyring but no wrapped
// key was made under another seal and is refused (kFailedPrecondition), never re-keyed.
std::unique_ptr<Seal> NewWrappedKeySeal(storage::Backend* backend, std::unique_ptr<KeyWrapper> wrapper);

// Writes a new random root key file (base64, mode 0600); refuses to overwrite an existing file.
Status GenerateKeyFile(const std::string& path);

}  // namespace sigil::barrier
