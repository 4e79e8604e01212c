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

}  // namespace sigil::kube
