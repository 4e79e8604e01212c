#include "sigil/server/server.h"

#include "sigil/crypto/random.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "sigil/api/http/errors.h"
#include "sigil/base/encoding.h"
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
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ::umask(077);
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
  SIGIL_ASSIGN_OR_RETURN(std::unique_ptr<barrier::EncryptionConfig> ec,
                         barrier::EncryptionConfig::LoadFile(c.encryption_config_file));
  for (const std::string& r : ec->IdentityWriteResources()) {
    log::Warn("EncryptionConfiguration writes this resource in PLAINTEXT (identity provider first)",
              {{"resource", r}, {"file", c.encryption_config_file}});
  }
  return std::shared_ptr<const barrier::EncryptionConfig>(std::move(ec));
}

std::unique_ptr<barrier::Seal> MakeSeal(const Config& c) {
  if (c.seal_type == "dev") return barrier::NewDevSeal();
  return barrier::NewKeyFileSeal(c.seal_key_file);
}

}  // namespace

// The audit trail: on by default outside dev mode (every request at Metadata level to
// data_dir/audit/audit.log); in dev mode only when configured. Null when off.
static Result<std::unique_ptr<audit::Auditor>> OpenAuditor(const Config& c, store::ObjectStore* store, const std::string& dev_dir) {
  bool configured = !c.audit_log_path.empty() || c.audit_stdout || !c.audit_policy_file.empty();
  bool on = c.audit_enabled.value_or(!c.dev || configured);
  if (!on) {
    if (!c.dev) log::Warn("audit is switched off (audit.enabled: false): requests are not recorded");
    return std::unique_ptr<audit::Auditor>();
  }
  audit::Policy policy = audit::Policy::Everything(audit::Level::kMetadata, {audit::Stage::kRequestReceived});
  if (!c.audit_policy_file.empty()) {
    SIGIL_ASSIGN_OR_RETURN(std::string text, file::ReadFile(c.audit_policy_file, 1 << 20));
    auto p = audit::Policy::Parse(text);
    if (!p.ok()) return p.error().WithContext(c.audit_policy_file);
    policy = std::move(p).value();
  }
  std::vector<audit::SinkOptions> sinks;
  std::string path = c.audit_log_path;
  if (path.empty() && !c.audit_stdout) {
    std::string dir = c.dev ? dev_dir : c.data_dir + "/audit";
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return UnavailableError("cannot create " + dir + ": " + std::strerror(errno));
    path = dir + "/audit.log";
  }
  if (!path.empty()) sinks.push_back({path, c.audit_max_size_mb << 20, c.audit_fsync});
  if (c.audit_stdout && path != "-") sinks.push_back({"-", 0, false});
  SIGIL_ASSIGN_OR_RETURN(auto auditor, audit::Auditor::Open(store, std::move(policy), sinks));
  log::Info("audit trail", {{"path", path.empty() ? "-" : path}, {"stdout", c.audit_stdout ? "true" : "false"},
                            {"policy", c.audit_policy_file.empty() ? "Metadata for every request" : c.audit_policy_file}});
  return auditor;
}

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
  s->seal_ = MakeSeal(c);
  SIGIL_ASSIGN_OR_RETURN(s->barrier_, barrier::Barrier::Open(s->backend_.get(), s->seal_.get(), enc, Clock::Real()));
  s->store_ = std::make_unique<store::ObjectStore>(s->barrier_.get());
  SIGIL_ASSIGN_OR_RETURN(s->tokens_, auth::TokenStore::Open(s->store_.get(), Clock::Real()));
  SIGIL_ASSIGN_OR_RETURN(s->new_root_token_, s->tokens_->CreateRootOnce());
  std::optional<auth::TokenFile> token_file;
  if (!c.auth_token_file.empty()) {
    SIGIL_ASSIGN_OR_RETURN(token_file, auth::TokenFile::Load(c.auth_token_file));
  }
  std::optional<auth::ServiceAccountAuthenticator> service_accounts;
  if (!c.sa_issuers.empty()) {
    auth::ServiceAccountConfig sa;
    sa.issuers = c.sa_issuers;
    sa.audiences = c.sa_audiences;
    for (const std::string& f : c.sa_key_files) {
      SIGIL_ASSIGN_OR_RETURN(std::string pem, file::ReadFile(f, 1 << 20));
      if (Status st = sa.keys.AddPem(pem); !st.ok()) return st.WithContext(f);
    }
    for (const std::string& f : c.sa_jwks_files) {
      SIGIL_ASSIGN_OR_RETURN(std::string jwks, file::ReadFile(f, 1 << 20));
      if (Status st = sa.keys.AddJwks(jwks); !st.ok()) return st.WithContext(f);
    }
    service_accounts.emplace(std::move(sa), Clock::Real());
  }
  s->authenticator_ = std::make_unique<auth::Authenticator>(s->tokens_.get(), std::move(token_file), std::move(service_accounts));
  s->throttle_ = std::make_unique<auth::FailureThrottle>(Clock::Real());
  kube::KubernetesApi::Options kube_options;
  kube_options.token_reviewer = [a = s->authenticator_.get()](std::string_view token, std::string* why) {
    return a->AuthenticateToken(token, why);
  };
  kube_options.token_issuer = [t = s->tokens_.get()](const Identity& who, std::chrono::seconds ttl) { return t->Create(who, ttl); };
  SIGIL_ASSIGN_OR_RETURN(s->authorizer_, authz::Authorizer::Open(s->store_.get()));
  kube_options.authorizer = s->authorizer_.get();
  SIGIL_ASSIGN_OR_RETURN(s->auditor_, OpenAuditor(c, s->store_.get(), s->dev_dir_));
  s->authentication_ = std::make_unique<core::Authentication>(s->authenticator_.get(), s->throttle_.get(), s->auditor_.get(),
                                                              Clock::Real());
  kube_options.auditor = s->auditor_.get();
  s->registry_ = std::make_unique<registry::Registry>(s->store_.get(), Clock::Real(),
                                                      registry::Registry::Options{c.history_versions});
  s->kube_ = std::make_unique<kube::KubernetesApi>(s->registry_.get(), Clock::Real(), kube_options);
  SIGIL_RETURN_IF_ERROR(s->kube_->EnsureDefaultNamespaces());
  SIGIL_ASSIGN_OR_RETURN(s->policies_, authz::PolicyStore::Open(s->store_.get()));
  vault::VaultApi::Options vault_options;
  vault_options.policies = s->policies_.get();
  vault_options.tokens = s->tokens_.get();
  engines::Mount token_mount;
  token_mount.path = "token/";
  token_mount.type = "token";
  token_mount.description = "token based credentials";
  token_mount.accessor = "auth_token_builtin";
  SIGIL_ASSIGN_OR_RETURN(s->auth_mounts_, engines::MountTable::Open(s->store_.get(), engines::MountTable::Kind::kAuth, {token_mount}));
  vault_options.auth_mounts = s->auth_mounts_.get();
  vault_options.auditor = s->auditor_.get();
  vault_options.version = SIGIL_VERSION;
  s->vault_ = std::make_unique<vault::VaultApi>(Clock::Real(), vault_options);

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
  // 2. The API's worker pool and bookmark thread finish (kube_ reset); they may still answer
  //    through the stopped HTTP server, so it is destroyed only after them.
  // 3. The HTTP server is destroyed: its sessions and routes (which point at the API and at
  //    authentication) go, then authentication.
  // 4. Audit, authorization, the registry, tokens, then the store, the barrier and storage,
  //    bottom last: nothing that points into the store outlives it.
  Stop();
  delay_pool_.join();
  kube_.reset();  // waits for requests on its worker pool
  vault_.reset();  // the same
  http_.reset();
  authentication_.reset();
  auditor_.reset();
  authorizer_.reset();
  policies_.reset();
  auth_mounts_.reset();
  registry_.reset();
  authenticator_.reset();
  tokens_.reset();
  store_.reset();
  barrier_.reset();
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
  // Not ready when storage or the audit trail has stopped after a failed write or fsync
  // (docs/threat-model.md "Storage and audit failures"): both stay so until restart.
  auto ready = [this](const http::Request& req, const http::RequestContext&, http::Responder respond) {
    std::vector<std::pair<std::string, Status>> checks = {{"storage", barrier_->Health()}};
    if (auditor_) checks.emplace_back("audit", auditor_->log()->Health());
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
  r.Handle("/metrics", Authenticated([this](const http::Request& req, const http::RequestContext& ctx, http::Responder respond) {
    authz::Attributes a;
    a.resource_request = false;
    a.verb = "get";
    a.path = "/metrics";
    if (!ctx.identity || !authorizer_->Allows(*ctx.identity, a)) {
      std::string user = ctx.identity ? ctx.identity->user : "system:anonymous";
      return respond(http::ErrorResponse(req, PermissionDeniedError("forbidden: User \"" + user + "\" cannot get path \"/metrics\"")));
    }
    respond(http::MakeResponse(req, http::HttpStatus::ok, "text/plain; version=0.0.4", metrics::Registry::Global().Render()));
  }));
  kube_->Register(&r, [this](http::Handler h) { return Authenticated(std::move(h)); });
  vault_->Register(&r, [this](http::Handler h) { return Authenticated(std::move(h)); });
  // Unknown paths too: an anonymous caller learns nothing about which paths exist.
  r.HandleOthers(Authenticated([](const http::Request& req, const http::RequestContext&, http::Responder respond) {
    respond(http::ErrorResponse(req, NotFoundError("the server could not find the requested resource")));
  }));
  return r;
}

