// api/kubernetes/reviews.cc: TokenReview and the access reviews (SelfSubjectAccessReview, SelfSubjectRulesReview, SubjectAccessReview).
#include "sigil/api/kubernetes/impl.h"

namespace sigil::kube {

// /apis/authentication.k8s.io[/v1[/selfsubjectreviews|tokenreviews]]
http::Response KubernetesApi::Impl::Authentication(const http::Request& req, const Identity* who) {
  Path p = SplitPath(req.target());
  const auto& s = p.seg;
  if (auto d = GroupDiscovery(req, s, "authentication.k8s.io", AuthnResources(false))) return std::move(*d);
  if (s.size() != 4 || s[2] != "v1" || (s[3] != "selfsubjectreviews" && s[3] != "tokenreviews")) {
    return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
  }
  if (req.method() != http::Verb::post) return Fail(req, MethodNotAllowed());
  auto user_info = [](const Identity& id) {
    Json u = {{"username", id.user}, {"uid", id.uid}, {"groups", id.groups}};
    if (!id.extra.empty()) u["extra"] = id.extra;
    return u;
  };
  if (s[3] == "selfsubjectreviews") {
    // The body carries nothing to read (kubectl sends an empty protobuf or JSON object).
    Json out = {{"kind", "SelfSubjectReview"}, {"apiVersion", "authentication.k8s.io/v1"},
                {"metadata", {{"creationTimestamp", nullptr}}}, {"status", {{"userInfo", who ? user_info(*who) : Json::object()}}}};
    return Reply(req, 201, out);
  }
  auto body = DecodeBody(req);
  if (!body.ok) return Fail(req, body.error);
  const Json& in = body.json;
  if (!in.is_object() || !in.value("spec", Json::object()).is_object() || !in.value("spec", Json::object()).value("token", Json()).is_string()) {
    return Fail(req, Invalid("TokenReview", "", {{FieldError::Type::kRequired, "spec.token", "", ""}}));
  }
  std::string token = in["spec"]["token"].get<std::string>();
  Json status = {{"authenticated", false}};
  if (token_reviewer_) {
    std::string why;
    auto id = token_reviewer_(token, &why);
    if (!id.ok()) {
      status["error"] = "token review failed: " + id.error().message();
    } else if (*id) {
      status = {{"authenticated", true}, {"user", user_info(**id)}};
    } else {
      status["error"] = why.empty() ? "invalid bearer token" : why;
    }
  }
  internal::SecureZero(token.data(), token.size());
  if (in["spec"].contains("audiences")) status["audiences"] = in["spec"]["audiences"];
  return Reply(req, 201, Json{{"kind", "TokenReview"}, {"apiVersion", "authentication.k8s.io/v1"},
                              {"metadata", {{"creationTimestamp", nullptr}}}, {"spec", {{"audiences", in["spec"].value("audiences", Json::array())}}},
                              {"status", status}});
}

// The attributes a review asks about (SubjectAccessReviewSpec's resourceAttributes or
// nonResourceAttributes). Returns false when neither is given.
bool KubernetesApi::Impl::ReviewAttributes(const Json& spec, authz::Attributes* a) {
  auto str = [](const Json& o, const char* k) { return o.contains(k) && o[k].is_string() ? o[k].get<std::string>() : std::string(); };
  if (spec.contains("resourceAttributes") && spec["resourceAttributes"].is_object()) {
    const Json& r = spec["resourceAttributes"];
    a->resource_request = true;
    a->verb = str(r, "verb");
    a->api_group = str(r, "group");
    a->resource = str(r, "resource");
    a->subresource = str(r, "subresource");
    a->namespace_ = str(r, "namespace");
    a->name = str(r, "name");
    return true;
  }
  if (spec.contains("nonResourceAttributes") && spec["nonResourceAttributes"].is_object()) {
    a->resource_request = false;
    a->path = str(spec["nonResourceAttributes"], "path");
    a->verb = str(spec["nonResourceAttributes"], "verb");
    return true;
  }
  return false;
}

// /apis/authorization.k8s.io[/v1[/selfsubjectaccessreviews|selfsubjectrulesreviews|
// subjectaccessreviews]]: kube-apiserver's answers, from the same RBAC decisions requests get.
http::Response KubernetesApi::Impl::Authorization(const http::Request& req, const Identity* who) {
  Path p = SplitPath(req.target());
  const auto& s = p.seg;
  if (auto d = GroupDiscovery(req, s, "authorization.k8s.io", AuthzResources(false))) return std::move(*d);
  static const std::map<std::string, std::string> kKinds = {{"selfsubjectaccessreviews", "SelfSubjectAccessReview"},
                                                            {"selfsubjectrulesreviews", "SelfSubjectRulesReview"},
                                                            {"subjectaccessreviews", "SubjectAccessReview"}};
  if (s.size() != 4 || s[2] != "v1" || !kKinds.count(s[3])) {
    return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
  }
  if (req.method() != http::Verb::post) return Fail(req, MethodNotAllowed());
  const std::string& kind = kKinds.at(s[3]);
  auto body = DecodeBody(req, kind);
  if (!body.ok) return Fail(req, body.error);
  const Json& in = body.json;
  if (!in.is_object() || (in.contains("kind") && in["kind"] != kind) ||
      (in.contains("apiVersion") && in["apiVersion"] != "authorization.k8s.io/v1")) {
    return Fail(req, BadRequest("the body is not an authorization.k8s.io/v1 " + kind));
  }
  Json spec = in.value("spec", Json::object());
  if (!spec.is_object()) return Fail(req, BadRequest("spec must be an object"));
  Json out = {{"kind", kind}, {"apiVersion", "authorization.k8s.io/v1"}, {"metadata", {{"creationTimestamp", nullptr}}}, {"spec", spec}};
  if (authorizer_ == nullptr) {
    return Fail(req, FromStatusMessage(503, "ServiceUnavailable", "authorization is not configured on this server"));
  }
  if (kind == "SelfSubjectRulesReview") {
    std::string ns = spec.value("namespace", "");
    if (!spec.contains("namespace") || !spec["namespace"].is_string()) {
      return Fail(req, Invalid(kind, "", {{FieldError::Type::kRequired, "spec.namespace", "", ""}}));
    }
    Json resource_rules = Json::array(), non_resource_rules = Json::array();
    for (const authz::PolicyRule& r : authorizer_->RulesFor(*who, ns)) {
      if (!r.non_resource_urls.empty()) {
        non_resource_rules.push_back({{"verbs", r.verbs}, {"nonResourceURLs", r.non_resource_urls}});
      } else {
        Json rr = {{"verbs", r.verbs}, {"apiGroups", r.api_groups}, {"resources", r.resources}};
        if (!r.resource_names.empty()) rr["resourceNames"] = r.resource_names;
        resource_rules.push_back(rr);
      }
    }
    out["status"] = {{"resourceRules", resource_rules}, {"nonResourceRules", non_resource_rules}, {"incomplete", false}};
    return Reply(req, 201, out);
  }
  Identity subject;
  if (kind == "SelfSubjectAccessReview") {
    subject = *who;
  } else {
    // SubjectAccessReview: about the user and groups named in the spec (as a webhook
    // authorizer or kube-rbac-proxy asks), never about the caller.
    if (!spec.contains("user") && !spec.contains("groups")) {
      return Fail(req, Invalid(kind, "", {{FieldError::Type::kRequired, "spec.user", "", "at least one of user or group must be specified"}}));
    }
    subject.user = spec.value("user", "");
    subject.uid = spec.value("uid", "");
    if (spec.contains("groups") && spec["groups"].is_array()) {
      for (const Json& g : spec["groups"]) {
        if (g.is_string()) subject.groups.push_back(g.get<std::string>());
      }
    }
  }
  authz::Attributes a;
  if (!ReviewAttributes(spec, &a)) {
    return Fail(req, Invalid(kind, "", {{FieldError::Type::kRequired, "spec.resourceAttributes", "",
                                         "exactly one of nonResourceAttributes or resourceAttributes must be specified"}}));
  }
  bool allowed = authorizer_->Allows(subject, a);
  out["status"] = {{"allowed", allowed}};
  return Reply(req, 201, out);
}

}  // namespace sigil::kube
