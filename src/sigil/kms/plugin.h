// kms/plugin.h: sigil as a KMS v2 plugin. kube-apiserver (or another sigil) configured with
//   kms: {apiVersion: v2, name: sigil, endpoint: unix:///run/sigil/kms.sock}
// wraps its DEK seeds with sigil's key-encryption keys: Status, Encrypt and Decrypt of
// k8s.io/kms apis/v2 on a unix socket (mode 0600: whoever may open the socket may use the
// keys; that is the whole authorization, as for every KMS plugin). The socket's directory must
// not be writable by anyone else (who could swap the socket for theirs); a socket a live process
// still serves on is never taken over, and at stop only this plugin's own socket is removed.
//
// Keys: a dedicated keyring of 256-bit AES keys kept in sigil's store (behind the barrier, at
// /sigil/kms-plugin/keyring), created on first start. Each key has an ID "sigil-kek-<n>-<random>";
// Status reports the newest, Encrypt wraps under it (nonce(12) | AES-256-GCM | tag(16), AAD =
// the key ID), Decrypt picks the key by the request's key_id. Rotate() adds a key, which
// changes Status's key_id, so kube-apiserver makes a new seed within its poll interval; old
// keys keep decrypting. A key ID the plugin does not hold makes it re-read the keyring once
// (another server may have rotated it).
//
// Every Encrypt and Decrypt is audited through `audit` before it is answered (an audit failure
// refuses the call), with the key ID and the caller's uid, never the plaintext or ciphertext;
// calls are counted in sigil_kms_plugin_calls_total{method,code}. The plugin lives while the
// server is unsealed: a sealed server holds no keys and its socket is gone.
// Thread safety: thread-safe; gRPC serves calls on its own threads.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sigil/base/clock.h"
#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"
#include "sigil/store/object_store.h"

namespace sigil::kms {

inline constexpr std::string_view kPluginKeyringKey = "/sigil/kms-plugin/keyring";

// What the audit trail gets for one call.
struct PluginCall {
  std::string method;  // "Encrypt" or "Decrypt"
  std::string uid;     // the caller's correlation ID, as sent
  std::string key_id;
  bool ok = false;
  std::string error;  // why it was refused, when it was
};

struct PluginKeyInfo {
  std::string key_id;
  int64_t created_unix = 0;
};

class Plugin {
 public:
  struct Options {
    std::string socket_path;  // required; an existing socket there is replaced
    // Adds a key when the newest is this old (checked at start and every minute); 0: never.
    std::chrono::seconds rotation_period{0};
    std::function<Status(const PluginCall&)> audit;  // required
    // Whether calls can be served (the store and the audit trail): Status reports its failure
    // as the healthz text, so a kube-apiserver sees the outage. Optional.
    std::function<Status()> health;
  };
  // Loads (or creates) the keyring and starts serving. Errors: the socket cannot be made or
  // secured, the keyring cannot be read or written.
  static Result<std::unique_ptr<Plugin>> Start(Options options, store::ObjectStore* store, Clock* clock);
  // Stops serving (in-flight calls finish) and removes the socket.
  ~Plugin();

  // Adds a key and makes it the one Status reports; returns its ID.
  Result<std::string> Rotate();
  // The keys, oldest first; the last one is current.
  std::vector<PluginKeyInfo> Keys() const;
  const std::string& socket_path() const { return o_.socket_path; }

  class Service;  // the gRPC service (plugin.cc)

 private:
  struct Key {
    std::string id;
    SecretBytes key;
    int64_t created_unix = 0;
  };
  Plugin(Options options, store::ObjectStore* store, Clock* clock);
  Status Load();                        // mu_ held
  Result<std::string> AddKeyLocked();   // mu_ held
  void RotateIfDue();
  Result<std::string> Wrap(std::string_view uid, const SecretBytes& plaintext, std::string* key_id);
  Result<SecretBytes> Unwrap(std::string_view key_id, std::string_view ciphertext);
  std::string CurrentKeyId() const;

  const Options o_;
  store::ObjectStore* const store_;
  Clock* const clock_;
  mutable std::mutex mu_;
  std::vector<Key> keys_;      // guarded by mu_; oldest first
  int64_t revision_ = 0;       // guarded by mu_: the keyring's mod revision
  std::chrono::steady_clock::time_point last_reload_{};  // guarded by mu_
  // The socket this plugin made (device and inode), so it never removes another's.
  dev_t socket_dev_ = 0;
  ino_t socket_ino_ = 0;
  std::unique_ptr<Service> service_;
  struct Server;
  std::unique_ptr<Server> server_;
};

}  // namespace sigil::kms
