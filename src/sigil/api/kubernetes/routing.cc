// api/kubernetes/routing.cc: Routing: which handler serves a path and method; responses.
#include "sigil/api/kubernetes/impl.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::kube {

// Go's strconv.ParseBool, which kube-apiserver uses for query booleans (clients send
// "true", "True", "1": the Python client sends "True").
bool KubernetesApi::Impl::ParseBool(const std::string& v) {
  return v == "1" || v == "t" || v == "T" || v == "true" || v == "True" || v == "TRUE";
}

bool KubernetesApi::Impl::WantsPretty(const http::Request& req) {
  // The query is parsed only when it may hold the parameter (every answer asks this).
  if (req.target().find("pretty") != std::string_view::npos) {
    if (std::string v = Param(ParseQuery(req.target()), "pretty"); !v.empty()) return ParseBool(v);
  }
  std::string_view ua = req[boost::beast::http::field::user_agent];
  return ua.starts_with("curl") || ua.starts_with("Wget") || ua.starts_with("Mozilla/5.0");
}

bool KubernetesApi::Impl::IsWatch(const http::Request& req) {
  return req.method() == http::Verb::get &&
         (ParseBool(Param(ParseQuery(req.target()), "watch")) || req.target().starts_with("/api/v1/watch/") ||
          req.target().starts_with("/apis/rbac.authorization.k8s.io/v1/watch/"));
}

std::string KubernetesApi::Impl::Now() const { return FormatRfc3339(clock_->Now()); }

http::Response KubernetesApi::Impl::Reply(const http::Request& req, int code, const Json& body, const std::string& ct,
                     const std::vector<std::string>& warnings) {
  std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  http::Response res = http::MakeResponse(req, static_cast<http::HttpStatus>(code), ct, text);
  internal::SecureZero(text.data(), text.size());
  for (const std::string& w : warnings) {
    res.insert("Warning", "299 - " + Json(w).dump());
  }
  return res;
}

http::Response KubernetesApi::Impl::Fail(const http::Request& req, const ApiError& e) { return Reply(req, e.code, e.ToJson()); }

bool KubernetesApi::Impl::WantsTable(const http::Request& req) {
  auto it = req.find(boost::beast::http::field::accept);
  return it != req.end() && std::string_view(it->value()).find("as=Table") != std::string_view::npos;
}

http::Response KubernetesApi::Impl::Route(const http::Request& req, const Identity* who) {
  Path p = SplitPath(req.target());
  auto q = ParseQuery(req.target());
  const auto& s = p.seg;
  if (p.bad) return Fail(req, BadRequest("invalid path"));
  if (s.size() == 1 && s[0] == "api") return IsGet(req) ? Api(req) : Fail(req, MethodNotAllowed());
  if (s.size() == 1 && s[0] == "apis") return IsGet(req) ? Apis(req) : Fail(req, MethodNotAllowed());
  if (s.size() == 2 && s[0] == "api" && s[1] == "v1") return IsGet(req) ? ApiV1(req) : Fail(req, MethodNotAllowed());
  if (!s.empty() && s[0] == "openapi") return OpenApi(req, s);
  if (s.size() == 2 && s[0] == ".well-known" && s[1] == "openid-configuration") return OpenIdConfiguration(req);
  if (s.size() == 3 && s[0] == "openid" && s[1] == "v1" && s[2] == "jwks") return OpenIdJwks(req);
  if (!s.empty() && s[0] == "sigil") return SigilRoute(req, q, s, who);
  if (s.size() >= 2 && s[0] == "apis" && s[1] == kRbacGroup) return RbacRoute(req, q, s, who);
  if (s.size() < 3 || s[0] != "api" || s[1] != "v1") return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
  // /api/v1/secrets, /api/v1/serviceaccounts (all namespaces)
  if (s.size() == 3 && (s[2] == "secrets" || s[2] == "serviceaccounts")) {
    const registry::Resource& t = s[2] == "secrets" ? registry::Secrets() : registry::ServiceAccounts();
    return req.method() == http::Verb::get ? ListObjects(t, req, q, "") : Fail(req, MethodNotAllowed());
  }
  if (s[2] != "namespaces") return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
  if (s.size() == 3) {
    if (req.method() == http::Verb::get) return ListNamespaces(req, q);
    if (req.method() == http::Verb::post) return CreateNamespace(req, q);
    return Fail(req, MethodNotAllowed());
  }
  const std::string& ns = s[3];
  if (s.size() == 4) {
    if (req.method() == http::Verb::get) return GetNamespace(req, ns);
    if (req.method() == http::Verb::delete_) return DeleteNamespace(req, ns);
    if (req.method() == http::Verb::put || req.method() == http::Verb::patch) return WriteNamespace(req, q, ns);
    return Fail(req, MethodNotAllowed());
  }
  const registry::Resource* t = s[4] == "secrets" ? &registry::Secrets() : s[4] == "serviceaccounts" ? &registry::ServiceAccounts() : nullptr;
  bool token = t != nullptr && IsServiceAccount(*t) && s.size() == 7 && s[6] == "token";
  if (t == nullptr || (s.size() > 6 && !token)) {
    return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
  }
  if (s.size() == 5) return CollectionRoute(*t, req, q, ns, who);
  const std::string& name = s[5];
  if (name == "." || name == "..") return Fail(req, BadRequest("name may not be \"" + name + "\""));
  if (token) return req.method() == http::Verb::post ? CreateServiceAccountToken(req, q, ns, name, who) : Fail(req, MethodNotAllowed());
  return ObjectRoute(*t, req, q, ns, name, who);
}

