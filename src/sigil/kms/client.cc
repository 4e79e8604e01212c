#include "sigil/kms/client.h"

#include <grpcpp/grpcpp.h>

#include <mutex>
#include <set>

#include "sigil/kms/kms_api.grpc.pb.h"

namespace sigil::kms {
namespace {

constexpr size_t kMaxMessage = 256;
constexpr int kMaxAnswer = 64 * 1024;

void Wipe(std::string* s) {
  if (!s->empty()) internal::SecureZero(s->data(), s->size());
}

std::string Cut(std::string s) {
  if (s.size() > kMaxMessage) s = s.substr(0, kMaxMessage) + "...";
  return s;
}

Status FromGrpc(const grpc::Status& s, std::string_view what) {
  std::string msg = "KMS plugin " + std::string(what) + ": " + Cut(s.error_message());
  switch (s.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return DeadlineExceededError(msg + " (no answer within the timeout)");
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::DATA_LOSS:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::UNIMPLEMENTED:
      return FailedPreconditionError(msg + " (refused: " + std::to_string(static_cast<int>(s.error_code())) + ")");
    default:
      return UnavailableError(msg + " (" + std::to_string(static_cast<int>(s.error_code())) + ")");
  }
}

class GrpcClient final : public Client {
 public:
  GrpcClient(const std::string& socket_path, std::chrono::milliseconds timeout) : timeout_(timeout) {
    grpc::ChannelArguments args;
    args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "localhost");
    // Plugins are local: reconnect quickly after a plugin restart.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    // A KMS answer is a key, a key ID and a few annotations: anything larger is garbage.
    args.SetMaxReceiveMessageSize(kMaxAnswer);
    std::string target = socket_path.starts_with("/@") ? "unix-abstract:" + socket_path.substr(2) : "unix:" + socket_path;
    stub_ = v2::KeyManagementService::NewStub(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }

  Result<StatusResponse> Status() override {
    Call call(this);
    if (!call.ok) return Stopped();
    v2::StatusRequest req;
    v2::StatusResponse resp;
    grpc::Status s = stub_->Status(&call.ctx, req, &resp);
    if (!s.ok()) return FromGrpc(s, "Status failed");
    return StatusResponse{resp.version(), Cut(resp.healthz()), resp.key_id()};
  }

  Result<EncryptResponse> Encrypt(std::string_view uid, const SecretBytes& plaintext) override {
    Call call(this);
    if (!call.ok) return Stopped();
    v2::EncryptRequest req;
    req.set_plaintext(std::string(plaintext.view()));
    req.set_uid(std::string(uid));
    v2::EncryptResponse resp;
    grpc::Status s = stub_->Encrypt(&call.ctx, req, &resp);
    Wipe(req.mutable_plaintext());
    if (!s.ok()) return FromGrpc(s, "Encrypt failed");
    EncryptResponse out{resp.ciphertext(), resp.key_id(), {}};
    for (const auto& [k, v] : resp.annotations()) out.annotations.emplace(k, v);
    return out;
  }

  Result<SecretBytes> Decrypt(std::string_view uid, const DecryptRequest& request) override {
    Call call(this);
    if (!call.ok) return Stopped();
    v2::DecryptRequest req;
    req.set_ciphertext(request.ciphertext);
    req.set_uid(std::string(uid));
    req.set_key_id(request.key_id);
    for (const auto& [k, v] : request.annotations) (*req.mutable_annotations())[k] = v;
    v2::DecryptResponse resp;
    grpc::Status s = stub_->Decrypt(&call.ctx, req, &resp);
    if (!s.ok()) return FromGrpc(s, "Decrypt failed");
    SecretBytes out(resp.plaintext());
    Wipe(resp.mutable_plaintext());
    return out;
  }

  void Shutdown() override {
    std::lock_guard<std::mutex> l(mu_);
    stopped_ = true;
    for (grpc::ClientContext* c : active_) c->TryCancel();
  }

 private:
  // One call's context, registered so Shutdown() can cancel it.
  struct Call {
    explicit Call(GrpcClient* c) : client(c) {
      ctx.set_deadline(std::chrono::system_clock::now() + c->timeout_);
      ctx.set_wait_for_ready(true);
      std::lock_guard<std::mutex> l(c->mu_);
      ok = !c->stopped_;
      if (ok) c->active_.insert(&ctx);
    }
    ~Call() {
      std::lock_guard<std::mutex> l(client->mu_);
      client->active_.erase(&ctx);
    }
    GrpcClient* client;
    grpc::ClientContext ctx;
    bool ok = false;
  };
  static sigil::Status Stopped() { return UnavailableError("KMS plugin client stopped"); }

  const std::chrono::milliseconds timeout_;
  std::unique_ptr<v2::KeyManagementService::Stub> stub_;
  std::mutex mu_;
  bool stopped_ = false;                   // guarded by mu_
  std::set<grpc::ClientContext*> active_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<Client> NewGrpcClient(const std::string& socket_path, std::chrono::milliseconds timeout) {
  return std::make_unique<GrpcClient>(socket_path, timeout);
}

}  // namespace sigil::kms
