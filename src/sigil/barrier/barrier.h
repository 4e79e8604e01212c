// barrier/barrier.h: the only path to storage. Every value is encrypted before it reaches the
// Backend and authenticated when it comes back.
//
// Write: a key under /registry/ whose resource has an EncryptionConfiguration rule is written
// with that rule's first provider (kube-apiserver's format, byte for byte); every other value
// is written with sigil's keyring: "sigil:enc:v1:" | term u32 BE | nonce(12) | AES-256-GCM
// ciphertext | tag(16), with AAD = the storage key (docs/formats.md).
// Read: the value's prefix selects the keyring term or the configured provider. A value that
// authenticates under no configured provider is kDataLoss, including plaintext when identity
// is not configured (an attacker who can write the store cannot inject values). A value that
// decrypts with anything but the current write provider/term is reported stale, so callers can
// rewrite it.
// Thread safety: all methods are thread-safe. Plaintext in and out is SecretBytes.
#pragma once

#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "sigil/barrier/encryption_config.h"
#include "sigil/barrier/keyring.h"
#include "sigil/barrier/seal.h"
#include "sigil/base/clock.h"
#include "sigil/storage/backend.h"

namespace sigil::barrier {

inline constexpr std::string_view kValuePrefix = "sigil:enc:v1:";

struct Entry {
  std::string key;
  SecretBytes value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  bool stale = false;  // encrypted with an older term or a non-first provider
};

struct EntryList {
  std::vector<Entry> entries;
  bool more = false;
  int64_t revision = 0;
};

struct BarrierOp {
  storage::Op::Kind kind = storage::Op::Kind::kPut;
  std::string key;
  SecretBytes value;
  static BarrierOp Put(std::string k, SecretBytes v) { return {storage::Op::Kind::kPut, std::move(k), std::move(v)}; }
  static BarrierOp Delete(std::string k) { return {storage::Op::Kind::kDelete, std::move(k), {}}; }
};

struct BarrierTxn {
  std::vector<storage::Compare> compares;
  std::vector<BarrierOp> ops;
};

struct BarrierEvent {
  storage::Event::Type type;
  Entry entry;                // for a delete: key and mod_revision only
  std::optional<Entry> prev;  // decrypted previous value, if any
};
// Called as storage::WatchCallback is (quickly, without blocking). An event whose value does
// not decrypt is passed with `error` set and an empty entry value.
using BarrierWatchCallback = std::function<void(const std::vector<BarrierEvent>&, const Status& error)>;

struct KeyringInfo {
  uint32_t active_term;
  std::vector<std::pair<uint32_t, int64_t>> terms;  // term, created (unix seconds)
};

class Barrier {
 public:
  // Unseals: gets the root key from `seal`, then loads the keyring from `backend`, or creates
  // and stores term 1 if the store has none. `encryption_config` may be null. Errors:
  // kDataLoss (wrong root key or damaged keyring), and the seal's and backend's errors.
  static Result<std::unique_ptr<Barrier>> Open(storage::Backend* backend, Seal* seal,
                                               std::shared_ptr<const EncryptionConfig> encryption_config,
                                               Clock* clock);
  // The same with the root key itself (the Shamir seal combines it from key shares).
  static Result<std::unique_ptr<Barrier>> OpenWithRootKey(storage::Backend* backend, SecretBytes root_key,
                                                          std::shared_ptr<const EncryptionConfig> encryption_config,
                                                          Clock* clock);

  Result<std::optional<Entry>> Get(std::string_view key);
  Result<EntryList> Range(const storage::RangeRequest& request);
  Result<storage::TxnResult> Commit(BarrierTxn txn);
  void CommitAsync(BarrierTxn txn, storage::CommitCallback done);
  Result<std::unique_ptr<storage::WatchHandle>> Watch(std::string prefix, int64_t after_revision,
                                                      BarrierWatchCallback callback);
  int64_t CurrentRevision() { return backend_->CurrentRevision(); }
  Status Health() { return backend_->Health(); }

  // Adds a keyring term and makes it the write key; old terms keep decrypting. Returns the new
  // term. The keyring write is compare-on-revision, so concurrent rotations cannot lose a term.
  Result<uint32_t> Rotate();
  KeyringInfo keyring_info();

  // The value transformation alone, exposed for tools and fuzzing: encrypt `plaintext` as it
  // would be stored at `key`, or decrypt a stored value.
  Result<std::string> EncryptValue(std::string_view key, std::string_view plaintext);
  // `may_call_out` false: never wait for a key service (see Transformer::Decrypt).
  Result<Entry> DecryptValue(std::string_view key, std::string_view stored, bool may_call_out = true);

 private:
  Barrier(storage::Backend* backend, SecretBytes root_key, std::shared_ptr<const EncryptionConfig> config,
          Clock* clock, Keyring keyring, int64_t keyring_revision);
  Result<Entry> Decrypt(const storage::KeyValue& kv, bool may_call_out = true);
  Result<storage::Txn> Encrypt(BarrierTxn txn);

  storage::Backend* const backend_;
  const SecretBytes root_key_;
  const std::shared_ptr<const EncryptionConfig> config_;
  Clock* const clock_;
  std::shared_mutex keyring_mu_;
  Keyring keyring_;            // guarded by keyring_mu_
  int64_t keyring_revision_;   // guarded by keyring_mu_
};

}  // namespace sigil::barrier
