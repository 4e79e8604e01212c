// kms/envelope.h: the EncryptionConfiguration `kms` provider, apiVersion v2, as kube-apiserver
// implements it (k8s.io/apiserver pkg/storage/value/encrypt/envelope/kmsv2 and
// pkg/server/options/encryptionconfig), byte for byte (docs/formats.md):
//
//   value = "k8s:enc:kms:v2:<name>:" | protobuf EncryptedObject {
//     encryptedData          = info(32) | nonce(12) | AES-256-GCM(DEK, nonce, P, AAD = storage key) | tag(16)
//     keyID                  = the plugin's key ID when the seed was wrapped
//     encryptedDEKSource     = the plugin's ciphertext of a 32-byte random seed
//     annotations            = the plugin's annotations from that Encrypt
//     encryptedDEKSourceType = HKDF_SHA256_XNONCE_AES_GCM_SEED }
//   DEK = HKDF-Expand(SHA-256, PRK = seed, info, 32): a fresh DEK for every write, with no
//   per-write call to the plugin.
//
// The seed: made and wrapped (one Encrypt) at start and whenever the plugin's Status reports a
// new key ID; the wrap must come back under that key ID. Status is polled every minute while
// healthy and every 10 s while not; each healthy answer lets writes use the seed for 3 more
// minutes, after which writes fail (reads go on). Reads open the value's seed with one Decrypt
// and keep it 24 h (cached by type, wrapped seed, key ID and annotations), so a plugin outage
// does not stop reads of values whose seed was seen (the current seed itself is always at
// hand, and a replaced one is kept 24 h from its replacement, as kube-apiserver's cache does by
// refreshing the current seed's entry on every write). Concurrent reads needing the same seed
// share one Decrypt; a failed one is not retried for a second. Watch events (the storage commit
// path) never call the plugin: a value whose seed is not in memory is an error event there.
// A value whose key ID (or type) is not the current one reads as stale, so a rewrite moves it
// to the new key. Reads of the legacy
// AES_GCM_KEY type (a wrapped DEK, nonce(12) | ciphertext | tag) are supported; writes always
// use the seed. Until the first seed exists, reads and writes both fail, as kube-apiserver's do.
// Health() is kube-apiserver's kms-providers check: the last probe's result; one older than
// 20 s (healthy) or 3 s (not) makes the poller probe again at once. Unlike kube-apiserver's,
// the check itself never waits for the plugin.
// Thread safety: thread-safe. The poller runs on a thread of its own until destruction.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sigil/barrier/encryption_config.h"
#include "sigil/barrier/transformer.h"
#include "sigil/base/clock.h"
#include "sigil/kms/client.h"

namespace sigil::kms {

struct ProviderOptions {
  std::string name;
  std::chrono::seconds poll_healthy{60};
  std::chrono::seconds poll_unhealthy{10};
  std::chrono::seconds write_seed_ttl{180};
  std::chrono::seconds decrypt_cache_ttl{24 * 3600};
  // Unlike kube-apiserver's cache, bounded: past this many seeds the oldest are forgotten (and
  // opened again by the plugin when next read).
  size_t decrypt_cache_max = 100000;
};

class Provider final : public barrier::Transformer {
 public:
  // Probes the plugin once now (a plugin that answers is ready before the first request; one
  // that does not is logged and retried by the poller) and starts polling.
  static std::unique_ptr<Provider> Start(std::unique_ptr<Client> client, ProviderOptions options, Clock* clock);
  ~Provider() override;

  const std::string& prefix() const override { return prefix_; }
  std::string name() const override { return "kms " + o_.name; }
  Result<std::string> Encrypt(std::string_view plaintext, std::string_view aad) const override;
  Result<SecretBytes> Decrypt(std::string_view stored, std::string_view aad, bool* stale, bool may_call_out) const override;
  Status Health() const override;

  // The plugin's current key ID as last seen (empty before the first successful probe).
  std::string key_id() const;
  // Runs one probe now (Status, and a new seed if the key ID changed), as the poller does.
  Status Probe() const;

 private:
  struct State;
  struct CachedSeed {
    SecretBytes seed;
    Clock::TimePoint expires;
  };
  struct Pending;  // one Decrypt of a seed in flight, shared by every reader that needs it
  Provider(std::unique_ptr<Client> client, ProviderOptions options, Clock* clock);
  void Poll();
  Status ProbeLocked() const;  // probe_mu_ held
  void SetState(std::shared_ptr<const State> next) const;
  std::shared_ptr<const State> CurrentState() const;
  Status LastProbe() const;
  Result<SecretBytes> OpenSeed(const std::string& cache_key, int type, const std::string& wrapped,
                               const std::string& key_id, const std::map<std::string, std::string>& annotations,
                               bool may_call_out) const;
  void CacheSeed(const std::string& cache_key, SecretBytes seed) const;  // cache_mu_ not held
  void CacheSeedLocked(const std::string& cache_key, SecretBytes seed) const;  // cache_mu_ held
  void SweepCache() const;

  const ProviderOptions o_;
  const std::string prefix_;
  Clock* const clock_;
  std::unique_ptr<Client> client_;

  mutable std::mutex probe_mu_;  // one probe at a time (held across its calls to the plugin)
  mutable std::string first_version_;  // guarded by probe_mu_

  mutable std::mutex health_mu_;  // never held across a call to the plugin
  mutable Status last_probe_;     // guarded by health_mu_
  mutable std::chrono::steady_clock::time_point last_probe_at_{};  // guarded by health_mu_
  mutable bool probed_ = false;   // guarded by health_mu_

  mutable std::mutex state_mu_;
  mutable std::shared_ptr<const State> state_;  // guarded by state_mu_

  mutable std::mutex cache_mu_;
  mutable std::condition_variable cache_cv_;
  mutable std::map<std::string, CachedSeed> cache_;                       // guarded by cache_mu_
  mutable std::map<std::string, std::shared_ptr<Pending>> pending_;       // guarded by cache_mu_
  mutable std::map<std::string, std::pair<Status, Clock::TimePoint>> failed_;  // guarded by cache_mu_

  mutable std::mutex poll_mu_;
  mutable std::condition_variable poll_cv_;
  bool stopping_ = false;           // guarded by poll_mu_
  mutable bool probe_now_ = false;  // guarded by poll_mu_: a health check asked for a probe
  std::thread poller_;
};

// The EncryptionConfiguration factory for kms providers (barrier::KmsFactory): a gRPC client
// of the configured socket with the provider's timeout, and `defaults` for the rest.
barrier::KmsFactory ProviderFactory(ProviderOptions defaults, Clock* clock);

// A stored value's EncryptedObject (after the "k8s:enc:kms:v2:<name>:" prefix), decoded and
// checked as kube-apiserver checks it (type, sizes, key ID, annotation names). kDataLoss if not.
struct EncryptedObjectFields {
  int type = 0;  // 0 AES_GCM_KEY, 1 HKDF_SHA256_XNONCE_AES_GCM_SEED
  std::string data, key_id, wrapped;
  std::map<std::string, std::string> annotations;
};
Result<EncryptedObjectFields> ParseEncryptedObject(std::string_view body);

// "sha256:<hex>" of a key ID, as kube-apiserver shows key IDs in errors and logs.
std::string KeyIdHash(std::string_view key_id);

}  // namespace sigil::kms
