// api/kubernetes/discovery.cc: Discovery (legacy and aggregated) and OpenAPI.
#include "sigil/api/kubernetes/impl.h"
#include "sigil/api/kubernetes/openapi.h"
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

// OpenAPI per group-version (v3) and for everything (v2): the schemas of every served kind
// (openapi.h), and the PATCH operation of each kind with the fieldValidation parameter, which
// tells kubectl the server validates fields itself.
namespace {

struct PatchPath {
  std::string path, group, kind;
};

std::vector<PatchPath> PatchPaths(const std::string& gv) {
  std::vector<PatchPath> out;
  if (gv == "api/v1" || gv.empty()) {
    out.push_back({"/api/v1/namespaces/{namespace}/secrets/{name}", "", "Secret"});
    out.push_back({"/api/v1/namespaces/{namespace}/serviceaccounts/{name}", "", "ServiceAccount"});
    out.push_back({"/api/v1/namespaces/{name}", "", "Namespace"});
  }
  if (gv == "apis/" + std::string(kRbacGroup) + "/v1" || gv.empty()) {
    for (const registry::Resource* t : registry::RbacResources()) {
      out.push_back({"/apis/" + std::string(kRbacGroup) + "/v1/" + (t->namespaced ? "namespaces/{namespace}/" : "") + t->plural + "/{name}",
                     kRbacGroup, t->kind});
    }
  }
  return out;
}

}  // namespace

Json KubernetesApi::Impl::OpenApiDoc(const std::string& gv) {
  Json param = {{"name", "fieldValidation"}, {"in", "query"}, {"schema", {{"type", "string"}}},
                {"description", "Strict, Warn or Ignore: how the server treats unknown and duplicate fields"}};
  Json paths = Json::object();
  for (const PatchPath& p : PatchPaths(gv)) {
    paths[p.path] = {{"patch", {{"x-kubernetes-group-version-kind", {{"group", p.group}, {"version", "v1"}, {"kind", p.kind}}},
                                {"x-kubernetes-action", "patch"}, {"parameters", Json::array({param})}, {"responses", Json::object()}}}};
  }
  return Json{{"openapi", "3.0.0"}, {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}}, {"paths", paths},
              {"components", {{"schemas", openapi::SchemasV3(gv)}}}};
}

// Swagger 2.0, as kube-apiserver's /openapi/v2: every definition, and the PATCH operations.
Json KubernetesApi::Impl::OpenApiV2Doc() {
  Json paths = Json::object();
  for (const PatchPath& p : PatchPaths("")) {
    Json param = {{"name", "fieldValidation"}, {"in", "query"}, {"type", "string"}, {"uniqueItems", true},
                  {"description", "Strict, Warn or Ignore: how the server treats unknown and duplicate fields"}};
    paths[p.path] = {{"patch", {{"x-kubernetes-group-version-kind", {{"group", p.group}, {"version", "v1"}, {"kind", p.kind}}},
                                {"x-kubernetes-action", "patch"}, {"parameters", Json::array({param})},
                                {"responses", {{"200", {{"description", "OK"}}}}}}}};
  }
  return Json{{"swagger", "2.0"}, {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}}, {"paths", paths},
              {"definitions", openapi::DefinitionsV2()}};
}

http::Response KubernetesApi::Impl::OpenApi(const http::Request& req, const std::vector<std::string>& s) {
  if (!IsGet(req)) return Fail(req, MethodNotAllowed());
  if (s.size() == 2 && s[1] == "v2") {
    // JSON only. client-go asks for the protobuf form alone (and reads nothing else); 406 makes
    // it fall back to what it does without a v2 document, as with kube-apiserver versions that
    // served none.
    auto accept = req.find(boost::beast::http::field::accept);
    std::string_view a = accept == req.end() ? std::string_view() : std::string_view(accept->value());
    if (!a.empty() && a.find("json") == std::string_view::npos && a.find("*/*") == std::string_view::npos) {
      return Fail(req, FromStatusMessage(406, "NotAcceptable", "only application/json is served at /openapi/v2"));
    }
    return Reply(req, 200, OpenApiV2Doc());
  }
  if (s.size() == 2 && s[1] == "v3") {
    Json paths = Json::object();
    for (const std::string& gv : openapi::GroupVersions()) {
      std::string hash = HexEncode(crypto::Sha256(OpenApiDoc(gv).dump())).substr(0, 32);
      paths[gv] = {{"serverRelativeURL", "/openapi/v3/" + gv + "?hash=" + hash}};
    }
    return Reply(req, 200, Json{{"paths", paths}});
  }
  if (s.size() >= 3 && s[1] == "v3") {
    std::string gv;
    for (size_t i = 2; i < s.size(); ++i) gv += (i > 2 ? "/" : "") + s[i];
    const auto& gvs = openapi::GroupVersions();
    if (std::find(gvs.begin(), gvs.end(), gv) != gvs.end()) return Reply(req, 200, OpenApiDoc(gv));
  }
  return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
}

}  // namespace sigil::kube
