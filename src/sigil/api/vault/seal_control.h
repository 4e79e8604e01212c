// api/vault/seal_control.h: the server's seal, as the Vault face drives it.
//
// The server (server/lifecycle.h) implements SealControl; the face calls it from the endpoints
// that work while sealed (sys/init, sys/seal-status, sys/unseal, sys/health, sys/leader,
// sys/rekey/*: SealEndpoints below) and from the token-guarded ones inside the unsealed face
// (sys/seal, sys/rotate, sys/key-status). Key shares cross this interface as SecretBytes, and
// are never logged or audited. Thread safety: implementations are thread-safe.
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sigil/api/http/server.h"
#include "sigil/base/clock.h"
#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::vault {

struct SealStatus {
  std::string type;  // "shamir", or "key-file" (auto-unseal)
  bool initialized = false;
  bool sealed = true;
  int threshold = 0;  // t
  int shares = 0;     // n
  int progress = 0;   // unseal shares held so far
  std::string nonce;  // of the unseal attempt in progress; "" when none
  std::string cluster_name;  // "" while sealed
  std::string cluster_id;
};

struct RekeyStatus {
  bool started = false;
  std::string nonce;
  int threshold = 0;  // t and n of the new shares
  int shares = 0;
  int progress = 0;   // old shares held so far
  int required = 0;   // the old threshold
};

struct KeyStatus {
  uint32_t term = 0;
  int64_t install_unix = 0;
};

class SealControl {
 public:
  virtual ~SealControl() = default;
  virtual SealStatus Status() = 0;
  struct Initialized {
    std::vector<SecretBytes> shares;
    SecretBytes root_token;
  };
  // kFailedPrecondition when initialised already (or the seal is not Shamir), kInvalidArgument
  // for parameters Vault refuses.
  virtual Result<Initialized> Initialize(int shares, int threshold) = 0;
  // Adds one share; with the threshold reached, unseals. kPermissionDenied for shares that do
  // not unseal (the progress is reset), kFailedPrecondition when not initialised.
  virtual Result<SealStatus> Unseal(SecretBytes share) = 0;
  virtual SealStatus ResetUnseal() = 0;
  // Seals: new requests are refused at once; requests in flight finish and everything above
  // the barrier, key material included, is destroyed soon after, off the calling thread.
  virtual sigil::Status Seal() = 0;

  virtual Result<RekeyStatus> RekeyStatusNow() = 0;
  virtual Result<RekeyStatus> RekeyInit(int shares, int threshold) = 0;
  virtual sigil::Status RekeyCancel() = 0;
  // Adds one old share for the rekey with `nonce`; once the old threshold is reached, returns
  // the new shares (and ends the rekey). kInvalidArgument for a wrong nonce.
  struct RekeyUpdate {
    RekeyStatus status;
    std::optional<std::vector<SecretBytes>> shares;  // set when complete
  };
  virtual Result<RekeyUpdate> RekeyAdd(SecretBytes share, std::string_view nonce) = 0;

  // sys/rotate and sys/key-status (token-guarded, in the unsealed face).
  virtual Result<KeyStatus> Rotate() = 0;
  virtual Result<KeyStatus> CurrentKey() = 0;
};

// The endpoints served in every state, without a token: sys/init, sys/seal-status, sys/unseal,
// sys/health, sys/leader, sys/rekey/init and sys/rekey/update. As in Vault they are not
// audited (the trail lives behind the barrier). Calls into SealControl run on a thread of
// their own, never on an I/O thread.
class SealEndpoints {
 public:
  SealEndpoints(SealControl* control, Clock* clock, std::string version);
  ~SealEndpoints();
  void Register(http::Router* router);

 private:
  http::Response Serve(const http::Request& req);
  SealControl* const control_;
  Clock* const clock_;
  const std::string version_;
  static constexpr int kMaxQueued = 16;
  std::atomic<int> queued_{0};
  boost::asio::thread_pool pool_{1};
};

}  // namespace sigil::vault
