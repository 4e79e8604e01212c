// api/kubernetes/sigil_routes.cc: sigil's own routes: tokens, audit hash, Secret versions and rollback.
#include <charconv>

#include "sigil/api/kubernetes/impl.h"
#include "sigil/api/kubernetes/managed_fields.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::kube {

// ---- version history (sigil's own API) -------------------------------------------------------
//   GET  /sigil/v1/namespaces/<ns>/secrets/<name>/versions       the versions, without values
//   GET  /sigil/v1/namespaces/<ns>/secrets/<name>/versions/<n>   one version, with its Secret
//   POST /sigil/v1/namespaces/<ns>/secrets/<name>/rollback       {"version": n}
// POST /sigil/v1/tokens {"user", "uid"?, "groups"?, "ttlSeconds"?} -> 201 {"token", ...}:
// a sigil bearer token for that identity, shown once. Authorized as the non-resource path
// (post; cluster-admin has it) and, because a token for someone is acting as them, only
// when the caller may impersonate that user and each group. Never audited with its body.
http::Response KubernetesApi::Impl::CreateToken(const http::Request& req, const Identity* who) {
  if (req.method() != http::Verb::post) return Fail(req, MethodNotAllowed());
  if (!token_issuer_) return Fail(req, FromStatusMessage(404, "NotFound", "this server does not issue tokens"));
  auto body = DecodeBody(req);
  if (!body.ok) return Fail(req, body.error);
  const Json& in = body.json;
  FieldErrors errs;
  if (!in.is_object()) return Fail(req, BadRequest("the body must be a JSON object"));
  for (const auto& [k, v] : in.items()) {
    if (k != "user" && k != "uid" && k != "groups" && k != "ttlSeconds") errs.push_back({FieldError::Type::kForbidden, k, "", "unknown field"});
  }
  std::string user = in.contains("user") && in["user"].is_string() ? in["user"].get<std::string>() : "";
  if (user.empty()) errs.push_back({FieldError::Type::kRequired, "user", "", ""});
  if (user == "system:anonymous") errs.push_back({FieldError::Type::kInvalid, "user", user, "a token cannot be anonymous"});
  std::vector<std::string> groups;
  if (in.contains("groups")) {
    if (!in["groups"].is_array()) {
      errs.push_back({FieldError::Type::kInvalid, "groups", "", "must be a list of strings"});
    } else {
      for (const Json& g : in["groups"]) {
        if (!g.is_string() || g.get<std::string>().empty()) {
          errs.push_back({FieldError::Type::kInvalid, "groups", "", "must be a list of non-empty strings"});
          break;
        }
        groups.push_back(g.get<std::string>());
      }
    }
  }
  std::optional<std::string> uid;
  if (in.contains("uid")) {
    if (in["uid"].is_string()) {
      uid = in["uid"].get<std::string>();
    } else {
      errs.push_back({FieldError::Type::kInvalid, "uid", "", "must be a string"});
    }
  }
  int64_t ttl = 86400;
  if (in.contains("ttlSeconds")) {
    if (!in["ttlSeconds"].is_number_integer() || in["ttlSeconds"].get<int64_t>() < 1 || in["ttlSeconds"].get<int64_t>() > 31536000) {
      errs.push_back({FieldError::Type::kInvalid, "ttlSeconds", in["ttlSeconds"].dump(), "must be an integer from 1 to 31536000 (a year)"});
    } else {
      ttl = in["ttlSeconds"].get<int64_t>();
    }
  }
  if (!errs.empty()) return Fail(req, Invalid("Token", user, errs));
  // A credential never mints one that escapes its own limits: a limited-use Vault token makes
  // none, and a caller whose credential expires makes tokens that expire no later.
  if (who != nullptr && who->limited_use) {
    return Fail(req, FromStatusMessage(403, "Forbidden", "a limited-use token cannot issue tokens"));
  }
  if (who != nullptr && who->expires) {
    int64_t left = std::chrono::duration_cast<std::chrono::seconds>(*who->expires - clock_->Now()).count();
    if (left < 1) return Fail(req, FromStatusMessage(403, "Forbidden", "the caller's token has expired"));
    ttl = std::min(ttl, left);
  }
  if (authorizer_ != nullptr) {
    if (who == nullptr) return Fail(req, Forbidden(authz::Attributes{"post", false, "", "", "", "", "", "/sigil/v1/tokens"}, who));
    if (auto e = MayActAs(*who, user, groups, uid, {})) return Fail(req, *e);
  }
  Identity id{user, uid.value_or(""), groups, {}, "token"};
  auto token = token_issuer_(id, std::chrono::seconds(ttl));
  if (!token.ok()) return Fail(req, registry::FromStatus(token.error()));
  Json out = {{"kind", "Token"}, {"apiVersion", "sigil.dev/v1"}, {"user", user}, {"groups", groups},
              {"expirationTimestamp", FormatRfc3339(clock_->Now() + std::chrono::seconds(ttl))},
              {"token", std::string(token->view())}};
  if (uid) out["uid"] = *uid;
  http::Response res = Reply(req, 201, out);
  std::string& t = out["token"].get_ref<std::string&>();
  internal::SecureZero(t.data(), t.size());
  return res;
}

