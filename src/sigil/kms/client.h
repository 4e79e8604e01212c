// kms/client.h: a KMS v2 plugin as kube-apiserver calls it: Status, Encrypt and Decrypt over
// gRPC on a unix socket (insecure credentials, authority "localhost", wait-for-ready), each call
// bounded by the provider's timeout. The messages are k8s.io/kms apis/v2 (kms/kms_api.proto).
//
// Errors: kUnavailable when the plugin cannot be reached or fails a call for a passing reason,
// kDeadlineExceeded when it does not answer in time, kFailedPrecondition when it refuses the
// request (an unknown key ID, a ciphertext that does not authenticate); the plugin's own
// message is kept, cut to 256 bytes (it never holds key material: plugins must not echo
// plaintext). Answers larger than 64 KiB are refused. Plaintext in and out is SecretBytes, and the
// protobuf copies of it are wiped before they are freed.
// Thread safety: thread-safe; calls may run concurrently on one connection.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::kms {

struct StatusResponse {
  std::string version;
  std::string healthz;
  std::string key_id;
};

struct EncryptResponse {
  std::string ciphertext;
  std::string key_id;
  std::map<std::string, std::string> annotations;
};

struct DecryptRequest {
  std::string ciphertext;
  std::string key_id;
  std::map<std::string, std::string> annotations;
};

class Client {
 public:
  virtual ~Client() = default;
  virtual Result<StatusResponse> Status() = 0;
  virtual Result<EncryptResponse> Encrypt(std::string_view uid, const SecretBytes& plaintext) = 0;
  virtual Result<SecretBytes> Decrypt(std::string_view uid, const DecryptRequest& request) = 0;
  // Cancels the calls in flight and fails every later one (kUnavailable): a stopping server
  // does not wait out a hung plugin.
  virtual void Shutdown() = 0;
};

// A client of the plugin listening on the unix socket at `socket_path` (an absolute path; a
// path starting with "/@" names the abstract socket "@..."). Connecting is lazy: a plugin
// that is not up yet makes calls fail, not this.
std::unique_ptr<Client> NewGrpcClient(const std::string& socket_path, std::chrono::milliseconds timeout);

}  // namespace sigil::kms
