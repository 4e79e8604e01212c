// api/vault/auth_kubernetes.cc: Vault's Kubernetes auth method (auth/<mount>/...): config (the
// service-account token signing keys, as PEM keys or a JWKS; an issuer to require), roles that
// bind service-account names and namespaces (globs) to policies, and login with a
// service-account JWT. sigil verifies the JWT locally, as its Kubernetes face verifies
// service-account tokens (auth/service_account.h: signature, exp, nbf, the sub and
// kubernetes.io claims), and never calls a TokenReview API (Vault calls one; docs/vault-api.md).
#include <algorithm>
#include <set>

#include "sigil/api/vault/impl.h"
#include "sigil/auth/service_account.h"

namespace sigil::vault {
namespace {

using engines::GlobMatch;

bool AnyGlob(const Json& list, std::string_view s) {
  if (!list.is_array()) return false;
  return std::any_of(list.begin(), list.end(), [&](const Json& g) { return g.is_string() && GlobMatch(g.get<std::string>(), s); });
}

bool ValidName(std::string_view n) {
  if (n.empty() || n.size() > 128 || n == "." || n == "..") return false;
  return std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; });
}

Json RoleView(const Json& r) {
  Json policies = r.value("token_policies", Json::array());
  return Json{{"bound_service_account_names", r.value("bound_service_account_names", Json::array())},
              {"bound_service_account_namespaces", r.value("bound_service_account_namespaces", Json::array())},
              {"audience", r.value("audience", "")},
              {"alias_name_source", "serviceaccount_uid"},
              {"token_policies", policies},
              {"policies", policies},
              {"token_ttl", r.value("token_ttl", int64_t{0})},
              {"ttl", r.value("token_ttl", int64_t{0})},
              {"token_max_ttl", r.value("token_max_ttl", int64_t{0})},
              {"max_ttl", r.value("token_max_ttl", int64_t{0})},
              {"token_type", "default"}};
}

}  // namespace

