#include "sigil/kms/plugin.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>
#include <thread>

#include "sigil/base/encoding.h"
#include "sigil/base/unix_socket.h"
#include "sigil/base/logging.h"
#include "sigil/base/metrics.h"
#include "sigil/crypto/aes.h"
#include "sigil/crypto/random.h"
#include "sigil/kms/kms_api.grpc.pb.h"

namespace sigil::kms {
namespace {

using Json = nlohmann::json;

constexpr size_t kNonceSize = 12;
constexpr size_t kMaxPlaintext = 64 * 1024;  // kube-apiserver sends 32-byte seeds

void Wipe(std::string* s) {
  if (!s->empty()) internal::SecureZero(s->data(), s->size());
}

void Count(const char* method, grpc::StatusCode code) {
  static const char* kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                                 "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                                 "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  int c = static_cast<int>(code);
  const char* name = c >= 0 && c < 17 ? kNames[c] : "UNKNOWN";
  metrics::Registry::Global()
      .GetCounter("sigil_kms_plugin_calls_total", "Calls served by sigil as a KMS v2 plugin.",
                  std::string("method=\"") + method + "\",code=\"" + name + "\"")
      ->Inc();
}

std::string Aad(std::string_view key_id) { return "sigil-kms-plugin:" + std::string(key_id); }

// The socket's directory must be sigil's (or root's) and writable by nobody else.
Status CheckDirectory(const std::string& socket_path) {
  std::string dir = socket_path.substr(0, socket_path.rfind('/'));
  if (dir.empty()) dir = "/";
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return FailedPreconditionError("kms_plugin.socket: directory " + dir + " does not exist");
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    return FailedPreconditionError("kms_plugin.socket: directory " + dir + " belongs to another user, who could replace the socket");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return FailedPreconditionError("kms_plugin.socket: directory " + dir +
                                   " is writable by group or others, who could replace the socket; use a private directory");
  }
  return OkStatus();
}

}  // namespace

class Plugin::Service final : public v2::KeyManagementService::Service {
 public:
  explicit Service(Plugin* p) : p_(p) {}

  grpc::Status Status(grpc::ServerContext*, const v2::StatusRequest*, v2::StatusResponse* resp) override {
    resp->set_version("v2");
    std::string id = p_->CurrentKeyId();
    sigil::Status health = p_->o_.health ? p_->o_.health() : OkStatus();
    resp->set_healthz(id.empty() ? "no key" : health.ok() ? "ok" : "unhealthy: " + health.message().substr(0, 200));
    resp->set_key_id(id);
    Count("Status", grpc::StatusCode::OK);
    return grpc::Status::OK;
  }

  grpc::Status Encrypt(grpc::ServerContext*, const v2::EncryptRequest* req, v2::EncryptResponse* resp) override {
    PluginCall call{"Encrypt", req->uid(), "", false, ""};
    grpc::Status out;
    if (req->plaintext().empty() || req->plaintext().size() > kMaxPlaintext) {
      out = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the plaintext must be 1 to 65536 bytes");
    } else {
      SecretBytes plain(req->plaintext());
      Result<std::string> ct = p_->Wrap(req->uid(), plain, &call.key_id);
      if (!ct.ok()) {
        out = grpc::Status(grpc::StatusCode::INTERNAL, ct.error().message());
      } else {
        resp->set_ciphertext(std::move(ct).value());
        resp->set_key_id(call.key_id);
      }
    }
    return Finish(&call, out, [&] { resp->Clear(); });
  }

  grpc::Status Decrypt(grpc::ServerContext*, const v2::DecryptRequest* req, v2::DecryptResponse* resp) override {
    PluginCall call{"Decrypt", req->uid(), req->key_id(), false, ""};
    grpc::Status out;
    if (!req->annotations().empty()) {
      // sigil's Encrypt returns no annotations, so a Decrypt with some did not come from it.
      out = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unexpected annotations: sigil's plugin sets none");
    } else {
      Result<SecretBytes> plain = p_->Unwrap(req->key_id(), req->ciphertext());
      if (!plain.ok()) {
        out = grpc::Status(plain.error().code() == StatusCode::kNotFound ? grpc::StatusCode::NOT_FOUND
                                                                          : grpc::StatusCode::INVALID_ARGUMENT,
                           plain.error().message());
      } else {
        resp->set_plaintext(std::string(plain->view()));
      }
    }
    return Finish(&call, out, [&] {
      Wipe(resp->mutable_plaintext());
      resp->Clear();
    });
  }

