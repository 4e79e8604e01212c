// api/kubernetes/discovery.cc: Discovery (legacy and aggregated) and OpenAPI.
#include "sigil/api/kubernetes/impl.h"
#include "sigil/base/encoding.h"
#include "sigil/crypto/hash.h"

namespace sigil::kube {

// ---- discovery and OpenAPI --------------------------------------------------------------
bool KubernetesApi::Impl::WantsAggregated(const http::Request& req) {
  auto it = req.find(boost::beast::http::field::accept);
  return it != req.end() && std::string_view(it->value()).find("as=APIGroupDiscoveryList") != std::string_view::npos &&
         std::string_view(it->value()).find("v=v2;") != std::string_view::npos;
}

Json KubernetesApi::Impl::SecretsVerbs() {
  return Json::array({"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"});
}

Json KubernetesApi::Impl::NamespaceVerbs() { return Json::array({"create", "delete", "get", "list", "patch", "update", "watch"}); }

http::Response KubernetesApi::Impl::Api(const http::Request& req) {
  if (WantsAggregated(req)) {
    Json resources = Json::array();
    resources.push_back({{"resource", "namespaces"}, {"responseKind", {{"group", ""}, {"version", "v1"}, {"kind", "Namespace"}}},
                         {"scope", "Cluster"}, {"singularResource", "namespace"}, {"verbs", NamespaceVerbs()}, {"shortNames", {"ns"}}});
    resources.push_back({{"resource", "secrets"}, {"responseKind", {{"group", ""}, {"version", "v1"}, {"kind", "Secret"}}},
                         {"scope", "Namespaced"}, {"singularResource", "secret"}, {"verbs", SecretsVerbs()}});
    resources.push_back({{"resource", "serviceaccounts"}, {"responseKind", {{"group", ""}, {"version", "v1"}, {"kind", "ServiceAccount"}}},
                         {"scope", "Namespaced"}, {"singularResource", "serviceaccount"}, {"verbs", SecretsVerbs()}, {"shortNames", {"sa"}},
                         {"subresources", Json::array({{{"subresource", "token"},
                                                        {"responseKind", {{"group", "authentication.k8s.io"}, {"version", "v1"}, {"kind", "TokenRequest"}}},
                                                        {"verbs", {"create"}}}})}});
    Json doc = {{"kind", "APIGroupDiscoveryList"}, {"apiVersion", "apidiscovery.k8s.io/v2"}, {"metadata", Json::object()},
                {"items", Json::array({{{"metadata", {{"name", ""}, {"creationTimestamp", nullptr}}},
                                        {"versions", Json::array({{{"version", "v1"}, {"resources", resources}, {"freshness", "Current"}}})}}})}};
    return Reply(req, 200, doc, kAggregatedContentType);
  }
  return Reply(req, 200, Json{{"kind", "APIVersions"}, {"versions", {"v1"}},
                              {"serverAddressByClientCIDRs", Json::array({{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", ""}}})}});
}

// The groups served under /apis: authentication.k8s.io/v1 (SelfSubjectReview, TokenReview).
Json KubernetesApi::Impl::AuthnResources(bool aggregated) {
  return ReviewResources("authentication.k8s.io", {{"selfsubjectreviews", "SelfSubjectReview"}, {"tokenreviews", "TokenReview"}},
                         aggregated);
}

http::Response KubernetesApi::Impl::Apis(const http::Request& req) {
  if (WantsAggregated(req)) {
    auto item = [](const char* group, Json resources) {
      return Json{{"metadata", {{"name", group}, {"creationTimestamp", nullptr}}},
                  {"versions", Json::array({{{"version", "v1"}, {"resources", std::move(resources)}, {"freshness", "Current"}}})}};
    };
    Json items = Json::array({item("authentication.k8s.io", AuthnResources(true)), item("authorization.k8s.io", AuthzResources(true)),
                              item(kRbacGroup, RbacResources(true))});
    return Reply(req, 200, Json{{"kind", "APIGroupDiscoveryList"}, {"apiVersion", "apidiscovery.k8s.io/v2"},
                                {"metadata", Json::object()}, {"items", items}},
                 kAggregatedContentType);
  }
  return Reply(req, 200, Json{{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", Json::array({GroupDoc("authentication.k8s.io"), GroupDoc("authorization.k8s.io"), GroupDoc(kRbacGroup)})}});
}

Json KubernetesApi::Impl::RbacResources(bool aggregated) {
  Json out = Json::array();
  const Json verbs = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
  for (const registry::Resource* t : registry::RbacResources()) {
    std::string singular = t->plural.substr(0, t->plural.size() - 1);
    if (aggregated) {
      out.push_back({{"resource", t->plural}, {"responseKind", {{"group", kRbacGroup}, {"version", "v1"}, {"kind", t->kind}}},
                     {"scope", t->namespaced ? "Namespaced" : "Cluster"}, {"singularResource", singular}, {"verbs", verbs}});
    } else {
      out.push_back({{"name", t->plural}, {"singularName", singular}, {"namespaced", t->namespaced}, {"kind", t->kind}, {"verbs", verbs}});
    }
  }
  return out;
}

// An API group's entry in /apis (and, with kind and apiVersion, its /apis/<group> document).
Json KubernetesApi::Impl::GroupDoc(const std::string& name) {
  Json v = {{"groupVersion", name + "/v1"}, {"version", "v1"}};
  return Json{{"name", name}, {"versions", Json::array({v})}, {"preferredVersion", v}};
}

// GET /apis/<group> and /apis/<group>/v1 for a served group; nullopt for any other path.
std::optional<http::Response> KubernetesApi::Impl::GroupDiscovery(const http::Request& req, const std::vector<std::string>& s,
                                             const std::string& group, const Json& resources) {
  if (s.size() == 2 || (s.size() == 3 && s[2] == "v1")) {
    if (!IsGet(req)) return Fail(req, MethodNotAllowed());
    if (s.size() == 3) {
      return Reply(req, 200, Json{{"kind", "APIResourceList"}, {"apiVersion", "v1"}, {"groupVersion", group + "/v1"},
                                  {"resources", resources}});
    }
    Json g = GroupDoc(group);
    g["kind"] = "APIGroup";
    g["apiVersion"] = "v1";
    return Reply(req, 200, g);
  }
  return std::nullopt;
}

// The create-only review resources of authentication.k8s.io and authorization.k8s.io.
Json KubernetesApi::Impl::ReviewResources(const std::string& group, std::initializer_list<std::pair<const char*, const char*>> kinds,
                            bool aggregated) {
  Json out = Json::array();
  for (const auto& [plural, kind] : kinds) {
    std::string singular = std::string(plural).substr(0, std::string(plural).size() - 1);
    if (aggregated) {
      out.push_back({{"resource", plural}, {"responseKind", {{"group", group}, {"version", "v1"}, {"kind", kind}}},
                     {"scope", "Cluster"}, {"singularResource", singular}, {"verbs", {"create"}}});
    } else {
      out.push_back({{"name", plural}, {"singularName", singular}, {"namespaced", false}, {"kind", kind}, {"verbs", {"create"}}});
    }
  }
  return out;
}

// ---- authorization.k8s.io/v1: access reviews ---------------------------------------------
Json KubernetesApi::Impl::AuthzResources(bool aggregated) {
  return ReviewResources("authorization.k8s.io",
                         {{"selfsubjectaccessreviews", "SelfSubjectAccessReview"}, {"selfsubjectrulesreviews", "SelfSubjectRulesReview"},
                          {"subjectaccessreviews", "SubjectAccessReview"}},
                         aggregated);
}

http::Response KubernetesApi::Impl::ApiV1(const http::Request& req) {
  Json resources = Json::array();
  resources.push_back({{"name", "namespaces"}, {"singularName", "namespace"}, {"namespaced", false}, {"kind", "Namespace"},
                       {"verbs", NamespaceVerbs()}, {"shortNames", {"ns"}}});
  resources.push_back({{"name", "secrets"}, {"singularName", "secret"}, {"namespaced", true}, {"kind", "Secret"},
                       {"verbs", SecretsVerbs()}});
  resources.push_back({{"name", "serviceaccounts"}, {"singularName", "serviceaccount"}, {"namespaced", true}, {"kind", "ServiceAccount"},
                       {"verbs", SecretsVerbs()}, {"shortNames", {"sa"}}});
  resources.push_back({{"name", "serviceaccounts/token"}, {"singularName", ""}, {"namespaced", true}, {"group", "authentication.k8s.io"},
                       {"version", "v1"}, {"kind", "TokenRequest"}, {"verbs", {"create"}}});
  return Reply(req, 200, Json{{"kind", "APIResourceList"}, {"apiVersion", "v1"}, {"groupVersion", "v1"}, {"resources", resources}});
}

// The minimal OpenAPI v3 kubectl needs per group-version: each kind's PATCH operation with
// the fieldValidation parameter, which tells kubectl the server validates fields itself.
Json KubernetesApi::Impl::OpenApiDoc(const std::string& gv) {
  Json param = {{"name", "fieldValidation"}, {"in", "query"}, {"schema", {{"type", "string"}}},
                {"description", "Strict, Warn or Ignore: how the server treats unknown and duplicate fields"}};
  auto patch = [&](const std::string& group, const std::string& kind) {
    return Json{{"patch", {{"x-kubernetes-group-version-kind", {{"group", group}, {"version", "v1"}, {"kind", kind}}},
                           {"x-kubernetes-action", "patch"}, {"parameters", Json::array({param})}, {"responses", Json::object()}}}};
  };
  Json paths = Json::object();
  if (gv == "api/v1") {
    paths["/api/v1/namespaces/{namespace}/secrets/{name}"] = patch("", "Secret");
    paths["/api/v1/namespaces/{name}"] = patch("", "Namespace");
  } else {
    for (const registry::Resource* t : registry::RbacResources()) {
      std::string path = "/apis/" + std::string(kRbacGroup) + "/v1/" + (t->namespaced ? "namespaces/{namespace}/" : "") + t->plural + "/{name}";
      paths[path] = patch(kRbacGroup, t->kind);
    }
  }
  return Json{{"openapi", "3.0.0"}, {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}}, {"paths", paths},
              {"components", {{"schemas", Json::object()}}}};
}

http::Response KubernetesApi::Impl::OpenApi(const http::Request& req, const std::vector<std::string>& s) {
  if (!IsGet(req)) return Fail(req, MethodNotAllowed());
  const std::string rbac_gv = "apis/" + std::string(kRbacGroup) + "/v1";
  if (s.size() == 2 && s[1] == "v3") {
    Json paths = Json::object();
    for (const std::string& gv : {std::string("api/v1"), rbac_gv}) {
      std::string hash = HexEncode(crypto::Sha256(OpenApiDoc(gv).dump())).substr(0, 32);
      paths[gv] = {{"serverRelativeURL", "/openapi/v3/" + gv + "?hash=" + hash}};
    }
    return Reply(req, 200, Json{{"paths", paths}});
  }
  if (s.size() == 4 && s[1] == "v3" && s[2] == "api" && s[3] == "v1") return Reply(req, 200, OpenApiDoc("api/v1"));
  if (s.size() == 5 && s[1] == "v3" && s[2] == "apis" && s[3] == kRbacGroup && s[4] == "v1") return Reply(req, 200, OpenApiDoc(rbac_gv));
  return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
}

}  // namespace sigil::kube
