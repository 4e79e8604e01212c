// barrier/shamir_seal.h: the Shamir seal. The root key is stored wrapped (AES-256-GCM) under an
// unseal key that exists only as key shares held by operators; `threshold` of them unseal.
//
// Storage, below the barrier (docs/formats.md "Shamir seal"):
// - kSealConfigKey: {"type":"shamir","secret_shares":N,"secret_threshold":T}, in clear text;
// - kWrappedRootKeyKey: "sigil:rootkey:v1:" | nonce(12) | AES-256-GCM(root key) | tag(16), with
//   AAD = the key name, a newline and the config document, so an altered config cannot unseal.
// With one share the share is the unseal key itself (32 bytes); otherwise each share is 33
// bytes (crypto/shamir.h). Rekeying makes a new unseal key and new shares for the same root key,
// so the keyring and every stored value stay as they are.
// Thread safety: ShamirSeal's methods are thread-safe (they read and write storage only);
// ShareCollector is not (its owner locks).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"
#include "sigil/storage/backend.h"

namespace sigil::barrier {

inline constexpr std::string_view kSealConfigKey = "/sigil/core/seal-config";
inline constexpr std::string_view kWrappedRootKeyKey = "/sigil/core/root-key";
inline constexpr std::string_view kWrappedRootKeyPrefix = "sigil:rootkey:v1:";

struct ShamirConfig {
  int shares = 0;
  int threshold = 0;
};

// kInvalidArgument with Vault's wording for parameters Vault refuses.
Status ValidateShamirConfig(int shares, int threshold);

class ShamirSeal {
 public:
  explicit ShamirSeal(storage::Backend* backend) : backend_(backend) {}

  // nullopt while the store is not initialised. kDataLoss for a damaged config.
  Result<std::optional<ShamirConfig>> Config();

  struct Initialized {
    std::vector<SecretBytes> shares;
    SecretBytes root_key;  // locked; the caller opens the barrier with it
  };
  // A new root key, wrapped under a new unseal key split into `shares`. kFailedPrecondition when
  // already initialised, or when the store holds a keyring another seal made (migrating between
  // seals is not supported). kInvalidArgument for bad parameters.
  Result<Initialized> Initialize(int shares, int threshold);

  // The root key from at least `threshold` shares. kPermissionDenied when they do not unwrap it
  // (a wrong or foreign share), kFailedPrecondition when not initialised.
  Result<SecretBytes> RootKey(const std::vector<SecretBytes>& shares);

  // New shares for the same root key, once `old_shares` (at least the old threshold) unwrap it.
  // The swap is compare-on-revision: a concurrent rekey fails with kAborted, never half-applied.
  Result<std::vector<SecretBytes>> Rekey(const std::vector<SecretBytes>& old_shares, int shares, int threshold);

 private:
  struct Loaded {
    ShamirConfig config;
    std::string config_doc;
    std::string wrapped;
    int64_t config_revision = 0;
    int64_t wrapped_revision = 0;
  };
  Result<std::optional<Loaded>> Load();
  Result<SecretBytes> Unwrap(const Loaded& loaded, const std::vector<SecretBytes>& shares);

  storage::Backend* const backend_;
};

// Key shares handed in one at a time (sys/unseal, sys/rekey/update) until there are `threshold`
// of them. A share given twice counts once, as in Vault. Shares are held in locked memory and
// wiped on Reset and destruction.
class ShareCollector {
 public:
  void Start(int threshold, std::string nonce);
  // Adds a share; returns true when `threshold` distinct shares are held.
  bool Add(SecretBytes share);
  bool Has(const SecretBytes& share) const;
  void Reset();
  int progress() const { return static_cast<int>(shares_.size()); }
  int threshold() const { return threshold_; }
  const std::string& nonce() const { return nonce_; }
  const std::vector<SecretBytes>& shares() const { return shares_; }

 private:
  int threshold_ = 0;
  std::string nonce_;
  std::vector<SecretBytes> shares_;
};

}  // namespace sigil::barrier
