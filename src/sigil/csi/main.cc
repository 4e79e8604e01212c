// sigil-csi-provider: serves the Secrets Store CSI driver's provider API on a unix socket, so a
// SecretProviderClass with `provider: sigil` mounts Secrets and Vault-face paths from a sigil
// server into pods (csi/provider.h; docs/agent.md, "CSI provider").
//
//   sigil-csi-provider --server https://sigil:8443 --ca-file ca.crt
//       [--socket /var/run/secrets-store-csi-providers/sigil.sock]
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "sigil/base/file.h"
#include "sigil/base/logging.h"
#include "sigil/base/unix_socket.h"
#include "sigil/csi/csi_provider.grpc.pb.h"
#include "sigil/csi/provider.h"

namespace {

grpc::StatusCode GrpcCode(sigil::StatusCode c) {
  switch (c) {
    case sigil::StatusCode::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case sigil::StatusCode::kPermissionDenied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case sigil::StatusCode::kUnauthenticated:
      return grpc::StatusCode::UNAUTHENTICATED;
    case sigil::StatusCode::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    default:
      return grpc::StatusCode::UNAVAILABLE;
  }
}

class Service final : public v1alpha1::CSIDriverProvider::Service {
 public:
  explicit Service(const sigil::csi::Provider* p) : provider_(p) {}

  grpc::Status Version(grpc::ServerContext*, const v1alpha1::VersionRequest*,
                       v1alpha1::VersionResponse* out) override {
    out->set_version("v1alpha1");
    out->set_runtime_name("sigil-csi-provider");
    out->set_runtime_version(SIGIL_VERSION);
    return grpc::Status::OK;
  }

  grpc::Status Mount(grpc::ServerContext*, const v1alpha1::MountRequest* in,
                     v1alpha1::MountResponse* out) override {
    auto attrs = nlohmann::json::parse(in->attributes(), nullptr, false);
    auto str = [&](const char* k) {
      return attrs.is_object() && attrs.contains(k) && attrs[k].is_string()
                 ? attrs[k].get<std::string>()
                 : std::string();
    };
    std::string pod =
        str("csi.storage.k8s.io/pod.namespace") + "/" + str("csi.storage.k8s.io/pod.name");
    auto r = provider_->Mount(in->attributes(), in->permission());
    if (!r.ok()) {
      sigil::log::Warn("mount refused", {{"pod", pod}, {"error", r.error().message()}});
      return grpc::Status(GrpcCode(r.error().code()), r.error().message());
    }
    for (auto& [id, version] : r->versions) {
      auto* v = out->add_object_version();
      v->set_id(id);
      v->set_version(version);
    }
    for (auto& f : r->files) {
      auto* file = out->add_files();
      file->set_path(f.path);
      file->set_mode(f.mode);
      file->set_contents(reinterpret_cast<const char*>(f.contents.data()), f.contents.size());
    }
    sigil::log::Info("mounted", {{"pod", pod}, {"files", r->files.size()}});
    return grpc::Status::OK;
  }

 private:
  const sigil::csi::Provider* provider_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sigil-csi-provider: the Secrets Store CSI driver's provider API for a sigil server"};
  std::string socket_path = "/var/run/secrets-store-csi-providers/sigil.sock", server, ca_file,
              log_level = "info";
  app.add_option("--socket", socket_path,
                 "the unix socket the driver calls (<providers dir>/sigil.sock)");
  app.add_option("--server", server,
                 "the sigil server (https://host:port); the only one mounts read from")
      ->required();
  int timeout_seconds = 15;
  app.add_option("--timeout-seconds", timeout_seconds,
                 "the most each request to the server may take")
      ->check(CLI::Range(1, 300));
  app.add_option("--ca-file", ca_file,
                 "the CA that signed the server's certificate (default: the system's)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  sigil::log::Level level = sigil::log::Level::kInfo;
  sigil::log::ParseLevel(log_level, &level);
  sigil::log::Init(level, false);
  sigil::client::Endpoint ep;
  ep.server = server;
  if (!server.starts_with("https://")) {
    std::cerr << "sigil-csi-provider: --server must be an https:// URL\n";
    return 2;
  }
  if (!ca_file.empty()) {
    auto ca = sigil::file::ReadFile(ca_file, 1 << 20);
    if (!ca.ok()) {
      std::cerr << "sigil-csi-provider: " << ca.error().message() << "\n";
      return 2;
    }
    ep.ca_pem = *ca;
  }
  struct stat st {};
  if (::lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode) || sigil::unix_socket::SomeoneListens(socket_path)) {
      std::cerr << "sigil-csi-provider: " << socket_path
                << " is in use (not a socket, or another process serves on it)\n";
      return 2;
    }
    ::unlink(socket_path.c_str());
  }
  // Blocked before any thread starts, so sigwait below receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  sigil::csi::Provider provider(std::move(ep), std::chrono::seconds(timeout_seconds));
  Service service(&provider);
  grpc::ServerBuilder b;
  b.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  b.RegisterService(&service);
  b.SetMaxReceiveMessageSize(1 << 20);
  mode_t old =
      ::umask(077);  // no group or other bits on the socket: only the driver (root) may call it
  std::unique_ptr<grpc::Server> server_handle = b.BuildAndStart();
  ::umask(old);
  if (!server_handle) {
    std::cerr << "sigil-csi-provider: cannot listen on " << socket_path << "\n";
    return 1;
  }
  sigil::log::Info("sigil-csi-provider listening", {{"socket", socket_path}, {"server", server}});
  int sig = 0;
  sigwait(&stop, &sig);
  sigil::log::Info("stopping", {{"signal", sig}});
  server_handle->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server_handle->Wait();
  ::unlink(socket_path.c_str());
  return 0;
}
