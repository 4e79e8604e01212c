#include "sigil/api/kubernetes/protobuf.h"

#include "sigil/base/clock.h"
#include "sigil/base/encoding.h"
#include "sigil/proto/authorization.pb.h"
#include "sigil/proto/core.pb.h"
#include "sigil/proto/rbac.pb.h"
#include "sigil/proto/runtime.pb.h"

namespace sigil::kube {
namespace {

constexpr std::string_view kMagic("k8s\0", 4);

std::string TimeString(const k8s::core::Time& t) {
  return FormatRfc3339(Clock::TimePoint(std::chrono::seconds(t.seconds())));
}

Json RuleToJson(const k8s::rbac::PolicyRule& r) {
  auto list = [](const auto& field) {
    Json a = Json::array();
    for (const std::string& v : field) a.push_back(v);
    return a;
  };
  Json j = {{"verbs", list(r.verbs())}};
  if (r.apigroups_size() > 0) j["apiGroups"] = list(r.apigroups());
  if (r.resources_size() > 0) j["resources"] = list(r.resources());
  if (r.resourcenames_size() > 0) j["resourceNames"] = list(r.resourcenames());
  if (r.nonresourceurls_size() > 0) j["nonResourceURLs"] = list(r.nonresourceurls());
  return j;
}

Json SelectorToJson(const k8s::rbac::LabelSelector& s) {
  Json j = Json::object();
  if (!s.matchlabels().empty()) {
    j["matchLabels"] = Json::object();
    for (const auto& [k, v] : s.matchlabels()) j["matchLabels"][k] = v;
  }
  for (const auto& e : s.matchexpressions()) {
    Json values = Json::array();
    for (const std::string& v : e.values()) values.push_back(v);
    j["matchExpressions"].push_back({{"key", e.key()}, {"operator", e.operator_()}, {"values", values}});
  }
  return j;
}

Json MetaToJson(const k8s::core::ObjectMeta& m) {
  Json j = Json::object();
  // Go's protobuf encoder emits empty strings; they mean "unset", as in JSON's omitempty.
  if (!m.name().empty()) j["name"] = m.name();
  if (!m.generatename().empty()) j["generateName"] = m.generatename();
  if (!m.namespace_().empty()) j["namespace"] = m.namespace_();
  if (!m.uid().empty()) j["uid"] = m.uid();
  if (!m.resourceversion().empty()) j["resourceVersion"] = m.resourceversion();
  if (m.has_creationtimestamp() && m.creationtimestamp().seconds() != 0) j["creationTimestamp"] = TimeString(m.creationtimestamp());
  if (!m.labels().empty()) {
    Json l = Json::object();
    for (const auto& [k, v] : m.labels()) l[k] = v;
    j["labels"] = l;
  }
  if (!m.annotations().empty()) {
    Json a = Json::object();
    for (const auto& [k, v] : m.annotations()) a[k] = v;
    j["annotations"] = a;
  }
  if (m.ownerreferences_size() > 0) {
    Json refs = Json::array();
    for (const auto& r : m.ownerreferences()) {
      Json o = {{"apiVersion", r.apiversion()}, {"kind", r.kind()}, {"name", r.name()}, {"uid", r.uid()}};
      if (r.has_controller()) o["controller"] = r.controller();
      if (r.has_blockownerdeletion()) o["blockOwnerDeletion"] = r.blockownerdeletion();
      refs.push_back(o);
    }
    j["ownerReferences"] = refs;
  }
  if (m.finalizers_size() > 0) {
    Json f = Json::array();
    for (const auto& s : m.finalizers()) f.push_back(s);
    j["finalizers"] = f;
  }
  return j;
}

}  // namespace

Result<Json> DecodeProtobufObject(std::string_view body, std::string_view expected_kind) {
  if (!body.starts_with(kMagic)) return InvalidArgumentError("protobuf body does not start with the k8s magic bytes");
  k8s::runtime::Unknown unknown;
  if (!unknown.ParseFromArray(body.data() + kMagic.size(), static_cast<int>(body.size() - kMagic.size()))) {
    return InvalidArgumentError("protobuf body is not a valid runtime.Unknown");
  }
  const std::string& api = unknown.typemeta().apiversion();
  const std::string& kind = unknown.typemeta().kind();
  bool authz = kind == "SelfSubjectAccessReview" || kind == "SelfSubjectRulesReview";
  bool rbac = kind == "Role" || kind == "ClusterRole" || kind == "RoleBinding" || kind == "ClusterRoleBinding";
  bool authn = kind == "TokenRequest";
  std::string want_api = authz   ? "authorization.k8s.io/v1"
                         : rbac  ? "rbac.authorization.k8s.io/v1"
                         : authn ? "authentication.k8s.io/v1"
                                 : "v1";
  if (api != want_api || kind != expected_kind) {
    return InvalidArgumentError("protobuf body holds " + api + "/" + kind + ", expected " + want_api + "/" + std::string(expected_kind));
  }
  Json j = {{"apiVersion", want_api}, {"kind", kind}};
  if (kind == "SelfSubjectAccessReview") {
    k8s::authorization::SelfSubjectAccessReview r;
    if (!r.ParseFromString(unknown.raw())) return InvalidArgumentError("protobuf body is not a valid SelfSubjectAccessReview");
    Json spec = Json::object();
    if (r.spec().has_resourceattributes()) {
      const auto& ra = r.spec().resourceattributes();
      spec["resourceAttributes"] = {{"namespace", ra.namespace_()}, {"verb", ra.verb()}, {"group", ra.group()},
                                    {"version", ra.version()}, {"resource", ra.resource()}, {"subresource", ra.subresource()},
                                    {"name", ra.name()}};
    }
    if (r.spec().has_nonresourceattributes()) {
      spec["nonResourceAttributes"] = {{"path", r.spec().nonresourceattributes().path()},
                                       {"verb", r.spec().nonresourceattributes().verb()}};
    }
    j["spec"] = spec;
    return j;
  }
  if (kind == "SelfSubjectRulesReview") {
    k8s::authorization::SelfSubjectRulesReview r;
    if (!r.ParseFromString(unknown.raw())) return InvalidArgumentError("protobuf body is not a valid SelfSubjectRulesReview");
    j["spec"] = {{"namespace", r.spec().namespace_()}};
    return j;
  }
  if (kind == "Role" || kind == "ClusterRole") {
    k8s::rbac::ClusterRole r;  // a Role's fields are a prefix of a ClusterRole's
    if (!r.ParseFromString(unknown.raw())) return InvalidArgumentError("protobuf body is not a valid " + kind);
    if (kind == "Role" && r.has_aggregationrule()) return InvalidArgumentError("protobuf body is not a valid Role");
    j["metadata"] = MetaToJson(r.metadata());
    j["rules"] = Json::array();
    for (const auto& rule : r.rules()) j["rules"].push_back(RuleToJson(rule));
    if (r.has_aggregationrule()) {
      Json selectors = Json::array();
      for (const auto& sel : r.aggregationrule().clusterroleselectors()) selectors.push_back(SelectorToJson(sel));
      j["aggregationRule"] = {{"clusterRoleSelectors", selectors}};
    }
    return j;
  }
  if (kind == "RoleBinding" || kind == "ClusterRoleBinding") {
    k8s::rbac::RoleBinding b;  // the two have the same fields and numbers
    if (!b.ParseFromString(unknown.raw())) return InvalidArgumentError("protobuf body is not a valid " + kind);
    j["metadata"] = MetaToJson(b.metadata());
    Json subjects = Json::array();
    for (const auto& sub : b.subjects()) {
      Json o = {{"kind", sub.kind()}, {"name", sub.name()}};
      if (!sub.apigroup().empty()) o["apiGroup"] = sub.apigroup();  // omitempty, as kube-apiserver
      if (!sub.namespace_().empty()) o["namespace"] = sub.namespace_();
      subjects.push_back(o);
    }
    if (!subjects.empty()) j["subjects"] = subjects;
    j["roleRef"] = {{"apiGroup", b.roleref().apigroup()}, {"kind", b.roleref().kind()}, {"name", b.roleref().name()}};
    return j;
  }
  if (kind == "Secret") {
    k8s::core::Secret s;
    if (!s.ParseFromString(unknown.raw())) return InvalidArgumentError("protobuf body is not a valid v1.Secret");
    j["metadata"] = MetaToJson(s.metadata());
    if (!s.data().empty()) {
      Json d = Json::object();
      for (const auto& [k, v] : s.data()) d[k] = Base64Encode(v);
      j["data"] = d;
    }
    if (!s.stringdata().empty()) {
      Json d = Json::object();
      for (const auto& [k, v] : s.stringdata()) d[k] = v;
      j["stringData"] = d;
    }
    if (!s.type().empty()) j["type"] = s.type();
    if (s.has_immutable()) j["immutable"] = s.immutable();
    // The decoded message held secret values in protobuf's own strings: clear them now.
    for (auto& [k, v] : *s.mutable_data()) internal::SecureZero(v.data(), v.size());
    for (auto& [k, v] : *s.mutable_stringdata()) internal::SecureZero(v.data(), v.size());
    std::string* raw = unknown.mutable_raw();
    internal::SecureZero(raw->data(), raw->size());
    return j;
  }
  if (kind == "Namespace") {
    k8s::core::Namespace n;
    if (!n.ParseFromString(unknown.raw())) return InvalidArgumentError("protobuf body is not a valid v1.Namespace");
    j["metadata"] = MetaToJson(n.metadata());
    return j;
  }
  if (kind == "ServiceAccount") {
    k8s::core::ServiceAccount sa;
    if (!sa.ParseFromString(unknown.raw())) return InvalidArgumentError("protobuf body is not a valid v1.ServiceAccount");
    j["metadata"] = MetaToJson(sa.metadata());
    if (sa.secrets_size() > 0) {
      Json refs = Json::array();
      for (const auto& r : sa.secrets()) {
        Json ref = Json::object();
        if (r.has_kind()) ref["kind"] = r.kind();
        if (r.has_namespace_()) ref["namespace"] = r.namespace_();
        if (r.has_name()) ref["name"] = r.name();
        if (r.has_uid()) ref["uid"] = r.uid();
        if (r.has_apiversion()) ref["apiVersion"] = r.apiversion();
        if (r.has_resourceversion()) ref["resourceVersion"] = r.resourceversion();
        if (r.has_fieldpath()) ref["fieldPath"] = r.fieldpath();
        refs.push_back(ref);
      }
      j["secrets"] = refs;
    }
    if (sa.imagepullsecrets_size() > 0) {
      Json refs = Json::array();
      for (const auto& r : sa.imagepullsecrets()) refs.push_back(Json{{"name", r.name()}});
      j["imagePullSecrets"] = refs;
    }
    if (sa.has_automountserviceaccounttoken()) j["automountServiceAccountToken"] = sa.automountserviceaccounttoken();
    return j;
  }
  if (kind == "TokenRequest") {
    k8s::core::TokenRequest t;
    if (!t.ParseFromString(unknown.raw())) return InvalidArgumentError("protobuf body is not a valid authentication.k8s.io/v1.TokenRequest");
    j["metadata"] = MetaToJson(t.metadata());
    Json spec = Json::object();
    if (t.spec().audiences_size() > 0) spec["audiences"] = Json(std::vector<std::string>(t.spec().audiences().begin(), t.spec().audiences().end()));
    if (t.spec().has_expirationseconds()) spec["expirationSeconds"] = t.spec().expirationseconds();
    if (t.spec().has_boundobjectref()) {
      const auto& b = t.spec().boundobjectref();
      spec["boundObjectRef"] = {{"kind", b.kind()}, {"apiVersion", b.apiversion()}, {"name", b.name()}, {"uid", b.uid()}};
    }
    j["spec"] = spec;
    return j;
  }
  return InvalidArgumentError("protobuf bodies of kind " + kind + " are not served");
}

}  // namespace sigil::kube
