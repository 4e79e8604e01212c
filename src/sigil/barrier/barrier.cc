#include "sigil/barrier/barrier.h"

#include <mutex>

#include "sigil/crypto/aes.h"
#include "sigil/crypto/random.h"

namespace sigil::barrier {
namespace {

constexpr size_t kTermSize = 4;

void AppendTerm(uint32_t term, std::string* out) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((term >> (8 * i)) & 0xff));
}

uint32_t ReadTerm(std::string_view s) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

Status Undecryptable(std::string_view key, std::string_view why) {
  return DataLossError("stored value at " + std::string(key) + " " + std::string(why));
}

}  // namespace

Barrier::Barrier(storage::Backend* backend, SecretBytes root_key, std::shared_ptr<const EncryptionConfig> config,
                 Clock* clock, Keyring keyring, int64_t keyring_revision)
    : backend_(backend),
      root_key_(std::move(root_key)),
      config_(std::move(config)),
      clock_(clock),
      keyring_(std::move(keyring)),
      keyring_revision_(keyring_revision) {}

Result<std::unique_ptr<Barrier>> Barrier::Open(storage::Backend* backend, Seal* seal,
                                               std::shared_ptr<const EncryptionConfig> config, Clock* clock) {
  SIGIL_ASSIGN_OR_RETURN(SecretBytes root, seal->RootKey());
  return OpenWithRootKey(backend, std::move(root), std::move(config), clock);
}

Result<std::unique_ptr<Barrier>> Barrier::OpenWithRootKey(storage::Backend* backend, SecretBytes root,
                                                          std::shared_ptr<const EncryptionConfig> config, Clock* clock) {
  if (root.size() != kRootKeySize) return InvalidArgumentError("the root key must be 32 bytes");
  root.Lock();
  SIGIL_ASSIGN_OR_RETURN(std::optional<storage::KeyValue> stored, backend->Get(kKeyringStorageKey));
  if (stored) {
    SIGIL_ASSIGN_OR_RETURN(Keyring keyring, Keyring::Unseal(root, stored->value));
    return std::unique_ptr<Barrier>(
        new Barrier(backend, std::move(root), std::move(config), clock, std::move(keyring), stored->mod_revision));
  }
  Keyring keyring = Keyring::New(clock);
  SIGIL_ASSIGN_OR_RETURN(std::string sealed, keyring.Seal(root));
  storage::Txn txn;
  txn.compares.push_back({std::string(kKeyringStorageKey), 0});
  txn.ops.push_back(storage::Op::Put(std::string(kKeyringStorageKey), std::move(sealed)));
  SIGIL_ASSIGN_OR_RETURN(storage::TxnResult r, backend->Commit(std::move(txn)));
  if (!r.succeeded) return AbortedError("another process initialised the keyring concurrently");
  return std::unique_ptr<Barrier>(
      new Barrier(backend, std::move(root), std::move(config), clock, std::move(keyring), r.revision));
}

Result<std::string> Barrier::EncryptValue(std::string_view key, std::string_view plaintext) {
  if (config_) {
    if (const EncryptionConfig::Rule* rule = config_->RuleForKey(key)) {
      return rule->transformers.front()->Encrypt(plaintext, key);
    }
  }
  std::shared_lock l(keyring_mu_);
  const KeyTerm* term = keyring_.Term(keyring_.active());
  std::string nonce = crypto::RandomNonce(crypto::kGcmNonceSize);
  SIGIL_ASSIGN_OR_RETURN(std::string sealed, crypto::AesGcmSeal(term->key, nonce, plaintext, key));
  std::string out;
  out.reserve(kValuePrefix.size() + kTermSize + nonce.size() + sealed.size());
  out += kValuePrefix;
  AppendTerm(term->term, &out);
  out += nonce;
  out += sealed;
  return out;
}