 private:
  // Audits the call; a call that cannot be audited is refused (and its answer dropped).
  template <typename Drop>
  grpc::Status Finish(PluginCall* call, grpc::Status out, Drop drop) {
    call->ok = out.ok();
    call->error = out.ok() ? "" : out.error_message();
    if (sigil::Status a = p_->o_.audit(*call); !a.ok()) {
      drop();
      log::Error("kms plugin: the audit trail refused a call; refusing it", {{"method", call->method}, {"error", a.message()}});
      out = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the audit trail is unavailable");
    }
    Count(call->method.c_str(), out.error_code());
    return out;
  }

  Plugin* const p_;
};

struct Plugin::Server {
  std::unique_ptr<grpc::Server> grpc;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread rotator;
};

Plugin::Plugin(Options options, store::ObjectStore* store, Clock* clock)
    : o_(std::move(options)), store_(store), clock_(clock) {}

Result<std::unique_ptr<Plugin>> Plugin::Start(Options options, store::ObjectStore* store, Clock* clock) {
  if (options.socket_path.empty() || options.socket_path.front() != '/') {
    return InvalidArgumentError("kms_plugin.socket must be an absolute path");
  }
  if (!options.audit) return InvalidArgumentError("the KMS plugin needs an audit function");
  std::unique_ptr<Plugin> p(new Plugin(std::move(options), store, clock));
  {
    std::lock_guard<std::mutex> l(p->mu_);
    SIGIL_RETURN_IF_ERROR(p->Load());
    if (p->keys_.empty()) SIGIL_RETURN_IF_ERROR(p->AddKeyLocked().status());
  }
  p->RotateIfDue();
  SIGIL_RETURN_IF_ERROR(CheckDirectory(p->o_.socket_path));
  // Refuse to serve on a path something else holds (a file that is not a socket, or a socket a
  // live process serves on); a stale socket from an earlier run is replaced.
  struct stat st {};
  if (::lstat(p->o_.socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return FailedPreconditionError("kms_plugin.socket " + p->o_.socket_path + " exists and is not a socket");
    if (unix_socket::SomeoneListens(p->o_.socket_path)) {
      return FailedPreconditionError("kms_plugin.socket " + p->o_.socket_path + ": another process is serving on it");
    }
    if (::unlink(p->o_.socket_path.c_str()) != 0) {
      return FailedPreconditionError("kms_plugin.socket " + p->o_.socket_path + ": cannot remove the stale socket");
    }
  }
  p->service_ = std::make_unique<Service>(p.get());
  p->server_ = std::make_unique<Server>();
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort("unix:" + p->o_.socket_path, grpc::InsecureServerCredentials(), &port);
  b.RegisterService(p->service_.get());
  b.SetMaxReceiveMessageSize(1 << 20);
  p->server_->grpc = b.BuildAndStart();
  if (!p->server_->grpc) return UnavailableError("kms plugin: cannot listen on " + p->o_.socket_path);
  // The socket was made with the process umask; narrow it to the owner before announcing it
  // (the directory is private, so the path still names our socket).
  if (::lstat(p->o_.socket_path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) ||
      ::chmod(p->o_.socket_path.c_str(), 0600) != 0) {
    p->server_->grpc->Shutdown();
    return PermissionDeniedError("kms plugin: cannot make " + p->o_.socket_path + " mode 0600");
  }
  p->socket_dev_ = st.st_dev;
  p->socket_ino_ = st.st_ino;
  if (p->o_.rotation_period.count() > 0) {
    p->server_->rotator = std::thread([raw = p.get()] {
      std::unique_lock<std::mutex> l(raw->server_->mu);
      while (!raw->server_->cv.wait_for(l, std::chrono::minutes(1), [raw] { return raw->server_->stopping; })) {
        l.unlock();
        raw->RotateIfDue();
        l.lock();
      }
    });
  }
  log::Info("kms plugin listening", {{"socket", p->o_.socket_path}, {"key_id", p->CurrentKeyId()}});
  return p;
}

Plugin::~Plugin() {
  if (server_) {
    {
      std::lock_guard<std::mutex> l(server_->mu);
      server_->stopping = true;
    }
    server_->cv.notify_all();
    if (server_->rotator.joinable()) server_->rotator.join();
    if (server_->grpc) {
      server_->grpc->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
      server_->grpc->Wait();
      struct stat st {};
      if (::lstat(o_.socket_path.c_str(), &st) == 0 && st.st_dev == socket_dev_ && st.st_ino == socket_ino_) {
        ::unlink(o_.socket_path.c_str());
      }
    }
  }
}

Status Plugin::Load() {
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> e, store_->Get(std::string(kPluginKeyringKey)));
  if (!e) {
    keys_.clear();
    revision_ = 0;
    return OkStatus();
  }
  Json j = Json::parse(e->doc.view(), nullptr, false);
  if (!j.is_object() || !j.contains("keys") || !j["keys"].is_array()) {
    return DataLossError("the KMS plugin keyring in the store is malformed");
  }
  std::vector<Key> keys;
  for (const Json& k : j["keys"]) {
    if (!k.is_object() || !k.contains("id") || !k["id"].is_string() || !k.contains("key") || !k["key"].is_string()) {
      return DataLossError("the KMS plugin keyring in the store is malformed");
    }
    std::string b64 = k["key"].get<std::string>();
    Result<SecretBytes> key = Base64DecodeSecret(b64);
    Wipe(&b64);
    if (!key.ok() || key->size() != 32) return DataLossError("a KMS plugin key in the store is malformed");
    key->Lock();
    keys.push_back(Key{k["id"].get<std::string>(), std::move(key).value(), k.value("created", int64_t{0})});
  }
  keys_ = std::move(keys);
  revision_ = e->revision;
  return OkStatus();
}

