#include "sigil/api/vault/api.h"

#include <boost/asio/post.hpp>
#include <chrono>

#include "sigil/api/http/errors.h"
#include "sigil/api/vault/impl.h"
#include "sigil/base/check.h"
#include "sigil/base/logging.h"

namespace sigil::vault {
namespace {

// Root-protected paths (Vault's sys backend's PathsSpecial.Root, and auth/token's): the
// capability alone is not enough, the token also needs sudo on the path.
bool NeedsSudo(std::string_view path, Operation op) {
  static constexpr std::string_view kExact[] = {"sys/audit", "sys/remount", "sys/rotate", "sys/seal", "sys/step-down", "sys/raw"};
  static constexpr std::string_view kPrefixes[] = {"sys/audit/",  "sys/auth/",          "sys/raw/",
                                                   "sys/config/", "sys/plugins/catalog/", "sys/leases/revoke-prefix/",
                                                   "sys/leases/revoke-force/", "sys/leases/lookup/", "sys/revoke-prefix/",
                                                   "sys/revoke-force/", "sys/rotate/",
                                                   "sys/kms-plugin/rotate"};
  for (std::string_view e : kExact) {
    if (path == e) return true;
  }
  for (std::string_view p : kPrefixes) {
    if (path.starts_with(p)) return true;
  }
  if (path == "auth/token/accessors" || path == "auth/token/accessors/") return op == Operation::kList;
  if (path == "auth/token/revoke-orphan") return true;
  return false;
}

std::string Lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

bool VaultApi::Impl::Unauthenticated(std::string_view p) const {
  if (!p.starts_with("auth/") || options_.auth_mounts == nullptr) return false;
  std::optional<engines::Mount> m = options_.auth_mounts->Find(p.substr(5));
  if (!m) return false;
  // "auth/userpass" (the mount without its slash) is shorter than "auth/" + "userpass/".
  std::string_view rest = p.size() > 5 + m->path.size() ? p.substr(5 + m->path.size()) : std::string_view();
  if (m->type == "userpass") return rest.starts_with("login/");
  if (m->type == "kubernetes" || m->type == "approle") return rest == "login";
  return false;
}

core::VaultAccess VaultApi::Impl::AccessFor(const Request& r) const {
  core::VaultAccess a;
  a.path = r.path;
  switch (r.op) {
    case Operation::kRead: a.capability = authz::kCapRead; break;
    case Operation::kList: a.capability = authz::kCapList; break;
    case Operation::kWrite: a.capability = authz::kCapUpdate; break;  // no existence check on these paths
    case Operation::kDelete: a.capability = authz::kCapDelete; break;
    case Operation::kPatch: a.capability = authz::kCapPatch; break;
  }
  // Policy names are lowercased before they are used (as Vault does): the ACL must see the
  // name the request will act on, or PUT sys/policy/ADMIN would slip past a deny on
  // sys/policy/admin.
  for (std::string_view prefix : {std::string_view("sys/policy/"), std::string_view("sys/policies/acl/")}) {
    if (a.path.starts_with(prefix)) {
      for (size_t i = prefix.size(); i < a.path.size(); ++i) a.path[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(a.path[i])));
    }
  }
  // Vault's existence check: a write under a secrets engine needs "create" when it makes
  // something new, "update" when it changes what exists.
  if (r.op == Operation::kWrite && r.path.starts_with("auth/token/roles/") && options_.tokens != nullptr) {
    Result<std::optional<std::string>> role = options_.tokens->GetRole(std::string_view(r.path).substr(17));
    if (role.ok() && !role->has_value()) a.capability = authz::kCapCreate;
  }
  if (r.op == Operation::kWrite) {
    if (std::optional<engines::Mount> m = EngineMount(r.path)) {
      if (std::unique_ptr<engines::SecretsEngine> e = EngineFor(*m, r, nullptr)) {
        Result<std::optional<bool>> exists = e->Exists(EngineRequest(r, *m));
        if (exists.ok() && exists->has_value() && !**exists) a.capability = authz::kCapCreate;
      }
    }
  }
  // Vault's HTTP layer adds the trailing slash to every LIST path before the ACL sees it
  // (LIST kv/app is checked as kv/app/, which "kv/app/*" covers; the ACL also tries the exact
  // path without the slash).
  if (r.op == Operation::kList && !a.path.ends_with("/")) a.path += "/";
  // Both spellings: LIST sys/leases/lookup (without the slash) is the root-protected listing too.
  a.sudo = NeedsSudo(r.path, r.op) || NeedsSudo(a.path, r.op);
  a.unauthenticated = Unauthenticated(r.path);
  return a;
}

Reply VaultApi::Impl::Dispatch(const Request& r, const Identity* who) {
  if (std::optional<Reply> k = SysKeys(r)) return std::move(*k);
  if (std::optional<Reply> p = SysPolicy(r, who)) return std::move(*p);
  if (std::optional<Reply> t = AuthToken(r, who)) return std::move(*t);
  if (std::optional<Reply> a = SysAudit(r)) return std::move(*a);
  if (std::optional<Reply> s = SysAuth(r)) return std::move(*s);
  if (std::optional<Reply> l = SysLeases(r)) return std::move(*l);
  if (std::optional<Reply> m = SysMounts(r)) return std::move(*m);
  if (r.path.starts_with("auth/") && options_.auth_mounts != nullptr) {
    std::optional<engines::Mount> m = options_.auth_mounts->Find(std::string_view(r.path).substr(5));
    if (m && m->type == "userpass") {
      if (std::optional<Reply> u = AuthUserpass(r, *m)) return std::move(*u);
    }
    if (m && m->type == "approle") {
      if (std::optional<Reply> a = AuthAppRole(r, *m)) return std::move(*a);
    }
    if (m && m->type == "kubernetes") {
      if (std::optional<Reply> k = AuthKubernetes(r, *m)) return std::move(*k);
    }
  }
  if (std::optional<engines::Mount> m = EngineMount(r.path)) return Logical(r, *m, who);
  return Error(404, "no handler for route \"" + r.path.substr(0, 256) + "\". route entry not found.");
}

http::Response VaultApi::Impl::Serve(const http::Request& req, const Identity* who, const std::string& remote) {
  core::RequestInfo info;
  info.face = core::Face::kVault;
  info.method = std::string_view(req.method_string().data(), req.method_string().size());
  // The trail shows the path, and each query value as its keyed hash: Vault clients put data in
  // the query (`vault read path k=v`), which Vault's audit devices hash like the body.
  std::string_view target(req.target().data(), req.target().size());
  std::string audit_uri(target.substr(0, target.find('?')));
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    std::string_view rest = target.substr(q + 1);
    char sep = '?';
    while (!rest.empty()) {
      size_t amp = rest.find('&');
      std::string_view kv = rest.substr(0, amp);
      size_t eq = kv.find('=');
      audit_uri += sep;
      audit_uri += std::string(kv.substr(0, eq));
      if (eq != std::string_view::npos) {
        audit_uri += '=';
        audit_uri += options_.auditor ? options_.auditor->Hash(kv.substr(eq + 1)) : std::string("hmac-sha256:");
      }
      sep = '&';
      if (amp == std::string_view::npos) break;
      rest = rest.substr(amp + 1);
    }
  }
  info.uri = audit_uri;
  if (auto ua = req.find(boost::beast::http::field::user_agent); ua != req.end()) {
    info.user_agent = std::string_view(ua->value().data(), ua->value().size());
  }
  info.remote = remote;
  info.caller = who;
  info.subject = who;
  // For the audit policy, a Vault request is a non-resource request at its /v1/ path (so
  // nonResourceURLs rules such as "/v1/*" select it), its verb the lowercased method.
  info.kube.resource_request = false;
  info.kube.verb = Lowercase(info.method);
  info.kube.path = std::string(target.substr(0, target.find('?')));
  info.mutating = req.method() != http::Verb::get && req.method() != http::Verb::head && info.method != "LIST";
  // Vault bodies carry tokens, passwords, policies and secret values: the pipeline records
  // them (at Request level and above) with every string replaced by its keyed hash, as Vault's
  // audit devices do (audit::RedactAllStrings).
  info.request_object = [&req]() -> std::optional<Json> {
    std::string_view text(req.body().data(), req.body().size());
    if (TooDeep(text)) return std::nullopt;
    Json j = Json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    return j;
  };

