// server/lifecycle.h: sealed and unsealed. The server always runs the transport, storage and
// the endpoints that work while sealed; everything above the barrier (server/unsealed.h) exists
// only between an unseal and the next seal.
//
// Seals: "shamir" (the root key is wrapped under an unseal key held as key shares; sys/init
// makes the shares, sys/unseal takes them: barrier/shamir_seal.h), "key-file" (auto-unseal at
// start from a root key file), "kms" (auto-unseal at start through a KMS v2 plugin, kms/seal.h;
// while the plugin does not answer the server stays sealed and retries every 5 s), and dev mode, which is a Shamir seal with one share that the
// server initialises and unseals itself at start.
//
// Requests: Dispatch() hands each request to the current Unsealed's routes, or answers 503 in
// the face's format while sealed. Every request and stream is counted against the Unsealed it
// entered; sealing swaps the Unsealed out at once (new requests see "sealed"), ends its streams,
// waits for its requests in flight, then destroys it on a thread of its own, so no request
// ever runs on a half-destroyed Unsealed and no key material outlives the seal.
// Thread safety: every public method is thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "sigil/api/vault/seal_control.h"
#include "sigil/barrier/seal.h"
#include "sigil/barrier/shamir_seal.h"
#include "sigil/server/unsealed.h"

namespace sigil::server {

class Lifecycle final : public vault::SealControl {
 public:
  struct Options {
    const Config* config = nullptr;
    storage::Backend* backend = nullptr;
    std::shared_ptr<const barrier::EncryptionConfig> encryption;
    auth::FailureThrottle* throttle = nullptr;
    boost::asio::thread_pool* delay_pool = nullptr;
    std::string dev_dir;
  };
  explicit Lifecycle(Options options);
  // Seals (if unsealed) and waits until everything above the barrier is gone.
  ~Lifecycle() override;

  struct Started {
    std::optional<SecretBytes> root_token;  // made at this start (dev, or a new key-file store)
    std::optional<SecretBytes> unseal_key;  // dev mode's single share
  };
  // Dev: initialises and unseals; key-file: unseals; shamir: stays sealed until sys/unseal.
  Result<Started> Start();

  // Serves a request with the current Unsealed's routes; 503 while sealed.
  void Dispatch(const http::Request& req, const http::RequestContext& ctx, http::Responder respond);
  // Readiness: storage, and while unsealed the audit trail; sealed is not ready.
  std::vector<std::pair<std::string, sigil::Status>> Checks();
  std::string seal_name() const;

  // vault::SealControl
  vault::SealStatus Status() override;
  Result<Initialized> Initialize(int shares, int threshold) override;
  Result<vault::SealStatus> Unseal(SecretBytes share) override;
  vault::SealStatus ResetUnseal() override;
  sigil::Status Seal() override;
  Result<vault::RekeyStatus> RekeyStatusNow() override;
  Result<vault::RekeyStatus> RekeyInit(int shares, int threshold) override;
  sigil::Status RekeyCancel() override;
  Result<RekeyUpdate> RekeyAdd(SecretBytes share, std::string_view nonce) override;
  Result<vault::KeyStatus> Rotate() override;
  Result<vault::KeyStatus> CurrentKey() override;

 private:
  struct Generation;
  class Ticket;
  class TrackedStream;
  class Held;
  // The current Unsealed with one request counted against it, or null while sealed.
  std::shared_ptr<Generation> Enter();
  // Builds and installs an Unsealed; op_mu_ held, and no retirement pending.
  sigil::Status UnsealWith(SecretBytes root_key);
  void Retire(const std::shared_ptr<Generation>& g);
  // Waits until every sealed Unsealed is gone (op_mu_ held): a new one never runs beside an
  // old one (both would write the audit trail). kFailedPrecondition once stopping.
  sigil::Status AwaitRetirements();
  // After a failed sys/init: deletes what it wrote (the store was empty before it).
  void RollBackInit(int64_t start_revision);
  vault::SealStatus StatusLocked();  // mu_ held
  sigil::Status CheckShare(const SecretBytes& share, int shares);

  const Options o_;
  const bool shamir_;  // dev mode uses the Shamir seal too
  barrier::ShamirSeal shamir_seal_;
  std::unique_ptr<barrier::Seal> auto_seal_;  // key-file or kms: unseals without shares
  // The kms seal, when its plugin did not answer at start: retries until it unseals.
  void RetryAutoUnseal();
  std::condition_variable retry_cv_;  // with mu_; woken when stopping
  std::thread retry_thread_;

  std::mutex op_mu_;  // serialises initialise, unseal and rekey completion
  std::mutex mu_;     // guards the fields below
  std::condition_variable retired_cv_;
  int retiring_ = 0;       // Unsealed objects sealed and not yet destroyed
  bool stopping_ = false;  // the destructor has begun: no more unseals
  std::optional<barrier::ShamirConfig> config_;  // cached; nullopt: not initialised
  barrier::ShareCollector unseal_;
  barrier::ShareCollector rekey_;
  barrier::ShamirConfig rekey_target_;
  std::string cluster_name_, cluster_id_;
  std::atomic<std::shared_ptr<Generation>> current_;
  boost::asio::thread_pool retire_pool_{1};
};

}  // namespace sigil::server
