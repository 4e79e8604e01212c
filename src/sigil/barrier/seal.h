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

// Writes a new random root key file (base64, mode 0600); refuses to overwrite an existing file.
Status GenerateKeyFile(const std::string& path);

}  // namespace sigil::barrier