  Result<Request> decoded = Decode(req);
  std::optional<Reply> refused;
  if (decoded.ok()) {
    decoded->audit_uri = audit_uri;
    decoded->user_agent = std::string(info.user_agent);
    decoded->remote = remote;
    info.vault = AccessFor(*decoded);
  } else {
    info.vault.unauthenticated = true;  // nothing will run: the decoding error is the answer
    refused = errors_.Render(decoded.error(), info);
  }
  std::optional<http::Response> out;
  pipeline_.Run(
      info, errors_,
      [&](core::ReplyFn reply) {
        try {
          reply(Dispatch(*decoded, who));
        } catch (const nlohmann::json::exception& e) {
          log::Warn("vault api: unexpected JSON error", {{"id", e.id}});
          reply(Error(400, "the request could not be processed"));
        }
      },
      [&](std::optional<Reply> r) {
        SIGIL_CHECK(r.has_value());
        out = ToHttp(req, std::move(*r));
      },
      std::move(refused));
  SIGIL_CHECK(out.has_value());
  return std::move(*out);
}

VaultApi::VaultApi(Clock* clock, const Options& options)
    : impl_(std::make_unique<Impl>(clock, options)), limiter_(options.limiter), pool_(static_cast<size_t>(options.workers)) {
  SIGIL_CHECK(options.policies != nullptr);
}

