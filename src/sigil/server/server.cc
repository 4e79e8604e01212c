#include "sigil/server/server.h"

#include "sigil/crypto/random.h"

#include <signal.h>
#include <malloc.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <filesystem>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "sigil/api/http/errors.h"
#include "sigil/base/encoding.h"
#include "sigil/kms/envelope.h"
#include "sigil/kms/seal.h"
#include "sigil/client/kubeconfig.h"
#include "sigil/base/file.h"
#include "sigil/base/logging.h"
#include "sigil/base/metrics.h"
#include "sigil/storage/lmdb_backend.h"

#ifndef SIGIL_VERSION
#define SIGIL_VERSION "0.0.0"
#endif

namespace sigil::server {

namespace {
sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}
}  // namespace

void BlockShutdownSignals() {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void HardenProcess() {
  struct rlimit none {0, 0};
  setrlimit(RLIMIT_CORE, &none);
  // Descriptors up to the hard limit: the connection limit (limits.max_connections) is kept
  // below what this allows (api/http/server.h).
  struct rlimit fds {};
  if (getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < fds.rlim_max) {
    fds.rlim_cur = fds.rlim_max;
    setrlimit(RLIMIT_NOFILE, &fds);
  }
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ::umask(077);
}

void LimitMallocArenas() {
  if (std::getenv("MALLOC_ARENA_MAX") != nullptr) return;
  mallopt(M_ARENA_MAX, static_cast<int>(std::max(2u, std::thread::hardware_concurrency())));
}

Result<IssuedKubeconfig> KubeconfigFor(const Config& config_in, const KubeconfigRequest& request) {
  Config c = config_in;
  SIGIL_RETURN_IF_ERROR(c.ApplyListen());
  if (!c.tls_cert_file.empty()) {
    return FailedPreconditionError(
        "the server uses a configured certificate (tls.cert_file) and sigil does not hold its CA key, so it cannot "
        "issue a client certificate; write the kubeconfig with your own client certificate");
  }
  if (c.data_dir.empty()) return InvalidArgumentError("data_dir is required (--config or --data-dir)");
  std::string dir = c.data_dir + "/tls";
  if (!std::filesystem::exists(dir + "/ca.key")) {
    return FailedPreconditionError("no CA in " + dir + ": start the server once first (it generates its certificates there)");
  }
  SIGIL_ASSIGN_OR_RETURN(http::CertificateSet certs, http::LoadCertificates(dir + "/server.crt", dir + "/server.key", dir + "/ca.crt"));
  SIGIL_ASSIGN_OR_RETURN(certs.ca_key_pem, file::ReadPrivateFile(dir + "/ca.key"));
  std::string url = request.server_url;
  if (url.empty()) {
    std::string host = c.http.address;
    if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
    if (host == "::") host = "::1";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    url = "https://" + host + ":" + std::to_string(c.http.port);
  }
  SIGIL_ASSIGN_OR_RETURN(http::ClientCertificate user,
                         http::IssueClientCertificate(certs, request.user, request.groups, request.days));
  IssuedKubeconfig out;
  out.text = client::RenderKubeconfig("sigil", url, certs.ca_cert_pem, request.user, user.cert_pem, user.key_pem);
  out.endpoint.server = url;
  out.endpoint.ca_pem = certs.ca_cert_pem;
  out.endpoint.cert_pem = user.cert_pem;
  out.endpoint.key_pem = std::move(user.key_pem);
  return out;
}

std::string VersionJson() {
  nlohmann::ordered_json j = {{"major", "1"},
                              {"minor", "32"},
                              {"gitVersion", std::string("v1.32.0+sigil.") + SIGIL_VERSION},
                              {"gitCommit", "sigil"},
                              {"gitTreeState", "clean"},
                              {"buildDate", "1970-01-01T00:00:00Z"},
                              {"goVersion", "none (sigil is C++)"},
                              {"compiler", "gcc"},
                              {"platform", "linux/amd64"}};
  return j.dump(2);
}

namespace {

Result<std::unique_ptr<storage::Backend>> OpenStorage(const Config& c, const std::string& dir) {
  storage::LmdbOptions o;
  o.dir = dir;
  o.map_size = c.storage_max_bytes;
  o.watch_history = c.watch_history;
  o.watch_history_bytes = c.watch_history_bytes;
  SIGIL_ASSIGN_OR_RETURN(std::unique_ptr<storage::LmdbBackend> b, storage::LmdbBackend::Open(o));
  return std::unique_ptr<storage::Backend>(std::move(b));
}

Result<std::shared_ptr<const barrier::EncryptionConfig>> LoadEncryptionConfig(const Config& c) {
  if (c.encryption_config_file.empty()) return std::shared_ptr<const barrier::EncryptionConfig>();
  kms::ProviderOptions kms;
  kms.poll_healthy = c.kms_poll_healthy;
  kms.poll_unhealthy = c.kms_poll_unhealthy;
  kms.write_seed_ttl = c.kms_write_seed_ttl;
  SIGIL_ASSIGN_OR_RETURN(std::unique_ptr<barrier::EncryptionConfig> ec,
                         barrier::EncryptionConfig::LoadFile(c.encryption_config_file,
                                                             kms::ProviderFactory(kms, Clock::Real())));
  for (const std::string& r : ec->IdentityWriteResources()) {
    log::Warn("EncryptionConfiguration writes this resource in PLAINTEXT (identity provider first)",
              {{"resource", r}, {"file", c.encryption_config_file}});
  }
  return std::shared_ptr<const barrier::EncryptionConfig>(std::move(ec));
}

}  // namespace

Result<std::unique_ptr<SigilServer>> SigilServer::Create(Config config) {
  SIGIL_RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<SigilServer> s(new SigilServer());
  s->config_ = std::move(config);
  const Config& c = s->config_;

  std::string store_dir;
  if (c.dev) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sigil-dev-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return file::ErrnoStatus(errno, "create dev directory");
    s->dev_dir_ = tmpl;
    store_dir = tmpl + "/data";
  } else {
    SIGIL_RETURN_IF_ERROR(file::MakePrivateDir(c.data_dir));
    store_dir = c.data_dir + "/store";
  }
  SIGIL_ASSIGN_OR_RETURN(s->backend_, OpenStorage(c, store_dir));
  SIGIL_ASSIGN_OR_RETURN(auto enc, LoadEncryptionConfig(c));
  s->throttle_ = std::make_unique<auth::FailureThrottle>(Clock::Real());
  Lifecycle::Options lo;
  lo.config = &s->config_;
  lo.backend = s->backend_.get();
  lo.encryption = enc;
  lo.throttle = s->throttle_.get();
  lo.delay_pool = &s->delay_pool_;
  lo.dev_dir = s->dev_dir_;
  s->lifecycle_ = std::make_unique<Lifecycle>(std::move(lo));
  SIGIL_ASSIGN_OR_RETURN(Lifecycle::Started started, s->lifecycle_->Start());
  s->new_root_token_ = std::move(started.root_token);
  s->dev_unseal_key_ = std::move(started.unseal_key);
  s->seal_endpoints_ = std::make_unique<vault::SealEndpoints>(s->lifecycle_.get(), Clock::Real(), SIGIL_VERSION);

  if (!c.tls_cert_file.empty()) {
    SIGIL_ASSIGN_OR_RETURN(s->certs_, http::LoadCertificates(c.tls_cert_file, c.tls_key_file, c.tls_ca_file));
    s->ca_file_ = c.tls_ca_file;
  } else if (c.dev) {
    SIGIL_ASSIGN_OR_RETURN(s->certs_, http::GenerateCertificates(c.tls_hosts));
    s->ca_file_ = s->dev_dir_ + "/ca.crt";
    SIGIL_RETURN_IF_ERROR(file::WriteFileAtomic(s->ca_file_, s->certs_.ca_cert_pem, 0644));
  } else {
    SIGIL_ASSIGN_OR_RETURN(s->certs_, http::LoadOrGenerateCertificates(c.data_dir + "/tls", c.tls_hosts));
    s->ca_file_ = c.data_dir + "/tls/ca.crt";
  }
  // Client certificates: against the configured CA, else the CA sigil generated (none when a
  // configured server certificate came without auth.client_ca_file).
  http::ServerOptions http_options = c.http;
  if (!c.auth_client_ca_file.empty()) {
    SIGIL_ASSIGN_OR_RETURN(http_options.client_ca_pem, file::ReadFile(c.auth_client_ca_file, 1 << 20));
  } else if (c.tls_cert_file.empty()) {
    http_options.client_ca_pem = s->certs_.ca_cert_pem;
  }
  if (s->new_root_token_ && !c.dev) {
    // Production: the root token goes to a private file, never to a log.
    std::string path = c.data_dir + "/root-token";
    SIGIL_RETURN_IF_ERROR(file::WriteFileAtomic(path, std::string(s->new_root_token_->view()) + "\n", 0600));
    s->new_root_token_.reset();
    s->root_token_file_ = path;
  }
  s->http_ = std::make_unique<http::Server>(http_options, s->BuildRouter(), s->certs_);
  return s;
}