// POST /sigil/v1/audit/hash {"value": "..."} -> {"hash": "hmac-sha256:<hex>"}: what the audit
// trail shows for that value (Vault's sys/audit-hash). The request is authorized as the
// non-resource path (post); its body is never audited.
http::Response KubernetesApi::Impl::AuditHash(const http::Request& req) {
  if (req.method() != http::Verb::post) return Fail(req, MethodNotAllowed());
  if (auditor_ == nullptr) return Fail(req, FromStatusMessage(404, "NotFound", "audit is not enabled on this server"));
  auto body = DecodeBody(req);
  if (!body.ok) return Fail(req, body.error);
  if (!body.json.is_object() || !body.json.contains("value") || !body.json["value"].is_string()) {
    return Fail(req, BadRequest("the body must be {\"value\": \"<text>\"}"));
  }
  std::string& v = body.json["value"].get_ref<std::string&>();
  Json out = {{"hash", auditor_->Hash(v)}};
  internal::SecureZero(v.data(), v.size());
  return Reply(req, 200, out);
}

Json KubernetesApi::Impl::VersionSummary(const registry::SecretVersion& v) {
  Json j = {{"version", v.version}, {"operation", v.operation}, {"time", v.time}, {"manager", v.manager},
            {"resourceVersion", std::to_string(v.revision)}, {"deleted", v.deleted}};
  // Set through the Vault face's kubernetes/ mount: a soft-deleted version (values kept), or a
  // destroyed one (values gone).
  if (!v.deleted_at.empty()) j["deletedAt"] = v.deleted_at;
  if (v.destroyed) j["destroyed"] = true;
  if (v.obj) {
    j["uid"] = (*v.obj)["metadata"].value("uid", "");
    j["type"] = v.obj->value("type", "Opaque");
    Json keys = Json::array();
    Json data = v.obj->value("data", Json::object());
    for (const auto& [k, val] : data.items()) keys.push_back(k);
    j["keys"] = keys;
  }
  return j;
}

http::Response KubernetesApi::Impl::ListVersions(const http::Request& req, const std::string& ns, const std::string& name) {
  auto v = registry_->ListVersions(ns, name);
  if (!v.ok()) return Fail(req, v.error());
  if (!v->has_value()) return Fail(req, NotFound("secrets", name));
  const registry::Registry::Versions& versions = **v;
  Json list = {{"kind", "SecretVersionList"}, {"apiVersion", "sigil.dev/v1"},
               {"metadata", {{"namespace", ns}, {"name", name}}}, {"keep", versions.keep}, {"current", nullptr},
               {"versions", Json::array()}};
  if (versions.current) list["current"] = *versions.current;
  for (const registry::SecretVersion& sv : versions.versions) list["versions"].push_back(VersionSummary(sv));
  return Reply(req, 200, list);
}

http::Response KubernetesApi::Impl::GetVersion(const http::Request& req, const std::string& ns, const std::string& name,
                                               const std::string& n) {
  int64_t version = 0;
  auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), version);
  if (ec != std::errc() || p != n.data() + n.size() || version <= 0) {
    return Fail(req, BadRequest("invalid version: \"" + n + "\": a positive integer is expected"));
  }
  auto v = registry_->GetVersion(ns, name, version);
  if (!v.ok()) return Fail(req, v.error());
  if (!v->has_value()) return Fail(req, FromStatusMessage(404, "NotFound", "version " + n + " of secrets \"" + name + "\" not found"));
  Json out = {{"kind", "SecretVersion"}, {"apiVersion", "sigil.dev/v1"}};
  Json summary = VersionSummary(**v);
  for (auto it = summary.begin(); it != summary.end(); ++it) out[it.key()] = it.value();
  if ((*v)->obj) out["object"] = *(*v)->obj;
  return Reply(req, 200, out);
}