Result<Entry> Barrier::DecryptValue(std::string_view key, std::string_view stored, bool may_call_out) {
  const EncryptionConfig::Rule* rule = config_ ? config_->RuleForKey(key) : nullptr;
  Entry e;
  e.key = std::string(key);
  if (stored.starts_with(kValuePrefix)) {
    std::string_view body = stored.substr(kValuePrefix.size());
    if (body.size() < kTermSize + crypto::kGcmNonceSize + crypto::kGcmTagSize) {
      return Undecryptable(key, "is truncated");
    }
    uint32_t t = ReadTerm(body);
    std::shared_lock l(keyring_mu_);
    const KeyTerm* term = keyring_.Term(t);
    if (term == nullptr) return Undecryptable(key, "names keyring term " + std::to_string(t) + ", which does not exist");
    auto plain = crypto::AesGcmOpen(term->key, body.substr(kTermSize, crypto::kGcmNonceSize),
                                    body.substr(kTermSize + crypto::kGcmNonceSize), key);
    if (!plain.ok()) return Undecryptable(key, "failed authentication (altered, truncated or moved from another key)");
    e.value = std::move(plain).value();
    // Stale when written with an old term, or when an EncryptionConfiguration rule now covers it.
    e.stale = t != keyring_.active() || rule != nullptr;
    return e;
  }
  if (rule == nullptr) {
    if (stored.starts_with(kK8sEncryptedPrefix)) {
      return Undecryptable(key, "was written by an EncryptionConfiguration provider that is not configured for this resource");
    }
    return Undecryptable(key, "is not encrypted and no identity provider is configured for it");
  }
  bool first = true;
  Status last = Undecryptable(key, "matches no configured provider");
  for (const auto& t : rule->transformers) {
    bool applies = t->prefix().empty() ? true : stored.starts_with(t->prefix());
    if (applies) {
      bool stale = false;
      auto plain = t->Decrypt(stored, key, &stale, may_call_out);
      if (plain.ok()) {
        e.value = std::move(plain).value();
        e.stale = !first || stale;
        return e;
      }
      StatusCode code = plain.error().code();
      if (code == StatusCode::kUnavailable || code == StatusCode::kDeadlineExceeded) {
        // The key service did not answer: the value may be fine, so say what failed.
        return plain.error().WithContext("reading " + std::string(key) + " with " + t->name());
      }
      if (!t->prefix().empty()) {
        return Undecryptable(key, "failed to decrypt with " + t->name() + " (altered, truncated, wrong key or moved from another key): " +
                                      plain.error().message());
      }
      last = Undecryptable(key, "is encrypted but no configured key matches its prefix");
    }
    first = false;
  }
  return last;
}

Result<Entry> Barrier::Decrypt(const storage::KeyValue& kv, bool may_call_out) {
  SIGIL_ASSIGN_OR_RETURN(Entry e, DecryptValue(kv.key, kv.value, may_call_out));
  e.create_revision = kv.create_revision;
  e.mod_revision = kv.mod_revision;
  return e;
}

Result<std::optional<Entry>> Barrier::Get(std::string_view key) {
  // Nothing can be stored under a key longer than the backend takes: a lookup of one finds
  // nothing (an object name too long to exist is not found, as a 4xx, never a storage error).
  if (key.size() > storage::kMaxKeySize) return std::optional<Entry>();
  SIGIL_ASSIGN_OR_RETURN(std::optional<storage::KeyValue> kv, backend_->Get(key));
  if (!kv) return std::optional<Entry>();
  SIGIL_ASSIGN_OR_RETURN(Entry e, Decrypt(*kv));
  return std::optional<Entry>(std::move(e));
}

Result<EntryList> Barrier::Range(const storage::RangeRequest& request) {
  SIGIL_ASSIGN_OR_RETURN(storage::RangeResult r, backend_->Range(request));
  EntryList out;
  out.more = r.more;
  out.revision = r.revision;
  out.entries.reserve(r.kvs.size());
  for (const storage::KeyValue& kv : r.kvs) {
    if (request.keys_only) {
      out.entries.push_back(Entry{kv.key, {}, kv.create_revision, kv.mod_revision, false});
      continue;
    }
    SIGIL_ASSIGN_OR_RETURN(Entry e, Decrypt(kv));
    out.entries.push_back(std::move(e));
  }
  return out;
}

