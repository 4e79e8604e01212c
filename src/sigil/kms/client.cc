#include "sigil/kms/client.h"

#include <grpcpp/grpcpp.h>

#include "sigil/kms/kms_api.grpc.pb.h"

namespace sigil::kms {
namespace {

void Wipe(std::string* s) {
  if (!s->empty()) internal::SecureZero(s->data(), s->size());
}

Status FromGrpc(const grpc::Status& s, std::string_view what) {
  std::string msg = "KMS plugin " + std::string(what) + ": " + s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return DeadlineExceededError(msg + " (no answer within the timeout)");
    default:
      return UnavailableError(msg + " (" + std::to_string(static_cast<int>(s.error_code())) + ")");
  }
}

class GrpcClient final : public Client {
 public:
  GrpcClient(const std::string& socket_path, std::chrono::milliseconds timeout) : timeout_(timeout) {
    grpc::ChannelArguments args;
    args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "localhost");
    // Plugins are local: no keepalive pings, and reconnect quickly after a plugin restart.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    std::string target = socket_path.starts_with("/@") ? "unix-abstract:" + socket_path.substr(2) : "unix:" + socket_path;
    stub_ = v2::KeyManagementService::NewStub(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }

  Result<StatusResponse> Status() override {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    v2::StatusRequest req;
    v2::StatusResponse resp;
    grpc::Status s = stub_->Status(&ctx, req, &resp);
    if (!s.ok()) return FromGrpc(s, "Status failed");
    return StatusResponse{resp.version(), resp.healthz(), resp.key_id()};
  }

  Result<EncryptResponse> Encrypt(std::string_view uid, const SecretBytes& plaintext) override {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    v2::EncryptRequest req;
    req.set_plaintext(std::string(plaintext.view()));
    req.set_uid(std::string(uid));
    v2::EncryptResponse resp;
    grpc::Status s = stub_->Encrypt(&ctx, req, &resp);
    Wipe(req.mutable_plaintext());
    if (!s.ok()) return FromGrpc(s, "Encrypt failed");
    EncryptResponse out{resp.ciphertext(), resp.key_id(), {}};
    for (const auto& [k, v] : resp.annotations()) out.annotations.emplace(k, v);
    return out;
  }

  Result<SecretBytes> Decrypt(std::string_view uid, const DecryptRequest& request) override {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    v2::DecryptRequest req;
    req.set_ciphertext(request.ciphertext);
    req.set_uid(std::string(uid));
    req.set_key_id(request.key_id);
    for (const auto& [k, v] : request.annotations) (*req.mutable_annotations())[k] = v;
    v2::DecryptResponse resp;
    grpc::Status s = stub_->Decrypt(&ctx, req, &resp);
    if (!s.ok()) return FromGrpc(s, "Decrypt failed");
    SecretBytes out(resp.plaintext());
    Wipe(resp.mutable_plaintext());
    return out;
  }

 private:
  void Prepare(grpc::ClientContext* ctx) const {
    ctx->set_deadline(std::chrono::system_clock::now() + timeout_);
    ctx->set_wait_for_ready(true);
  }

  const std::chrono::milliseconds timeout_;
  std::unique_ptr<v2::KeyManagementService::Stub> stub_;
};

}  // namespace

std::unique_ptr<Client> NewGrpcClient(const std::string& socket_path, std::chrono::milliseconds timeout) {
  return std::make_unique<GrpcClient>(socket_path, timeout);
}

}  // namespace sigil::kms