Result<std::string> Plugin::AddKeyLocked() {
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
  Key k{"sigil-kek-" + std::to_string(keys_.size() + 1) + "-" + HexEncode(crypto::RandomBytes(4)), crypto::RandomKey(32), now};
  Json j = {{"keys", Json::array()}};
  auto add = [&j](const Key& key) {
    j["keys"].push_back({{"id", key.id}, {"key", Base64Encode(key.key.view())}, {"created", key.created_unix}});
  };
  for (const Key& old : keys_) add(old);
  add(k);
  std::string doc = j.dump();
  SecretBytes value(doc);
  Wipe(&doc);
  Result<int64_t> r = revision_ == 0 ? store_->Create(std::string(kPluginKeyringKey), value)
                                      : store_->Update(std::string(kPluginKeyringKey), value, revision_);
  if (!r.ok()) {
    StatusCode code = r.error().code();
    if (code != StatusCode::kAborted && code != StatusCode::kAlreadyExists && code != StatusCode::kNotFound) return r.error();
    // Another server changed it: take theirs.
    SIGIL_RETURN_IF_ERROR(Load());
    return AbortedError("the KMS plugin keyring changed meanwhile; try again");
  }
  revision_ = *r;
  k.key.Lock();
  std::string id = k.id;
  keys_.push_back(std::move(k));
  log::Info("kms plugin: new key", {{"key_id", id}});
  return id;
}

Result<std::string> Plugin::Rotate() {
  std::lock_guard<std::mutex> l(mu_);
  return AddKeyLocked();
}

void Plugin::RotateIfDue() {
  if (o_.rotation_period.count() <= 0) return;
  std::lock_guard<std::mutex> l(mu_);
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
  if (!keys_.empty() && now - keys_.back().created_unix < o_.rotation_period.count()) return;
  if (auto r = AddKeyLocked(); !r.ok()) log::Warn("kms plugin: scheduled rotation failed", {{"error", r.error().message()}});
}

std::vector<PluginKeyInfo> Plugin::Keys() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<PluginKeyInfo> out;
  for (const Key& k : keys_) out.push_back({k.id, k.created_unix});
  return out;
}

std::string Plugin::CurrentKeyId() const {
  std::lock_guard<std::mutex> l(mu_);
  return keys_.empty() ? "" : keys_.back().id;
}

Result<std::string> Plugin::Wrap(std::string_view, const SecretBytes& plaintext, std::string* key_id) {
  std::lock_guard<std::mutex> l(mu_);
  if (keys_.empty()) return FailedPreconditionError("the plugin has no key");
  const Key& k = keys_.back();
  *key_id = k.id;
  std::string nonce = crypto::RandomNonce(kNonceSize);
  SIGIL_ASSIGN_OR_RETURN(std::string sealed, crypto::AesGcmSeal(k.key, nonce, plaintext.view(), Aad(k.id)));
  return nonce + sealed;
}

Result<SecretBytes> Plugin::Unwrap(std::string_view key_id, std::string_view ciphertext) {
  std::lock_guard<std::mutex> l(mu_);
  auto find = [&]() -> const Key* {
    for (const Key& k : keys_) {
      if (k.id == key_id) return &k;
    }
    return nullptr;
  };
  const Key* k = find();
  auto now = std::chrono::steady_clock::now();
  if (k == nullptr && now - last_reload_ >= std::chrono::seconds(1)) {
    // Rotated by another server since we read it? (At most once a second: unknown key IDs
    // cost callers nothing else.)
    last_reload_ = now;
    SIGIL_RETURN_IF_ERROR(Load());
    k = find();
  }
  if (k == nullptr) return NotFoundError("unknown key_id");
  if (ciphertext.size() < kNonceSize + crypto::kGcmTagSize) return InvalidArgumentError("the ciphertext is too short");
  auto plain = crypto::AesGcmOpen(k->key, ciphertext.substr(0, kNonceSize), ciphertext.substr(kNonceSize), Aad(k->id));
  if (!plain.ok()) return InvalidArgumentError("the ciphertext does not authenticate under this key_id");
  return plain;
}

}  // namespace sigil::kms