Result<storage::Txn> Barrier::Encrypt(BarrierTxn txn) {
  storage::Txn out;
  out.compares = std::move(txn.compares);
  for (BarrierOp& op : txn.ops) {
    if (op.key.starts_with(kKeyringStorageKey)) return PermissionDeniedError("the keyring key is reserved");
    if (op.kind == storage::Op::Kind::kDelete) {
      out.ops.push_back(storage::Op::Delete(std::move(op.key)));
      continue;
    }
    SIGIL_ASSIGN_OR_RETURN(std::string sealed, EncryptValue(op.key, op.value.view()));
    out.ops.push_back(storage::Op::Put(std::move(op.key), std::move(sealed)));
  }
  return out;
}

Result<storage::TxnResult> Barrier::Commit(BarrierTxn txn) {
  SIGIL_ASSIGN_OR_RETURN(storage::Txn t, Encrypt(std::move(txn)));
  return backend_->Commit(std::move(t));
}

void Barrier::CommitAsync(BarrierTxn txn, storage::CommitCallback done) {
  auto t = Encrypt(std::move(txn));
  if (!t.ok()) {
    done(t.error());
    return;
  }
  backend_->CommitAsync(std::move(t).value(), std::move(done));
}

Result<std::unique_ptr<storage::WatchHandle>> Barrier::Watch(std::string prefix, int64_t after_revision,
                                                             BarrierWatchCallback callback) {
  return backend_->Watch(std::move(prefix), after_revision,
                         [this, cb = std::move(callback)](const std::vector<storage::Event>& events) {
                           std::vector<BarrierEvent> out;
                           Status error;
                           for (const storage::Event& ev : events) {
                             BarrierEvent be{ev.type, Entry{ev.kv.key, {}, ev.kv.create_revision, ev.kv.mod_revision, false}, std::nullopt};
                             // Watch events are delivered on the storage commit path: a
                             // value whose key a service would have to open (a KMS seed not
                             // in memory) is an error event here, never a wait that would
                             // hold up every commit; the watcher re-lists and reads it.
                             if (ev.type == storage::Event::Type::kPut) {
                               auto e = Decrypt(ev.kv, /*may_call_out=*/false);
                               if (e.ok()) {
                                 be.entry = std::move(e).value();
                               } else {
                                 error = e.error();
                               }
                             }
                             if (ev.prev) {
                               auto p = Decrypt(*ev.prev, /*may_call_out=*/false);
                               if (p.ok()) be.prev = std::move(p).value();
                             }
                             out.push_back(std::move(be));
                           }
                           cb(out, error);
                         });
}

Result<uint32_t> Barrier::Rotate() {
  std::unique_lock l(keyring_mu_);
  Keyring next = keyring_.Clone();
  uint32_t term = next.Rotate(clock_);
  SIGIL_ASSIGN_OR_RETURN(std::string sealed, next.Seal(root_key_));
  storage::Txn txn;
  txn.compares.push_back({std::string(kKeyringStorageKey), keyring_revision_});
  txn.ops.push_back(storage::Op::Put(std::string(kKeyringStorageKey), std::move(sealed)));
  SIGIL_ASSIGN_OR_RETURN(storage::TxnResult r, backend_->Commit(std::move(txn)));
  if (!r.succeeded) return AbortedError("the keyring changed in storage since it was loaded; reopen and retry");
  keyring_ = std::move(next);
  keyring_revision_ = r.revision;
  return term;
}

KeyringInfo Barrier::keyring_info() {
  std::shared_lock l(keyring_mu_);
  KeyringInfo info{keyring_.active(), {}};
  for (const auto& [term, t] : keyring_.terms()) info.terms.emplace_back(term, t.created_unix);
  return info;
}

}  // namespace sigil::barrier