http::Response KubernetesApi::Impl::CollectionRoute(const registry::Resource& t, const http::Request& req, const std::map<std::string, std::string>& q,
                               const std::string& ns, const Identity* who) {
  if (req.method() == http::Verb::get) return ListObjects(t, req, q, ns);
  if (req.method() == http::Verb::post) return CreateObject(t, req, q, ns, who);
  if (req.method() == http::Verb::delete_) return DeleteCollection(t, req, q, ns);
  return Fail(req, MethodNotAllowed());
}

http::Response KubernetesApi::Impl::ObjectRoute(const registry::Resource& t, const http::Request& req, const std::map<std::string, std::string>& q,
                           const std::string& ns, const std::string& name, const Identity* who) {
  switch (req.method()) {
    case http::Verb::get: return GetObject(t, req, ns, name);
    case http::Verb::put: return UpdateObject(t, who, req, q, ns, name);
    case http::Verb::patch: return PatchObject(t, who, req, q, ns, name);
    case http::Verb::delete_: return DeleteObject(t, req, q, ns, name);
    default: return Fail(req, MethodNotAllowed());
  }
}

// /apis/rbac.authorization.k8s.io[/v1[/...]]: discovery, then clusterroles and
// clusterrolebindings at the cluster scope, roles and rolebindings in namespaces (and listed
// across all of them).
http::Response KubernetesApi::Impl::RbacRoute(const http::Request& req, const std::map<std::string, std::string>& q, const std::vector<std::string>& s,
                         const Identity* who) {
  auto not_found = [&] { return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource")); };
  if (auto d = GroupDiscovery(req, s, kRbacGroup, RbacResources(false))) return std::move(*d);
  if (s[2] != "v1") return not_found();
  if (s[3] == "namespaces") {
    if (s.size() < 6 || s.size() > 7) return not_found();
    const registry::Resource* t = registry::RbacResource(s[5]);
    if (t == nullptr || !t->namespaced) return not_found();
    if (s.size() == 6) return CollectionRoute(*t, req, q, s[4], who);
    return ObjectRoute(*t, req, q, s[4], s[6], who);
  }
  const registry::Resource* t = registry::RbacResource(s[3]);
  if (t == nullptr || s.size() > 5) return not_found();
  if (t->namespaced) {  // /apis/rbac.authorization.k8s.io/v1/roles: every namespace's, read only
    if (s.size() != 4) return not_found();
    return req.method() == http::Verb::get ? ListObjects(*t, req, q, "") : Fail(req, MethodNotAllowed());
  }
  if (s.size() == 4) return CollectionRoute(*t, req, q, "", who);
  return ObjectRoute(*t, req, q, "", s[4], who);
}

bool KubernetesApi::Impl::IsGet(const http::Request& req) { return req.method() == http::Verb::get; }

http::Response KubernetesApi::Impl::SigilRoute(const http::Request& req, const std::map<std::string, std::string>& q,
                          const std::vector<std::string>& s, const Identity* who) {
  if (s.size() == 4 && s[1] == "v1" && s[2] == "audit" && s[3] == "hash") return AuditHash(req);
  if (s.size() == 3 && s[1] == "v1" && s[2] == "tokens") return CreateToken(req, who);
  if (s.size() < 7 || s.size() > 8 || s[1] != "v1" || s[2] != "namespaces" || s[4] != "secrets") {
    return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
  }
  const std::string &ns = s[3], &name = s[5], &what = s[6];
  if (name == "." || name == "..") return Fail(req, BadRequest("name may not be \"" + name + "\""));
  if (what == "versions" && s.size() == 7) return IsGet(req) ? ListVersions(req, ns, name) : Fail(req, MethodNotAllowed());
  if (what == "versions" && s.size() == 8) return IsGet(req) ? GetVersion(req, ns, name, s[7]) : Fail(req, MethodNotAllowed());
  if (what == "rotate" && s.size() == 7) {
    return req.method() == http::Verb::post ? Rotate(req, q, ns, name) : Fail(req, MethodNotAllowed());
  }
  if (what == "rollback" && s.size() == 7) {
    return req.method() == http::Verb::post ? Rollback(req, q, ns, name) : Fail(req, MethodNotAllowed());
  }
  return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
}

}  // namespace sigil::kube