VaultApi::~VaultApi() { pool_.join(); }

http::Response VaultApi::Serve(const http::Request& req, const Identity* who, const std::string& remote) {
  return impl_->Serve(req, who, remote);
}

void VaultApi::Register(http::Router* router, const std::function<http::Handler(http::Handler)>& guard) {
  http::Handler run = [this](const http::Request& req, const http::RequestContext& ctx, http::Responder respond) {
    // A seat among the requests in flight (core/inflight.h), before the request waits for a
    // worker; logins take one too (by address), only the health and seal-status endpoints
    // that load balancers and operators poll take none.
    core::InflightLimiter::Seat seat;
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    if (limiter_ != nullptr && path != "/v1/sys/health" && path != "/v1/sys/seal-status" && path != "/v1/sys/leader") {
      bool mutating = req.method() != http::Verb::get && req.method() != http::Verb::head && req.method_string() != "LIST";
      seat = limiter_->Acquire(mutating, core::InflightLimiter::CallerKey(ctx.identity.get(), ctx.remote_address));
      if (seat == nullptr) {
        http::Response res = http::MakeResponse(req, http::HttpStatus::too_many_requests, "application/json",
                                                R"({"errors":["too many requests in flight; try again later"]})");
        res.set("Retry-After", "1");
        return respond(std::move(res));
      }
    }
    auto copy = std::make_shared<http::Request>(req);  // the connection's buffer is reused once we return
    boost::asio::post(pool_, [this, copy, seat, who = ctx.identity, remote = ctx.remote_address, respond = std::move(respond)] {
      std::optional<http::Response> res;
      try {
        res = impl_->Serve(*copy, who.get(), remote);
      } catch (const std::exception& e) {
        // A defect, not the client's doing; it must not take the worker (and the server) down.
        log::Error("vault api: a request failed unexpectedly", {{"error", e.what()}});
        res = http::ErrorResponse(*copy, InternalError("internal error"));
      }
      respond(std::move(*res));
    });
  };
  // Paths served without a token (logins) bypass authentication; every other one
  // goes through `guard`.
  http::Handler guarded = guard(run);
  router->HandlePrefix("/v1/", [this, run, guarded](const http::Request& req, const http::RequestContext& ctx,
                                                     http::Responder respond) {
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(4, target.find('?') == std::string_view::npos ? std::string_view::npos : target.find('?') - 4);
    if (impl_->Unauthenticated(path)) return run(req, ctx, std::move(respond));
    guarded(req, ctx, std::move(respond));
  });
}

}  // namespace sigil::vault