SigilServer::~SigilServer() {
  // Shutdown order. Each step ends what could still call into the next one down:
  // 1. http_->Stop(): no new connections; streams (watches) end and their OnClosed callbacks
  //    run, which end the API's storage watches; a stream a worker starts later ends at once.
  // 2. The lifecycle seals: it waits for requests in flight and destroys everything above the
  //    barrier (the faces' worker pools finish first; they may still answer through the
  //    stopped HTTP server, so it is destroyed only after them).
  // 3. Before that, the seal endpoints' thread ends (a queued unseal runs first; the
  //    lifecycle then seals again). After it, the HTTP server (its sessions and routes), then
  //    storage.
  Stop();
  delay_pool_.join();
  seal_endpoints_.reset();  // its queued init and unseal calls finish before the lifecycle goes
  lifecycle_.reset();
  http_.reset();
  throttle_.reset();
  backend_.reset();
  if (!dev_dir_.empty()) file::RemoveTree(dev_dir_);
}

http::Router SigilServer::BuildRouter() {
  http::Router r;
  auto text = [](std::string body) {
    return [body](const http::Request& req, const http::RequestContext&, http::Responder respond) {
      respond(http::MakeResponse(req, http::HttpStatus::ok, "text/plain; charset=utf-8", body));
    };
  };
  r.Handle("/livez", text("ok"));
  // Not ready while sealed, or when storage or the audit trail has stopped after a failed write
  // or fsync (docs/threat-model.md "Storage and audit failures"): both stay so until restart.
  auto ready = [this](const http::Request& req, const http::RequestContext&, http::Responder respond) {
    std::vector<std::pair<std::string, Status>> checks = lifecycle_->Checks();
    bool verbose = req.target().find("verbose") != std::string_view::npos;
    std::string body;
    const Status* failed = nullptr;
    std::string failed_name;
    for (const auto& [name, st] : checks) {
      if (verbose) body += std::string(st.ok() ? "[+]" : "[-]") + name + (st.ok() ? " ok" : " failed") + "\n";
      if (!st.ok() && failed == nullptr) {
        failed = &st;
        failed_name = name;
      }
    }
    if (failed == nullptr) {
      body += verbose ? "readyz check passed\n" : "ok";
      respond(http::MakeResponse(req, http::HttpStatus::ok, "text/plain; charset=utf-8", body));
    } else {
      body += verbose ? "readyz check failed\n" : failed_name + " failed: " + failed->message();
      respond(http::MakeResponse(req, http::HttpStatus::service_unavailable, "text/plain; charset=utf-8", body));
    }
  };
  r.Handle("/readyz", ready);
  r.Handle("/healthz", ready);
  r.Handle("/version", [](const http::Request& req, const http::RequestContext&, http::Responder respond) {
    respond(http::MakeResponse(req, http::HttpStatus::ok, "application/json", VersionJson()));
  });
  seal_endpoints_->Register(&r);
  // Everything else: the unsealed server's routes (both faces), or 503 while sealed.
  r.HandleOthers([this](const http::Request& req, const http::RequestContext& ctx, http::Responder respond) {
    lifecycle_->Dispatch(req, ctx, std::move(respond));
  });
  return r;
}