http::Response KubernetesApi::Impl::Rotate(const http::Request& req, const std::map<std::string, std::string>& q,
                                           const std::string& ns, const std::string& name) {
  if (std::string e = CheckWriteOptions(q); !e.empty()) return Fail(req, BadRequest(e));
  if (Param(q, "dryRun") == "All") return Fail(req, BadRequest("a rotation cannot be a dry run"));
  std::map<std::string, std::string> wq = q;
  if (Param(wq, "fieldManager").empty()) wq["fieldManager"] = "sigil-rotate";
  registry::WriteOptions o = WriteOptionsFor(registry::Secrets(), req, wq, nullptr, ns);
  o.admit = nullptr;  // a Secret: no escalation to check
  std::optional<Clock::TimePoint> next;
  auto w = registry_->RotateSecret(ns, name, o, /*only_if_due=*/false, &next);
  if (!w.ok()) return Fail(req, w.error());
  // The Secret without its values: rotating is not reading (that takes "get" on the Secret).
  Json answer = w->obj;
  answer.erase("data");
  answer.erase("stringData");
  return Reply(req, 200, answer);
}

// Writes a new version whose data, labels, annotations and immutability are those of version
// `n`; type and uid stay (type cannot change). A deleted Secret is re-created.
http::Response KubernetesApi::Impl::Rollback(const http::Request& req, const std::map<std::string, std::string>& q,
                                             const std::string& ns, const std::string& name) {
  if (std::string e = CheckWriteOptions(q); !e.empty()) return Fail(req, BadRequest(e));
  auto body = DecodeBody(req);
  if (!body.ok) return Fail(req, body.error);
  if (!body.json.is_object() || !body.json.contains("version") || !body.json["version"].is_number_integer() ||
      body.json["version"].get<int64_t>() <= 0) {
    return Fail(req, BadRequest("a rollback body is {\"version\": N} with N a positive integer"));
  }
  std::map<std::string, std::string> wq = q;
  if (Param(wq, "fieldManager").empty()) wq["fieldManager"] = "sigil-rollback";
  registry::WriteOptions o = WriteOptionsFor(registry::Secrets(), req, wq, nullptr, ns);
  o.admit = nullptr;  // a Secret: no escalation to check
  bool created = false;
  auto w = registry_->Rollback(ns, name, body.json["version"].get<int64_t>(), o, &created);
  if (!w.ok()) return Fail(req, w.error());
  return Reply(req, created ? 201 : 200, w->obj);
}

