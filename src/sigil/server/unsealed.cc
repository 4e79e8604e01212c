#include "sigil/server/unsealed.h"

#include <sys/stat.h>

#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <nlohmann/json.hpp>

#include "sigil/api/http/errors.h"
#include "sigil/api/vault/kubernetes_mount.h"
#include "sigil/base/file.h"
#include "sigil/base/logging.h"
#include "sigil/base/metrics.h"
#include "sigil/crypto/random.h"

#ifndef SIGIL_VERSION
#define SIGIL_VERSION "0.0.0"
#endif

namespace sigil::server {
namespace {

constexpr std::string_view kClusterKey = "/sigil/core/cluster";

// One KMS plugin call in the trail: a non-resource request by the socket's (file-permission
// authorized) caller, at Metadata level at most: the key ID and the caller's uid, never the
// plaintext or the wrapped key.
Status AuditKmsCall(audit::Auditor* auditor, const kms::PluginCall& call) {
  if (auditor == nullptr) return OkStatus();
  static const Identity who{"system:sigil:kms-plugin-client", "", {"system:sigil"}, {}, "unix-socket"};
  std::string verb = call.method == "Encrypt" ? "encrypt" : "decrypt";
  std::string path = "/v2.KeyManagementService/" + call.method;
  audit::Request r{&who, verb, false, "", "", "", "", "", path};
  if (auditor->Decide(r).level == audit::Level::kNone) return OkStatus();
  std::string now = FormatRfc3339(Clock::Real()->Now());
  nlohmann::ordered_json ev = {
      {"kind", "Event"},
      {"apiVersion", "audit.k8s.io/v1"},
      {"level", "Metadata"},
      {"auditID", crypto::RandomUuid()},
      {"stage", "ResponseComplete"},
      {"requestURI", path},
      {"verb", verb},
      {"user", {{"username", who.user}, {"groups", who.groups}}},
      {"sourceIPs", nlohmann::ordered_json::array()},
      {"responseStatus", {{"metadata", nlohmann::ordered_json::object()}, {"code", call.ok ? 200 : 400}}},
      {"requestReceivedTimestamp", now},
      {"stageTimestamp", now},
      {"annotations", {{"sigil.dev/kms-key-id", call.key_id.substr(0, 128)}, {"sigil.dev/kms-uid", call.uid.substr(0, 128)}}}};
  if (!call.ok) ev["responseStatus"]["message"] = call.error.substr(0, 256);
  return auditor->Write({ev});
}

// The audit trail: on by default outside dev mode (every request at Metadata level to
// data_dir/audit/audit.log); in dev mode only when configured. Null when off.
Result<std::unique_ptr<audit::Auditor>> OpenAuditor(const Config& c, store::ObjectStore* store, const std::string& dev_dir) {
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

// Service-account JWTs: the external cluster's (configured keys and issuers) and sigil's own
// (its signing key; each token valid only while its service account exists).
Result<std::optional<auth::ServiceAccountAuthenticator>> ServiceAccounts(
    const Config& c, const auth::ServiceAccountIssuer& own,
    std::function<bool(const std::string&, const std::string&, const std::string&)> still_exists) {
  auth::ServiceAccountConfig sa;
  sa.issuers = c.sa_issuers;
  sa.issuers.push_back(own.issuer());
  sa.audiences = c.sa_audiences;
  if (!sa.audiences.empty()) sa.audiences.push_back(own.issuer());
  sa.own_key_id = own.key_id();
  sa.still_exists = std::move(still_exists);
  if (Status st = sa.keys.AddJwks(own.Jwks().dump()); !st.ok()) return st.WithContext("the service-account signing key");
  for (const std::string& f : c.sa_key_files) {
    SIGIL_ASSIGN_OR_RETURN(std::string pem, file::ReadFile(f, 1 << 20));
    if (Status st = sa.keys.AddPem(pem); !st.ok()) return st.WithContext(f);
  }
  for (const std::string& f : c.sa_jwks_files) {
    SIGIL_ASSIGN_OR_RETURN(std::string jwks, file::ReadFile(f, 1 << 20));
    if (Status st = sa.keys.AddJwks(jwks); !st.ok()) return st.WithContext(f);
  }
  std::optional<auth::ServiceAccountAuthenticator> out;
  out.emplace(std::move(sa), Clock::Real());
  return out;
}

// The cluster's name and id (sys/health, sys/seal-status), made at the first unseal and kept
// behind the barrier, as Vault keeps them.
Status LoadClusterInfo(barrier::Barrier* b, std::string* name, std::string* id) {
  SIGIL_ASSIGN_OR_RETURN(std::optional<barrier::Entry> e, b->Get(kClusterKey));
  if (!e) {
    std::string uuid = crypto::RandomUuid();
    nlohmann::json j = {{"name", "sigil-cluster-" + uuid.substr(0, 8)}, {"id", uuid}};
    barrier::BarrierTxn txn;
    txn.compares.push_back({std::string(kClusterKey), 0});
    txn.ops.push_back(barrier::BarrierOp::Put(std::string(kClusterKey), SecretBytes(j.dump())));
    SIGIL_RETURN_IF_ERROR(b->Commit(std::move(txn)).status());
    SIGIL_ASSIGN_OR_RETURN(e, b->Get(kClusterKey));
    if (!e) return InternalError("the cluster record vanished");
  }
  auto j = nlohmann::json::parse(e->value.view(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("name") || !j["name"].is_string() || !j.contains("id") ||
      !j["id"].is_string()) {
    return DataLossError(std::string(kClusterKey) + " is damaged");
  }
  *name = j["name"].get<std::string>();
  *id = j["id"].get<std::string>();
  return OkStatus();
}

// The lease of a token that expires: it ends by deleting the token (and the tokens made under
// it, which cannot outlive it), unless the token was renewed meanwhile, then at its new expiry.
class TokenLeases final : public leases::Revoker {
 public:
  TokenLeases(auth::TokenStore* tokens, leases::Manager* leases) : tokens_(tokens), leases_(leases) {}
  Result<std::optional<Clock::TimePoint>> Revoke(const leases::Lease& lease, store::SideEffects* also) override {
    std::string key = lease.data.value("token_key", "");
    if (key.empty()) return std::optional<Clock::TimePoint>();
    SIGIL_ASSIGN_OR_RETURN(std::optional<auth::TokenInfo> t, tokens_->RecordAt(key));
    if (!t) {  // revoked already; what it leased goes too (in case a crash came between the two)
      SIGIL_RETURN_IF_ERROR(leases_->RevokeByToken(key).status());
      return std::optional<Clock::TimePoint>();
    }
    if (!lease.requested && t->expires && *t->expires > Clock::Real()->Now()) return std::optional<Clock::TimePoint>(*t->expires);
    // The common case, a token that made nothing: its deletion commits with its lease's (one
    // transaction per expired token). Otherwise the tree goes first, with what it leased.
    SIGIL_ASSIGN_OR_RETURN(bool made, leases_->HasLeasesOf(key));
    if (!made) {
      store::SideEffects mine;
      SIGIL_ASSIGN_OR_RETURN(bool prepared, tokens_->PrepareDeletion(*t, &mine));
      if (prepared) {
        for (auto& c : mine.compares) also->compares.push_back(std::move(c));
        for (auto& p : mine.puts) also->puts.push_back(std::move(p));
        for (auto& d : mine.deletes) also->deletes.push_back(std::move(d));
        return std::optional<Clock::TimePoint>();
      }
    }
    SIGIL_RETURN_IF_ERROR(tokens_->RevokeTree(key));
    return std::optional<Clock::TimePoint>();
  }

 private:
  auth::TokenStore* tokens_;
  leases::Manager* leases_;
};

std::string TokenLeaseId(const auth::TokenInfo& t) {
  return leases::Manager::IdFor(t.path.empty() ? auth::TokenStore::kSigilTokenPath : std::string_view(t.path), t.key);
}

}  // namespace

Result<std::unique_ptr<Unsealed>> Unsealed::Build(const Deps& deps, SecretBytes root_key) {
  const Config& c = *deps.config;
  std::unique_ptr<Unsealed> u(new Unsealed());
  u->deps_ = deps;
  SIGIL_ASSIGN_OR_RETURN(u->barrier_, barrier::Barrier::OpenWithRootKey(deps.backend, std::move(root_key), deps.encryption,
                                                                         Clock::Real()));
  SIGIL_RETURN_IF_ERROR(LoadClusterInfo(u->barrier_.get(), &u->cluster_name_, &u->cluster_id_));
  u->store_ = std::make_unique<store::ObjectStore>(u->barrier_.get());
  SIGIL_ASSIGN_OR_RETURN(u->tokens_, auth::TokenStore::Open(u->store_.get(), Clock::Real()));
  // Every token that expires has a lease, so an expired token is deleted by the server (with
  // what it leased) rather than left in the store; revoking a token ends what it leased.
  u->leases_ = std::make_unique<leases::Manager>(u->store_.get(), Clock::Real(), leases::Manager::Options{});
  u->leases_->Register("token", std::make_shared<TokenLeases>(u->tokens_.get(), u->leases_.get()));
  u->tokens_->SetHooks(auth::TokenStore::Hooks{
      [m = u->leases_.get()](const auth::TokenInfo& t, store::SideEffects* also) {
        leases::Lease l;
        l.id = TokenLeaseId(t);
        l.kind = "token";
        l.data = leases::Json{{"token_key", t.key}};
        l.issued = t.issued;
        l.expires = *t.expires;
        return m->Prepare(&l, also);
      },
      [m = u->leases_.get()](const auth::TokenInfo& t) {
        if (Result<size_t> n = m->RevokeByToken(t.key); !n.ok()) {
          log::Error("leases: what a revoked token leased could not be scheduled for revocation", {{"error", n.error().message()}});
        }
        // Its own lease, unless the lease's revocation is what deleted it.
        if (t.expires && *t.expires > Clock::Real()->Now()) (void)m->RevokeLater(TokenLeaseId(t));
      }});
  SIGIL_ASSIGN_OR_RETURN(u->new_root_token_, u->tokens_->CreateRootOnce());
  std::optional<auth::TokenFile> token_file;
  if (!c.auth_token_file.empty()) {
    SIGIL_ASSIGN_OR_RETURN(token_file, auth::TokenFile::Load(c.auth_token_file));
  }
  SIGIL_ASSIGN_OR_RETURN(u->sa_issuer_, auth::ServiceAccountIssuer::Open(u->store_.get(), c.sa_signing_issuer, Clock::Real()));
  auto still_exists = [u = u.get()](const std::string& ns, const std::string& name, const std::string& uid) {
    if (u->registry_ == nullptr) return false;
    registry::Outcome<registry::Stored> sa = u->registry_->Get(registry::ServiceAccounts(), ns, name);
    return sa.ok() && sa->obj["metadata"].value("uid", "") == uid;
  };
  SIGIL_ASSIGN_OR_RETURN(std::optional<auth::ServiceAccountAuthenticator> service_accounts,
                         ServiceAccounts(c, *u->sa_issuer_, still_exists));
  u->authenticator_ = std::make_unique<auth::Authenticator>(u->tokens_.get(), std::move(token_file), std::move(service_accounts));
  kube::KubernetesApi::Options kube_options;
  // A TokenReview is the token authenticating to whoever asks: a limited-use token spends a use.
  kube_options.token_reviewer = [a = u->authenticator_.get()](std::string_view token, std::string* why) {
    return a->AuthenticateToken(token, why, /*use=*/true);
  };
  kube_options.token_issuer = [t = u->tokens_.get()](const Identity& who, std::chrono::seconds ttl) { return t->Create(who, ttl); };
  kube_options.service_account_issuer = u->sa_issuer_.get();
  SIGIL_ASSIGN_OR_RETURN(u->authorizer_, authz::Authorizer::Open(u->store_.get()));
  kube_options.authorizer = u->authorizer_.get();
  SIGIL_ASSIGN_OR_RETURN(u->auditor_, OpenAuditor(c, u->store_.get(), deps.dev_dir));
  u->authentication_ = std::make_unique<core::Authentication>(u->authenticator_.get(), deps.throttle, u->auditor_.get(),
                                                              Clock::Real());
  kube_options.auditor = u->auditor_.get();
  u->limiter_ = std::make_unique<core::InflightLimiter>(
      core::InflightLimiter::Options{c.max_requests_inflight, c.max_mutating_requests_inflight});
  kube_options.limiter = u->limiter_.get();
  u->registry_ = std::make_unique<registry::Registry>(u->store_.get(), Clock::Real(),
                                                      registry::Registry::Options{c.history_versions});
  u->kube_ = std::make_unique<kube::KubernetesApi>(u->registry_.get(), Clock::Real(), kube_options);
  SIGIL_RETURN_IF_ERROR(u->kube_->EnsureDefaultNamespaces());
  SIGIL_ASSIGN_OR_RETURN(u->policies_, authz::PolicyStore::Open(u->store_.get()));
  vault::VaultApi::Options vault_options;
  vault_options.policies = u->policies_.get();
  vault_options.tokens = u->tokens_.get();
  SIGIL_ASSIGN_OR_RETURN(u->auth_mounts_,
                         engines::MountTable::Open(u->store_.get(), engines::MountTable::Kind::kAuth,
                                                   {engines::Mount{"token/", "token", "token based credentials", "auth_token_builtin"}}));
  vault_options.auth_mounts = u->auth_mounts_.get();
  SIGIL_ASSIGN_OR_RETURN(u->secret_mounts_,
                         engines::MountTable::Open(u->store_.get(), engines::MountTable::Kind::kSecrets,
                                                   {engines::Mount{"sys/", "system", "system endpoints used for control, policy and debugging",
                                                                   "system_builtin"},
                                                    engines::Mount{"kubernetes/", std::string(vault::kKubernetesMountType),
                                                                   "Kubernetes Secrets as KV version 2 (the same objects as /api/v1)",
                                                                   "kubernetes_builtin", "", engines::Json{{"version", "2"}}}}));
  vault_options.secret_mounts = u->secret_mounts_.get();
  // Dynamic and static database credentials: pools shared by every request, revokers and
  // rotations on the lease manager.
  u->database_ = std::make_unique<database::Service>(
      u->secret_mounts_.get(), u->leases_.get(), Clock::Real(),
      [p = u->policies_.get()](std::string_view name) { return p->GeneratePassword(name); });
  vault_options.database = u->database_.get();
  if (c.dev && !u->secret_mounts_->Find("secret/x")) {  // as Vault's dev server: KV version 2 at secret/
    engines::Mount kv;
    kv.path = "secret/";
    kv.type = "kv";
    kv.description = "key/value secret storage";
    kv.options = engines::Json{{"version", "2"}};
    SIGIL_RETURN_IF_ERROR(u->secret_mounts_->Enable(std::move(kv)).status());
  }
  if (!c.kms_plugin_socket.empty()) {
    kms::Plugin::Options po;
    po.socket_path = c.kms_plugin_socket;
    po.rotation_period = c.kms_plugin_rotation_period;
    po.audit = [a = u->auditor_.get()](const kms::PluginCall& call) { return AuditKmsCall(a, call); };
    po.health = [a = u->auditor_.get(), b = u->barrier_.get()]() -> Status {
      SIGIL_RETURN_IF_ERROR(b->Health());
      return a ? a->log()->Health() : OkStatus();
    };
    SIGIL_ASSIGN_OR_RETURN(u->kms_plugin_, kms::Plugin::Start(std::move(po), u->store_.get(), Clock::Real()));
  }
  vault_options.kms_plugin = u->kms_plugin_.get();
  vault_options.auditor = u->auditor_.get();
  vault_options.limiter = u->limiter_.get();
  vault_options.seal = deps.seal;
  vault_options.registry = u->registry_.get();
  vault_options.leases = u->leases_.get();
  vault_options.rbac = u->authorizer_.get();
  u->vault_ = std::make_unique<vault::VaultApi>(Clock::Real(), vault_options);
  u->rotations_ = std::make_unique<SecretRotations>(u->registry_.get(), u->leases_.get(), u->auditor_.get(), Clock::Real());
  SIGIL_RETURN_IF_ERROR(u->rotations_->Start());
  u->BuildRouter();
  u->leases_->Start();
  return u;
}

Unsealed::~Unsealed() {
  // The server has ended every stream of this build and waited for its requests
  // (server/lifecycle.h) before destroying it. Then, each step ends what could still call into
  // the next one down: the faces' worker pools finish (they may still be answering), then
  // authentication, audit, authorization, the registry, tokens, the store, and the barrier
  // (whose keyring and root key are wiped as they are freed) last.
  if (leases_) leases_->Stop();  // revocations in flight finish before anything they use goes
  if (tokens_) tokens_->SetHooks({});  // they point at the lease manager
  rotations_.reset();  // its watch and worker end before the registry and store they use
  kms_plugin_.reset();  // its calls finish (and are audited) before the auditor and barrier go
  kube_.reset();
  vault_.reset();
  router_ = http::Router();
  authentication_.reset();
  auditor_.reset();
  authorizer_.reset();
  policies_.reset();
  auth_mounts_.reset();
  database_.reset();
  secret_mounts_.reset();
  registry_.reset();
  authenticator_.reset();
  leases_.reset();
  tokens_.reset();
  store_.reset();
  barrier_.reset();
}

void Unsealed::BuildRouter() {
  http::Router& r = router_;
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
}

// The HTTP side of core::Authentication: the credential from the request, the identity into the
// handler's context; a refusal answered 401 (or 503), after its throttling delay.
http::Handler Unsealed::Authenticated(http::Handler inner) {
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
    // The wait serves no one: the connection may be shed meanwhile (api/http/types.h).
    if (ctx.waiting) ctx.waiting();
    auto timer = std::make_shared<boost::asio::steady_timer>(*deps_.delay_pool, who.delay);
    timer->async_wait([timer, respond = std::move(respond), res = std::move(res)](boost::system::error_code) mutable {
      respond(std::move(res));
    });
  };
}

Result<std::optional<SecretBytes>> CreateRootToken(storage::Backend* backend, SecretBytes root_key,
                                                   std::shared_ptr<const barrier::EncryptionConfig> encryption) {
  SIGIL_ASSIGN_OR_RETURN(auto b, barrier::Barrier::OpenWithRootKey(backend, std::move(root_key), std::move(encryption),
                                                                    Clock::Real()));
  store::ObjectStore store(b.get());
  SIGIL_ASSIGN_OR_RETURN(auto tokens, auth::TokenStore::Open(&store, Clock::Real()));
  return tokens->CreateRootOnce();
}

}  // namespace sigil::server