// The HTTP side of core::Authentication: the credential from the request, the identity into the
// handler's context; a refusal answered 401 (or 503), after its throttling delay.
http::Handler SigilServer::Authenticated(http::Handler inner) {
  return [this, inner = std::move(inner)](const http::Request& req, const http::RequestContext& ctx, http::Responder respond) {
    std::optional<auth::CertificateSubject> cert;
    if (ctx.peer) cert = auth::CertificateSubject{ctx.peer->common_name, ctx.peer->organizations, ctx.peer->sha256_hex};
    core::Credentials c;
    bool vault = req.target().starts_with("/v1/");
    std::string vault_bearer;  // "Bearer <X-Vault-Token>"; freed memory is wiped (wipe_on_free.cc)
    if (auto it = req.find(boost::beast::http::field::authorization); it != req.end()) {
      c.authorization_header = std::string_view(it->value().data(), it->value().size());
    }
    if (vault) {
      if (auto it = req.find("X-Vault-Token"); it != req.end() && !it->value().empty()) {
        vault_bearer = "Bearer " + std::string(it->value());
        c.authorization_header = vault_bearer;
      }
    }
    c.certificate = cert ? &*cert : nullptr;
    c.remote = ctx.remote_address;
    c.method = std::string_view(req.method_string().data(), req.method_string().size());
    c.uri = std::string_view(req.target().data(), req.target().size());
    if (vault) {
      c.uri = c.uri.substr(0, c.uri.find('?'));  // Vault clients may put data in the query
      c.refused_code = 403;
    }
    if (auto ua = req.find(boost::beast::http::field::user_agent); ua != req.end()) {
      c.user_agent = std::string_view(ua->value().data(), ua->value().size());
    }
    core::Authenticated who = authentication_->Authenticate(c);
    if (who.identity) {
      http::RequestContext with_identity = ctx;
      with_identity.identity = std::move(who.identity);
      return inner(req, with_identity, std::move(respond));
    }
    if (who.unavailable) return respond(http::ErrorResponse(req, UnavailableError("authentication is unavailable")));
    http::Response res = vault ? http::ErrorResponse(req, PermissionDeniedError("permission denied"))
                               : http::ErrorResponse(req, UnauthenticatedError("Unauthorized"));
    if (!who.warning.empty()) res.insert("Warning", "299 - \"" + who.warning + "\"");
    if (who.delay.count() == 0) return respond(std::move(res));
    auto timer = std::make_shared<boost::asio::steady_timer>(delay_pool_, who.delay);
    timer->async_wait([timer, respond = std::move(respond), res = std::move(res)](boost::system::error_code) mutable {
      respond(std::move(res));
    });
  };
}