Status SigilServer::Start() {
  SIGIL_RETURN_IF_ERROR(http_->Start());
  log::Info("sigil server started", {{"address", config_.http.address}, {"port", http_->bound_port()},
                                     {"dev", config_.dev ? "true" : "false"}, {"seal", lifecycle_->seal_name()}});
  return OkStatus();
}

// Returns once every stream has ended (http::Server::Stop), so no watch outlives it.
void SigilServer::Stop() {
  if (http_) http_->Stop();
}

int SigilServer::Run() {
  // main() blocked the signals before any thread started; this thread takes them.
  sigset_t set = ShutdownSignals();
  BlockShutdownSignals();
  Status s = Start();
  if (!s.ok()) {
    log::Error("cannot start", {{"error", s.ToString()}});
    return 1;
  }
  std::string host = config_.http.address.find(':') != std::string::npos ? "[" + config_.http.address + "]" : config_.http.address;
  std::string url = "https://" + host + ":" + std::to_string(http_->bound_port());
  if (config_.dev) {
    std::string kubeconfig = dev_dir_ + "/kubeconfig";
    // A client certificate for the dev admin. NOTE: sigil does not authenticate requests yet
    // (docs/kubernetes-api.md); the certificate is what kubectl needs to not prompt, and what
    // client-certificate authentication will check once it exists.
    auto user = http::IssueClientCertificate(certs_, "sigil-dev-admin", {"system:masters"}, 365);
    Status k = user.ok() ? OkStatus() : user.error();
    if (k.ok()) {
      std::string text = client::RenderKubeconfig("sigil", url, certs_.ca_cert_pem, "sigil-dev-admin", user->cert_pem, user->key_pem);
      k = file::WriteFileAtomic(kubeconfig, text, 0600);
      internal::SecureZero(text.data(), text.size());
    }
    if (!k.ok()) log::Warn("cannot write the dev kubeconfig", {{"error", k.message()}});
    std::string root = new_root_token_ ? "  Root token (shown once): " + std::string(new_root_token_->view()) + "\n\n" : "";
    if (dev_unseal_key_) root += "  Unseal key (shown once): " + Base64Encode(dev_unseal_key_->view()) + "\n\n";
    new_root_token_.reset();
    dev_unseal_key_.reset();
    std::printf(
        "\nsigil dev server listening on %s\n"
        "Dev mode: storage is in %s and is removed at exit; the server initialised itself with one unseal key.\n\n"
        "  export KUBECONFIG=%s\n"
        "  kubectl get secrets\n\n"
        "  export VAULT_ADDR=%s\n"
        "  export VAULT_CACERT=%s\n\n%s",
        url.c_str(), dev_dir_.c_str(), kubeconfig.c_str(), url.c_str(), ca_file_.c_str(), root.c_str());
    internal::SecureZero(root.data(), root.size());
  } else {
    if (!root_token_file_.empty()) {
      std::printf("Initialised: the root token is in %s (mode 0600). Read it, keep it somewhere safe, delete the file.\n",
                  root_token_file_.c_str());
    }
    std::printf("sigil server listening on %s (CA certificate: %s)\n", url.c_str(), ca_file_.c_str());
  }
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  log::Info("shutting down", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  Stop();
  log::Info("stopped");
  return 0;
}

Status RotateOffline(const Config& config_in) {
  Config c = config_in;
  SIGIL_RETURN_IF_ERROR(c.Validate());
  if (c.dev) return InvalidArgumentError("a dev server's keyring lives only in its memory; nothing to rotate offline");
  if (c.seal_type == "shamir") {
    return InvalidArgumentError("the shamir seal needs its key shares: rotate on the running, unsealed server (PUT /v1/sys/rotate)");
  }
  SIGIL_ASSIGN_OR_RETURN(auto backend, OpenStorage(c, c.data_dir + "/store"));
  SIGIL_ASSIGN_OR_RETURN(auto enc, LoadEncryptionConfig(c));
  std::unique_ptr<barrier::Seal> seal;
  if (c.seal_type == "kms") {
    auto client = kms::NewGrpcClient(c.seal_kms_endpoint.substr(std::string_view("unix://").size()), c.seal_kms_timeout);
    seal = barrier::NewWrappedKeySeal(backend.get(), kms::NewKmsKeyWrapper(std::move(client), "kms " + c.seal_kms_endpoint));
  } else {
    seal = barrier::NewKeyFileSeal(c.seal_key_file);
  }
  SIGIL_ASSIGN_OR_RETURN(auto b, barrier::Barrier::Open(backend.get(), seal.get(), enc, Clock::Real()));
  SIGIL_ASSIGN_OR_RETURN(uint32_t term, b->Rotate());
  barrier::KeyringInfo info = b->keyring_info();
  std::printf("Rotated the keyring: new writes use term %u. Terms: ", term);
  for (size_t i = 0; i < info.terms.size(); ++i) std::printf("%s%u", i ? ", " : "", info.terms[i].first);
  std::printf(". Values written under older terms still decrypt and read as stale.\n");
  return OkStatus();
}

}  // namespace sigil::server
