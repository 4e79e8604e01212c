#include "sigil/api/kubernetes/openapi.h"

#include <functional>
#include <map>
#include <set>

namespace sigil::kube::openapi {
namespace {

// ---- the declarative table ----------------------------------------------------------------
//
// A field's type, in a small notation: "string", "boolean", "integer:int32", "integer:int64",
// "byte" (base64 bytes), "object" (free-form), "@x.Name" (a schema, x one of the prefixes
// below), "[]T" (a list of T), "{}T" (a map from strings to T).

struct Field {
  Field(std::string n, std::string t, std::string d, Json ext = Json::object())
      : name(std::move(n)), type(std::move(t)), description(std::move(d)), extensions(std::move(ext)) {}
  std::string name;
  std::string type;
  std::string description;
  Json extensions;  // x-kubernetes-* of this field
};

struct Schema {
  Schema(std::string n, std::string d, std::vector<Field> f, std::vector<std::string> req = {}, std::string gvk = "",
         Json ext = Json::object(), std::string scalar = "")
      : name(std::move(n)), description(std::move(d)), fields(std::move(f)), required(std::move(req)),
        group_version_kind(std::move(gvk)), extensions(std::move(ext)), scalar_format(std::move(scalar)) {}
  std::string name;  // short form: "core.Secret"
  std::string description;
  std::vector<Field> fields;
  std::vector<std::string> required;
  std::string group_version_kind;  // "group/version/Kind" ("/v1/Secret" for the core group)
  Json extensions;
  std::string scalar_format;  // a string schema with this format (meta.Time) instead of an object
};

const std::map<std::string, std::string>& Prefixes() {
  static const std::map<std::string, std::string> p = {
      {"meta", "io.k8s.apimachinery.pkg.apis.meta.v1."}, {"core", "io.k8s.api.core.v1."},
      {"rbac", "io.k8s.api.rbac.v1."},                   {"authn", "io.k8s.api.authentication.v1."},
      {"authz", "io.k8s.api.authorization.v1."}};
  return p;
}

std::string FullName(const std::string& short_name) {
  size_t dot = short_name.find('.');
  return Prefixes().at(short_name.substr(0, dot)) + short_name.substr(dot + 1);
}

const Json kAtomicList = {{"x-kubernetes-list-type", "atomic"}};
const Json kAtomicMap = {{"x-kubernetes-map-type", "atomic"}};

Field ApiVersion() {
  return {"apiVersion", "string", "The schema version of this object (group/version, or just the version for the core group)."};
}
Field Kind() { return {"kind", "string", "The kind of this object, in CamelCase; the server sets it from the endpoint."}; }
Field Metadata() { return {"metadata", "@meta.ObjectMeta", "The object's name, namespace, labels, annotations and server-kept fields."}; }

std::vector<Schema> Table() {
  std::vector<Schema> t;
  // ---- meta.k8s.io
  t.push_back({"meta.Time", "A point in time, RFC 3339 in UTC with second precision.", {}, {}, "", Json::object(), "date-time"});
  t.push_back({"meta.FieldsV1", "The set of fields a manager owns, in the structured-merge-diff encoding.", {}});
  t.push_back({"meta.ManagedFieldsEntry", "Which fields one manager owns, and through which operation it set them.",
               {{"apiVersion", "string", "The version of the object the fields are described in."},
                {"fieldsType", "string", "How the fields are encoded; only FieldsV1."},
                {"fieldsV1", "@meta.FieldsV1", "The owned fields."},
                {"manager", "string", "Who owns the fields (the field manager)."},
                {"operation", "string", "Apply or Update: how the fields came to be owned."},
                {"subresource", "string", "The subresource the fields were written through, if any."},
                {"time", "@meta.Time", "When the manager last changed one of its fields."}}});
  t.push_back({"meta.OwnerReference", "An object this one depends on; deleting the owner may delete this object.",
               {{"apiVersion", "string", "The owner's API version."},
                {"blockOwnerDeletion", "boolean", "Whether the owner's deletion waits for this object."},
                {"controller", "boolean", "Whether the owner is this object's managing controller."},
                {"kind", "string", "The owner's kind."},
                {"name", "string", "The owner's name."},
                {"uid", "string", "The owner's uid."}},
               {"apiVersion", "kind", "name", "uid"}, "", kAtomicMap});
  t.push_back({"meta.ObjectMeta", "Metadata every stored object carries.",
               {{"annotations", "{}string", "Unstructured key-value data kept with the object; not for selecting."},
                {"creationTimestamp", "@meta.Time", "When the object was created; set by the server, read-only."},
                {"deletionGracePeriodSeconds", "integer:int64", "Seconds the object is given to end gracefully once deleted."},
                {"deletionTimestamp", "@meta.Time", "When the object's deletion was requested; set by the server."},
                {"finalizers", "[]string", "What must finish before the object is removed from storage.",
                 {{"x-kubernetes-list-type", "set"}, {"x-kubernetes-patch-strategy", "merge"}}},
                {"generateName", "string", "A prefix from which the server makes a unique name when name is empty."},
                {"generation", "integer:int64", "A sequence number of changes to the desired state."},
                {"labels", "{}string", "Key-value pairs for organising and selecting objects."},
                {"managedFields", "[]@meta.ManagedFieldsEntry", "Which manager owns which fields (server-side apply).", kAtomicList},
                {"name", "string", "The object's name, unique within its namespace (or cluster-wide) and kind."},
                {"namespace", "string", "The namespace the object lives in; empty for cluster-scoped kinds."},
                {"ownerReferences", "[]@meta.OwnerReference", "Objects this one depends on.",
                 {{"x-kubernetes-list-map-keys", {"uid"}}, {"x-kubernetes-list-type", "map"}, {"x-kubernetes-patch-merge-key", "uid"},
                  {"x-kubernetes-patch-strategy", "merge"}}},
                {"resourceVersion", "string", "An opaque version of the object, for optimistic concurrency and watches."},
                {"selfLink", "string", "Deprecated and never set."},
                {"uid", "string", "A unique id for this object for all time; set by the server."}}});
  t.push_back({"meta.LabelSelectorRequirement", "One condition on a label: key, operator and values.",
               {{"key", "string", "The label key the condition is about."},
                {"operator", "string", "In, NotIn, Exists or DoesNotExist."},
                {"values", "[]string", "The values for In and NotIn; empty for Exists and DoesNotExist.", kAtomicList}},
               {"key", "operator"}});
  t.push_back({"meta.LabelSelector", "A query over labels; all its conditions must hold. An empty selector selects everything.",
               {{"matchExpressions", "[]@meta.LabelSelectorRequirement", "Conditions on labels.", kAtomicList},
                {"matchLabels", "{}string", "Labels that must have exactly these values."}},
               {}, "", kAtomicMap});
  // ---- core/v1
  t.push_back({"core.Secret", "Holds a small amount of sensitive data: passwords, tokens, keys. sigil keeps every value encrypted "
                              "and every version in its history.",
               {ApiVersion(),
                {"data", "{}byte", "The secret data, base64-encoded in JSON; keys are letters, digits, '-', '_' and '.'."},
                {"immutable", "boolean", "When true, the data can no longer change (delete and recreate instead)."},
                Kind(),
                Metadata(),
                {"stringData", "{}string", "Write-only plain-text values, merged into data on write (they win on conflict)."},
                {"type", "string", "What the data is for (Opaque, kubernetes.io/tls, ...); some types require keys."}},
               {}, "/v1/Secret"});
  t.push_back({"core.NamespaceSpec", "What a namespace should be.",
               {{"finalizers", "[]string", "What must finish before the namespace is removed.", kAtomicList}}});
  t.push_back({"core.NamespaceStatus", "What a namespace is.",
               {{"phase", "string", "Active, or Terminating while its contents are deleted."}}});
  t.push_back({"core.Namespace", "A scope for names: objects in different namespaces may share a name.",
               {ApiVersion(), Kind(), Metadata(),
                {"spec", "@core.NamespaceSpec", "What the namespace should be."},
                {"status", "@core.NamespaceStatus", "What the namespace is; kept by the server."}},
               {}, "/v1/Namespace"});
  t.push_back({"core.ObjectReference", "A reference to another object.",
               {{"apiVersion", "string", "The referent's API version."},
                {"fieldPath", "string", "A field within the referent, when the reference is to part of it."},
                {"kind", "string", "The referent's kind."},
                {"name", "string", "The referent's name."},
                {"namespace", "string", "The referent's namespace."},
                {"resourceVersion", "string", "The referent's version this reference was made for."},
                {"uid", "string", "The referent's uid."}},
               {}, "", kAtomicMap});
  t.push_back({"core.LocalObjectReference", "A reference to an object in the same namespace, by name.",
               {{"name", "string", "The referent's name."}}, {}, "", kAtomicMap});
  t.push_back({"core.ServiceAccount", "An identity for processes. Tokens for it come from its token subresource (TokenRequest).",
               {ApiVersion(),
                {"automountServiceAccountToken", "boolean", "Whether pods using this account get a token mounted by default."},
                {"imagePullSecrets", "[]@core.LocalObjectReference", "Secrets used to pull images for pods using this account.",
                 kAtomicList},
                Kind(),
                Metadata(),
                {"secrets", "[]@core.ObjectReference", "Secrets associated with this account (legacy).",
                 {{"x-kubernetes-list-map-keys", {"name"}}, {"x-kubernetes-list-type", "map"}, {"x-kubernetes-patch-merge-key", "name"},
                  {"x-kubernetes-patch-strategy", "merge"}}}},
               {}, "/v1/ServiceAccount"});
  // ---- authentication.k8s.io/v1
  t.push_back({"authn.BoundObjectReference", "An object a token is bound to (sigil binds none).",
               {{"apiVersion", "string", "The object's API version."},
                {"kind", "string", "Pod, Secret or Node."},
                {"name", "string", "The object's name."},
                {"uid", "string", "The object's uid."}}});
  t.push_back({"authn.TokenRequestSpec", "What token to make.",
               {{"audiences", "[]string", "Who the token is for; defaults to the API's own audience.", kAtomicList},
                {"boundObjectRef", "@authn.BoundObjectReference", "An object the token lives and dies with."},
                {"expirationSeconds", "integer:int64", "How long the token is valid; at least 600, default 3600."}},
               {"audiences"}});
  t.push_back({"authn.TokenRequestStatus", "The token that was made.",
               {{"expirationTimestamp", "@meta.Time", "When the token expires."},
                {"token", "string", "The token itself (a JWT)."}},
               {"token", "expirationTimestamp"}});
  t.push_back({"authn.TokenRequest", "Asks for a token for a service account (POST .../serviceaccounts/NAME/token).",
               {ApiVersion(), Kind(), Metadata(),
                {"spec", "@authn.TokenRequestSpec", "What token to make."},
                {"status", "@authn.TokenRequestStatus", "The token; filled in by the server."}},
               {"spec"}, "authentication.k8s.io/v1/TokenRequest"});
  t.push_back({"authn.UserInfo", "Who a credential identifies.",
               {{"extra", "{}[]string", "Further facts about the user (e.g. a token's credential id)."},
                {"groups", "[]string", "The groups the user is in.", kAtomicList},
                {"uid", "string", "A unique id for the user."},
                {"username", "string", "The user's name."}}});
  t.push_back({"authn.TokenReviewSpec", "The token to check.",
               {{"audiences", "[]string", "Audiences the token must be valid for; defaults to the API's.", kAtomicList},
                {"token", "string", "The bearer token."}}});
  t.push_back({"authn.TokenReviewStatus", "Whether the token authenticates, and as whom.",
               {{"audiences", "[]string", "The audiences the token is valid for.", kAtomicList},
                {"authenticated", "boolean", "Whether the token is valid."},
                {"error", "string", "Why it is not, when it is not."},
                {"user", "@authn.UserInfo", "Whom the token identifies."}}});
  t.push_back({"authn.TokenReview", "Checks a bearer token and says whom it identifies.",
               {ApiVersion(), Kind(), Metadata(),
                {"spec", "@authn.TokenReviewSpec", "The token to check."},
                {"status", "@authn.TokenReviewStatus", "The answer; filled in by the server."}},
               {"spec"}, "authentication.k8s.io/v1/TokenReview"});
  t.push_back({"authn.SelfSubjectReviewStatus", "Who the caller is.", {{"userInfo", "@authn.UserInfo", "The caller's identity."}}});
  t.push_back({"authn.SelfSubjectReview", "Says who the caller is (kubectl auth whoami).",
               {ApiVersion(), Kind(), Metadata(), {"status", "@authn.SelfSubjectReviewStatus", "The answer."}},
               {}, "authentication.k8s.io/v1/SelfSubjectReview"});
  // ---- authorization.k8s.io/v1
  t.push_back({"authz.ResourceAttributes", "A request on a resource, as RBAC sees it.",
               {{"group", "string", "The API group; empty for the core group."},
                {"name", "string", "The object's name; empty for every object."},
                {"namespace", "string", "The namespace; empty for cluster scope or every namespace."},
                {"resource", "string", "The resource (plural)."},
                {"subresource", "string", "The subresource, if any."},
                {"verb", "string", "get, list, watch, create, update, patch, delete, ..."},
                {"version", "string", "The API version."}}});
  t.push_back({"authz.NonResourceAttributes", "A request on a path that is not a resource.",
               {{"path", "string", "The URL path."}, {"verb", "string", "The HTTP verb in lower case."}}});
  t.push_back({"authz.SubjectAccessReviewSpec", "Who asks to do what. Exactly one of the attributes is set.",
               {{"extra", "{}[]string", "The user's extra facts."},
                {"groups", "[]string", "The user's groups.", kAtomicList},
                {"nonResourceAttributes", "@authz.NonResourceAttributes", "A request on a non-resource path."},
                {"resourceAttributes", "@authz.ResourceAttributes", "A request on a resource."},
                {"uid", "string", "The user's uid."},
                {"user", "string", "The user's name."}}});
  t.push_back({"authz.SubjectAccessReviewStatus", "Whether the request would be allowed.",
               {{"allowed", "boolean", "Whether it is allowed."},
                {"denied", "boolean", "Whether it is explicitly denied (never set by RBAC)."},
                {"evaluationError", "string", "What went wrong while deciding, if anything."},
                {"reason", "string", "Why it is allowed or not."}},
               {"allowed"}});
  t.push_back({"authz.SubjectAccessReview", "Asks whether a given user may make a request.",
               {ApiVersion(), Kind(), Metadata(),
                {"spec", "@authz.SubjectAccessReviewSpec", "Who asks to do what."},
                {"status", "@authz.SubjectAccessReviewStatus", "The answer; filled in by the server."}},
               {"spec"}, "authorization.k8s.io/v1/SubjectAccessReview"});
  t.push_back({"authz.SelfSubjectAccessReviewSpec", "What the caller asks to do. Exactly one of the attributes is set.",
               {{"nonResourceAttributes", "@authz.NonResourceAttributes", "A request on a non-resource path."},
                {"resourceAttributes", "@authz.ResourceAttributes", "A request on a resource."}}});
  t.push_back({"authz.SelfSubjectAccessReview", "Asks whether the caller may make a request (kubectl auth can-i).",
               {ApiVersion(), Kind(), Metadata(),
                {"spec", "@authz.SelfSubjectAccessReviewSpec", "What the caller asks to do."},
                {"status", "@authz.SubjectAccessReviewStatus", "The answer; filled in by the server."}},
               {"spec"}, "authorization.k8s.io/v1/SelfSubjectAccessReview"});
  t.push_back({"authz.ResourceRule", "What the caller may do with some resources.",
               {{"apiGroups", "[]string", "API groups.", kAtomicList},
                {"resourceNames", "[]string", "Object names; empty for all.", kAtomicList},
                {"resources", "[]string", "Resources.", kAtomicList},
                {"verbs", "[]string", "Verbs.", kAtomicList}},
               {"verbs"}});
  t.push_back({"authz.NonResourceRule", "What the caller may do with some paths.",
               {{"nonResourceURLs", "[]string", "Paths (a trailing * matches a prefix).", kAtomicList},
                {"verbs", "[]string", "Verbs.", kAtomicList}},
               {"verbs"}});
  t.push_back({"authz.SelfSubjectRulesReviewSpec", "Where to list the caller's rights.",
               {{"namespace", "string", "The namespace."}}});
  t.push_back({"authz.SubjectRulesReviewStatus", "The caller's rights in a namespace.",
               {{"evaluationError", "string", "What went wrong while listing, if anything."},
                {"incomplete", "boolean", "Whether the list may lack rules."},
                {"nonResourceRules", "[]@authz.NonResourceRule", "Rights on non-resource paths.", kAtomicList},
                {"resourceRules", "[]@authz.ResourceRule", "Rights on resources.", kAtomicList}},
               {"resourceRules", "nonResourceRules", "incomplete"}});
  t.push_back({"authz.SelfSubjectRulesReview", "Lists what the caller may do in a namespace (kubectl auth can-i --list).",
               {ApiVersion(), Kind(), Metadata(),
                {"spec", "@authz.SelfSubjectRulesReviewSpec", "Where to list."},
                {"status", "@authz.SubjectRulesReviewStatus", "The answer; filled in by the server."}},
               {"spec"}, "authorization.k8s.io/v1/SelfSubjectRulesReview"});
  // ---- rbac.authorization.k8s.io/v1
  t.push_back({"rbac.PolicyRule", "One rule: verbs allowed on resources (in API groups, optionally by name) or on paths.",
               {{"apiGroups", "[]string", "API groups of the resources; \"\" is the core group, \"*\" all.", kAtomicList},
                {"nonResourceURLs", "[]string", "Paths; only in cluster roles.", kAtomicList},
                {"resourceNames", "[]string", "Object names; empty for all.", kAtomicList},
                {"resources", "[]string", "Resources (and resource/subresource); \"*\" all.", kAtomicList},
                {"verbs", "[]string", "Verbs; \"*\" all.", kAtomicList}},
               {"verbs"}});
  t.push_back({"rbac.AggregationRule", "How a cluster role gathers the rules of others.",
               {{"clusterRoleSelectors", "[]@meta.LabelSelector", "Cluster roles whose labels match any selector contribute their rules.",
                 kAtomicList}}});
  t.push_back({"rbac.Role", "A set of rules within one namespace.",
               {ApiVersion(), Kind(), Metadata(), {"rules", "[]@rbac.PolicyRule", "The rules.", kAtomicList}},
               {}, "rbac.authorization.k8s.io/v1/Role"});
  t.push_back({"rbac.ClusterRole", "A set of rules for the whole cluster, or bound within a namespace by a RoleBinding.",
               {{"aggregationRule", "@rbac.AggregationRule", "Gathers rules from other cluster roles."},
                ApiVersion(), Kind(), Metadata(), {"rules", "[]@rbac.PolicyRule", "The rules.", kAtomicList}},
               {}, "rbac.authorization.k8s.io/v1/ClusterRole"});
  t.push_back({"rbac.RoleRef", "The role a binding grants.",
               {{"apiGroup", "string", "rbac.authorization.k8s.io."},
                {"kind", "string", "Role or ClusterRole."},
                {"name", "string", "The role's name."}},
               {"apiGroup", "kind", "name"}, "", kAtomicMap});
  t.push_back({"rbac.Subject", "Who a binding grants a role to: a user, a group or a service account.",
               {{"apiGroup", "string", "rbac.authorization.k8s.io for users and groups; empty for service accounts."},
                {"kind", "string", "User, Group or ServiceAccount."},
                {"name", "string", "The subject's name."},
                {"namespace", "string", "The service account's namespace."}},
               {"kind", "name"}, "", kAtomicMap});
  t.push_back({"rbac.RoleBinding", "Grants a role's rules to subjects within one namespace.",
               {ApiVersion(), Kind(), Metadata(),
                {"roleRef", "@rbac.RoleRef", "The role granted; it cannot change once set."},
                {"subjects", "[]@rbac.Subject", "Who is granted it.", kAtomicList}},
               {"roleRef"}, "rbac.authorization.k8s.io/v1/RoleBinding"});
  t.push_back({"rbac.ClusterRoleBinding", "Grants a cluster role's rules to subjects across the cluster.",
               {ApiVersion(), Kind(), Metadata(),
                {"roleRef", "@rbac.RoleRef", "The cluster role granted; it cannot change once set."},
                {"subjects", "[]@rbac.Subject", "Who is granted it.", kAtomicList}},
               {"roleRef"}, "rbac.authorization.k8s.io/v1/ClusterRoleBinding"});
  return t;
}

const std::vector<Schema>& Schemas() {
  static const std::vector<Schema> t = Table();
  return t;
}

const Schema* Find(const std::string& short_name) {
  for (const Schema& s : Schemas()) {
    if (s.name == short_name) return &s;
  }
  return nullptr;
}

// ---- rendering ------------------------------------------------------------------------------

// The schema of a type in the notation above; `ref` makes a reference from a full name.
Json TypeSchema(const std::string& type, const std::function<Json(const std::string&)>& ref) {
  if (type.starts_with("[]")) return Json{{"type", "array"}, {"items", TypeSchema(type.substr(2), ref)}};
  if (type.starts_with("{}")) return Json{{"type", "object"}, {"additionalProperties", TypeSchema(type.substr(2), ref)}};
  if (type.starts_with("@")) return ref(FullName(type.substr(1)));
  if (type == "byte") return Json{{"type", "string"}, {"format", "byte"}};
  if (type == "object") return Json{{"type", "object"}};
  size_t colon = type.find(':');
  if (colon != std::string::npos) return Json{{"type", type.substr(0, colon)}, {"format", type.substr(colon + 1)}};
  return Json{{"type", type}};
}

Json Render(const Schema& s, bool v3) {
  auto ref = [v3](const std::string& full) {
    std::string target = (v3 ? "#/components/schemas/" : "#/definitions/") + full;
    return Json{{"$ref", target}};
  };
  Json out = {{"description", s.description}};
  if (!s.scalar_format.empty()) {
    out["type"] = "string";
    out["format"] = s.scalar_format;
    return out;
  }
  Json props = Json::object();
  for (const Field& f : s.fields) {
    Json p = TypeSchema(f.type, ref);
    if (p.contains("$ref") && v3) {
      // OpenAPI 3.0 ignores a description beside $ref: kube-apiserver wraps the reference.
      p = Json{{"allOf", Json::array({p})}};
    }
    p["description"] = f.description;
    for (const auto& [k, v] : f.extensions.items()) p[k] = v;
    props[f.name] = p;
  }
  if (!s.required.empty()) out["required"] = s.required;
  out["type"] = "object";
  if (!props.empty()) out["properties"] = props;
  for (const auto& [k, v] : s.extensions.items()) out[k] = v;
  if (!s.group_version_kind.empty()) {
    size_t a = s.group_version_kind.find('/'), b = s.group_version_kind.rfind('/');
    std::string group = s.group_version_kind.substr(0, a);
    std::string version = s.group_version_kind.substr(a + 1, b - a - 1);
    out["x-kubernetes-group-version-kind"] = Json::array({{{"group", group}, {"kind", s.group_version_kind.substr(b + 1)}, {"version", version}}});
  }
  return out;
}

// Every schema `s` refers to, directly or not, and itself.
void Closure(const Schema& s, std::set<std::string>* seen) {
  if (!seen->insert(s.name).second) return;
  for (const Field& f : s.fields) {
    size_t at = f.type.find('@');
    if (at == std::string::npos) continue;
    if (const Schema* r = Find(f.type.substr(at + 1))) Closure(*r, seen);
  }
}

std::string GroupOf(const std::string& group_version) {
  if (group_version == "api/v1") return "";
  return group_version.substr(5, group_version.size() - 5 - 3);  // apis/<group>/v1
}

}  // namespace

const std::vector<std::string>& GroupVersions() {
  static const std::vector<std::string> gvs = {"api/v1", "apis/authentication.k8s.io/v1", "apis/authorization.k8s.io/v1",
                                               "apis/rbac.authorization.k8s.io/v1"};
  return gvs;
}

Json SchemasV3(const std::string& group_version) {
  std::string group = GroupOf(group_version);
  std::set<std::string> names;
  for (const Schema& s : Schemas()) {
    if (s.group_version_kind.empty()) continue;
    if (s.group_version_kind.substr(0, s.group_version_kind.find('/')) == group) Closure(s, &names);
  }
  Json out = Json::object();
  for (const std::string& n : names) out[FullName(n)] = Render(*Find(n), true);
  return out;
}

Json DefinitionsV2() {
  Json out = Json::object();
  for (const Schema& s : Schemas()) out[FullName(s.name)] = Render(s, false);
  return out;
}

}  // namespace sigil::kube::openapi