Status SigilServer::Start() {
  SIGIL_RETURN_IF_ERROR(http_->Start());
  log::Info("sigil server started", {{"address", config_.http.address}, {"port", http_->bound_port()},
                                     {"dev", config_.dev ? "true" : "false"}, {"seal", seal_->name()}});
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
    new_root_token_.reset();
    std::printf(
        "\nsigil dev server listening on %s\n"
        "Dev mode: storage is in %s and the root key exists only in memory; all data is lost at exit.\n\n"
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
  SIGIL_ASSIGN_OR_RETURN(auto backend, OpenStorage(c, c.data_dir + "/store"));
  SIGIL_ASSIGN_OR_RETURN(auto enc, LoadEncryptionConfig(c));
  auto seal = MakeSeal(c);
  SIGIL_ASSIGN_OR_RETURN(auto b, barrier::Barrier::Open(backend.get(), seal.get(), enc, Clock::Real()));
  SIGIL_ASSIGN_OR_RETURN(uint32_t term, b->Rotate());
  barrier::KeyringInfo info = b->keyring_info();
  std::printf("Rotated the keyring: new writes use term %u. Terms: ", term);
  for (size_t i = 0; i < info.terms.size(); ++i) std::printf("%s%u", i ? ", " : "", info.terms[i].first);
  std::printf(". Values written under older terms still decrypt and read as stale.\n");
  return OkStatus();
}

}  // namespace sigil::server