std::optional<Reply> VaultApi::Impl::AuthKubernetes(const Request& r, const engines::Mount& mount) {
  engines::Storage storage = options_.auth_mounts->StorageFor(mount);
  std::string rest = MountRest(r.path, mount);
  auto fail = [this](const Status& st) {
    if (st.code() == StatusCode::kInvalidArgument) return Error(400, st.message());
    return errors_.Render(st, core::RequestInfo{});
  };
  auto load = [&storage](const std::string& key) -> Result<std::optional<std::pair<Json, int64_t>>> {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, storage.Get(key));
    if (!o) return std::optional<std::pair<Json, int64_t>>();
    Json j = Json::parse(o->doc.view(), nullptr, false);
    if (!j.is_object()) return DataLossError("a stored kubernetes auth record is malformed");
    return std::optional<std::pair<Json, int64_t>>(std::make_pair(std::move(j), o->revision));
  };
  auto save = [&storage](const std::string& key, const Json& doc, const std::optional<std::pair<Json, int64_t>>& cur) {
    return storage.Put(key, SecretBytes(doc.dump()), cur ? std::optional<int64_t>(cur->second) : std::nullopt).status();
  };

  if (rest == "config") {
    if (r.op == Operation::kRead) {
      Result<std::optional<std::pair<Json, int64_t>>> c = load("config");
      if (!c.ok()) return fail(c.error());
      if (!*c) return NotFound();
      const Json& j = (*c)->first;
      return Envelope(Json{{"kubernetes_host", j.value("kubernetes_host", "")},
                           {"kubernetes_ca_cert", j.value("kubernetes_ca_cert", "")},
                           {"pem_keys", j.value("pem_keys", Json::array())},
                           {"jwks", j.value("jwks", "")},
                           {"issuer", j.value("issuer", "")},
                           {"disable_iss_validation", j.value("disable_iss_validation", true)},
                           {"disable_local_ca_jwt", true}});
    }
    if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
    Json cfg = Json::object();
    auto pem = ListField(r.body, "pem_keys");
    auto jwks = StringField(r.body, "jwks");
    auto issuer = StringField(r.body, "issuer");
    auto host = StringField(r.body, "kubernetes_host");
    auto ca = StringField(r.body, "kubernetes_ca_cert");
    auto no_iss = BoolField(r.body, "disable_iss_validation");
    for (const Status& st : {pem.status(), jwks.status(), issuer.status(), host.status(), ca.status(), no_iss.status()}) {
      if (!st.ok()) return fail(st);
    }
    // Every key must load now, so a login never meets a configuration that cannot work.
    crypto::JwtKeySet keys;
    // A list field splits on commas, which PEM does not contain; a single PEM string also works.
    std::vector<std::string> pems = pem->value_or(std::vector<std::string>{});
    for (const std::string& k : pems) {
      if (Status st = keys.AddPem(k); !st.ok()) return Error(400, "invalid pem_keys: " + st.message());
    }
    if (*jwks && !(*jwks)->empty()) {
      if (Status st = keys.AddJwks(**jwks); !st.ok()) return Error(400, "invalid jwks: " + st.message());
    }
    if (keys.size() == 0) {
      return Error(400, "pem_keys or jwks must be set: sigil verifies service-account tokens with the cluster's signing keys "
                        "and does not call a TokenReview API");
    }
    cfg["pem_keys"] = pems;
    cfg["jwks"] = jwks->value_or("");
    cfg["issuer"] = issuer->value_or("");
    cfg["kubernetes_host"] = host->value_or("");
    cfg["kubernetes_ca_cert"] = ca->value_or("");
    // Vault validates the issuer only when asked (disable_iss_validation defaults to true).
    cfg["disable_iss_validation"] = no_iss->value_or(cfg["issuer"] == "");
    Result<std::optional<std::pair<Json, int64_t>>> cur = load("config");
    if (!cur.ok()) return fail(cur.error());
    if (Status st = save("config", cfg, *cur); !st.ok()) return fail(st);
    return NoContent();
  }

  if (rest == "role" || rest == "role/") {
    if (r.op != Operation::kList) return Error(405, "unsupported operation");
    Result<std::vector<std::string>> names = storage.List("role/");
    if (!names.ok()) return fail(names.error());
    if (names->empty()) return NotFound();
    return Envelope(Json{{"keys", *names}});
  }

  if (rest.starts_with("role/")) {
    std::string name = rest.substr(5);
    if (!ValidName(name)) return Error(400, "invalid role name");
    if (r.op == Operation::kRead) {
      Result<std::optional<std::pair<Json, int64_t>>> role = load("role/" + name);
      if (!role.ok()) return fail(role.error());
      if (!*role) return NotFound();
      return Envelope(RoleView((*role)->first));
    }
    if (r.op == Operation::kDelete) {
      Status st = storage.Delete("role/" + name);
      if (!st.ok()) return fail(st);
      return NoContent();
    }
    if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
    if (std::optional<Reply> no = RefuseUnsupported(r.body, {"token_bound_cidrs", "bound_service_account_namespace_selector", "token_num_uses", "token_period", "period", "token_no_default_policy", "token_explicit_max_ttl"})) return std::move(*no);
    Result<std::optional<std::pair<Json, int64_t>>> cur = load("role/" + name);
    if (!cur.ok()) return fail(cur.error());
    Json role = *cur ? (*cur)->first : Json::object();
    auto names = ListField(r.body, "bound_service_account_names");
    auto namespaces = ListField(r.body, "bound_service_account_namespaces");
    auto audience = StringField(r.body, "audience");
    auto policies = ListField(r.body, "token_policies");
    if (policies.ok() && !*policies) policies = ListField(r.body, "policies");
    auto ttl = DurationField(r.body, "token_ttl");
    if (ttl.ok() && !*ttl) ttl = DurationField(r.body, "ttl");
    auto max = DurationField(r.body, "token_max_ttl");
    if (max.ok() && !*max) max = DurationField(r.body, "max_ttl");
    for (const Status& st : {names.status(), namespaces.status(), audience.status(), policies.status(), ttl.status(), max.status()}) {
      if (!st.ok()) return fail(st);
    }
    if (*names) role["bound_service_account_names"] = **names;
    if (*namespaces) role["bound_service_account_namespaces"] = **namespaces;
    if (*audience) role["audience"] = **audience;
    if (*policies) {
      std::set<std::string> set;
      for (const std::string& p : **policies) {
        if (!p.empty()) set.insert(authz::PolicyStore::Lower(p));
      }
      role["token_policies"] = std::vector<std::string>(set.begin(), set.end());
    }
    if (*ttl) role["token_ttl"] = (*ttl)->count();
    if (*max) role["token_max_ttl"] = (*max)->count();
    if (role.value("bound_service_account_names", Json::array()).empty()) {
      return Error(400, "\"bound_service_account_names\" can not be empty");
    }
    if (role.value("bound_service_account_namespaces", Json::array()).empty()) {
      return Error(400, "\"bound_service_account_namespaces\" can not be empty");
    }
    if (Status st = save("role/" + name, role, *cur); !st.ok()) return fail(st);
    return NoContent();
  }

  if (rest == "login") {
    if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
    auto role_name = StringField(r.body, "role");
    auto jwt = StringField(r.body, "jwt");
    if (!role_name.ok()) return fail(role_name.error());
    if (!jwt.ok()) return fail(jwt.error());
    if (!*role_name || (*role_name)->empty()) return Error(400, "missing role");
    if (!*jwt || (*jwt)->empty()) return Error(400, "missing jwt");
    if (!ValidName(**role_name)) return Error(400, "invalid role name \"" + (*role_name)->substr(0, 64) + "\"");
    Result<std::optional<std::pair<Json, int64_t>>> role = load("role/" + **role_name);
    if (!role.ok()) return fail(role.error());
    if (!*role) return Error(400, "invalid role name \"" + **role_name + "\"");
    Result<std::optional<std::pair<Json, int64_t>>> cfg = load("config");
    if (!cfg.ok()) return fail(cfg.error());
    if (!*cfg) return Error(400, "could not load backend configuration");
    const Json& c = (*cfg)->first;
    const Json& ro = (*role)->first;
    auth::ServiceAccountConfig sa;
    for (const Json& k : c.value("pem_keys", Json::array())) {
      if (k.is_string()) (void)sa.keys.AddPem(k.get<std::string>());
    }
    if (std::string jw = c.value("jwks", ""); !jw.empty()) (void)sa.keys.AddJwks(jw);
    std::string issuer = c.value("issuer", "");
    sa.any_issuer = c.value("disable_iss_validation", true) || issuer.empty();
    if (!issuer.empty()) sa.issuers = {issuer};
    std::string audience = ro.value("audience", "");
    sa.any_audience = audience.empty();
    if (!audience.empty()) sa.audiences = {audience};
    auth::ServiceAccountAuthenticator verifier(std::move(sa), clock_);
    Result<Identity> id = verifier.Authenticate(**jwt);
    if (!id.ok()) return Error(403, "permission denied");
    // sub is system:serviceaccount:<ns>:<name> (checked by the verifier).
    std::string sub = id->user.substr(std::string_view("system:serviceaccount:").size());
    std::string ns = sub.substr(0, sub.find(':'));
    std::string name = sub.substr(sub.find(':') + 1);
    if (!AnyGlob(ro.value("bound_service_account_names", Json::array()), name)) {
      return Error(403, "service account name not authorized");
    }
    if (!AnyGlob(ro.value("bound_service_account_namespaces", Json::array()), ns)) {
      return Error(403, "namespace not authorized");
    }
    return IssueLoginToken(ro,
                           {{"role", **role_name},
                            {"service_account_name", name},
                            {"service_account_namespace", ns},
                            {"service_account_secret_name", ""},
                            {"service_account_uid", id->uid}},
                           mount.path.substr(0, mount.path.size() - 1) + "-" + ns + "-" + name, "auth/" + mount.path + "login", mount);
  }
  return Error(404, "unsupported path");
}

}  // namespace sigil::vault