// POST /api/v1/namespaces/NS/serviceaccounts/NAME/token (TokenRequest, authentication.k8s.io/v1;
// `kubectl create token`): a JWT signed with sigil's service-account key for the named service
// account (auth/service_account_issuer.h), as kube-apiserver's TokenRequest REST does
// (k/k pkg/registry/core/serviceaccount/storage/token.go): audiences default to the API's (the
// issuer), expirationSeconds to 3600 and at least 600; binding to another object (a pod, a
// secret) is not offered, since sigil holds no pods. RBAC: create on serviceaccounts/token.
// The answer carries the token: its body is never audited.
http::Response KubernetesApi::Impl::CreateServiceAccountToken(const http::Request& req, const std::map<std::string, std::string>& q,
                                                              const std::string& ns, const std::string& name, const Identity*) {
  if (sa_issuer_ == nullptr) return Fail(req, FromStatusMessage(404, "NotFound", "this server does not issue service-account tokens"));
  if (std::string why = CheckWriteOptions(q); !why.empty()) return Fail(req, BadRequest(why));
  Json in = Json::object();
  if (!req.body().empty()) {
    auto body = DecodeBody(req, "TokenRequest");
    if (!body.ok) return Fail(req, body.error);
    in = body.json;
  }
  if (!in.is_object()) return Fail(req, BadRequest("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: the body must be an object"));
  Json spec = in.value("spec", Json::object());
  if (spec.is_null()) spec = Json::object();
  if (!spec.is_object()) return Fail(req, BadRequest("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: spec must be an object"));
  FieldErrors errs;
  std::vector<std::string> audiences;
  if (spec.contains("audiences") && !spec["audiences"].is_null()) {
    if (!spec["audiences"].is_array()) return Fail(req, BadRequest("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: spec.audiences must be a list of strings"));
    for (const Json& a : spec["audiences"]) {
      if (!a.is_string()) return Fail(req, BadRequest("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: spec.audiences must be a list of strings"));
      audiences.push_back(a.get<std::string>());
    }
  }
  if (audiences.empty()) audiences = {sa_issuer_->issuer()};
  int64_t ttl = 3600;
  if (spec.contains("expirationSeconds") && !spec["expirationSeconds"].is_null()) {
    if (!spec["expirationSeconds"].is_number_integer()) {
      return Fail(req, BadRequest("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: spec.expirationSeconds must be an integer"));
    }
    ttl = spec["expirationSeconds"].get<int64_t>();
    if (ttl < 600) {
      errs.push_back({FieldError::Type::kInvalid, "spec.expirationSeconds", std::to_string(ttl), "may not specify a duration less than 10 minutes"});
    } else if (ttl > (int64_t{1} << 32)) {
      errs.push_back({FieldError::Type::kTooLong, "spec.expirationSeconds", "", "may not specify a duration larger than 2^32 seconds"});
    }
  }
  if (spec.contains("boundObjectRef") && !spec["boundObjectRef"].is_null()) {
    errs.push_back({FieldError::Type::kForbidden, "spec.boundObjectRef", "", "binding a token to another object is not supported by sigil"});
  }
  if (!errs.empty()) return Fail(req, Invalid("TokenRequest.authentication.k8s.io", name, errs));
  registry::Outcome<registry::Stored> sa = registry_->Get(registry::ServiceAccounts(), ns, name);
  if (!sa.ok()) return Fail(req, sa.error());
  std::string uid = sa->obj["metadata"].value("uid", "");
  auto issued = sa_issuer_->Issue(ns, name, uid, audiences, std::chrono::seconds(ttl));
  if (!issued.ok()) return Fail(req, registry::FromStatus(issued.error()));
  Json out = {{"kind", "TokenRequest"},
              {"apiVersion", "authentication.k8s.io/v1"},
              {"metadata", {{"name", name}, {"namespace", ns}, {"creationTimestamp", Now()}}},
              {"spec", {{"audiences", audiences}, {"expirationSeconds", ttl}, {"boundObjectRef", nullptr}}},
              {"status", {{"token", std::string(issued->token.view())}, {"expirationTimestamp", FormatRfc3339(issued->expires)}}}};
  http::Response res = Reply(req, 201, out);
  std::string& t = out["status"]["token"].get_ref<std::string&>();
  internal::SecureZero(t.data(), t.size());
  return res;
}

// GET /.well-known/openid-configuration and /openid/v1/jwks: the issuer's discovery document
// and its keys, as kube-apiserver serves them (k/k pkg/serviceaccount/openidmetadata.go), so
// other systems can verify the tokens sigil signs. RBAC: get on these non-resource paths
// (kube-apiserver grants them to service accounts through system:service-account-issuer-discovery).
http::Response KubernetesApi::Impl::OpenIdConfiguration(const http::Request& req) {
  if (!IsGet(req)) return Fail(req, MethodNotAllowed());
  if (sa_issuer_ == nullptr) return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
  std::string issuer = sa_issuer_->issuer();
  while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
  Json doc = {{"issuer", sa_issuer_->issuer()},
              {"jwks_uri", issuer + "/openid/v1/jwks"},
              {"response_types_supported", {"id_token"}},
              {"subject_types_supported", {"public"}},
              {"id_token_signing_alg_values_supported", {"ES256"}}};
  http::Response res = Reply(req, 200, doc);
  res.set(boost::beast::http::field::cache_control, "public, max-age=3600");
  return res;
}

http::Response KubernetesApi::Impl::OpenIdJwks(const http::Request& req) {
  if (!IsGet(req)) return Fail(req, MethodNotAllowed());
  if (sa_issuer_ == nullptr) return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
  http::Response res = Reply(req, 200, Json(sa_issuer_->Jwks()), "application/jwk-set+json");
  res.set(boost::beast::http::field::cache_control, "public, max-age=3600");
  return res;
}

}  // namespace sigil::kube
