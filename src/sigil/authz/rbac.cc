#include "sigil/authz/rbac.h"

#include <algorithm>

namespace sigil::authz {
namespace {

using Json = nlohmann::json;

std::vector<std::string> Strings(const Json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const Json& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

bool Has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// metav1.LabelSelector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist);
// an empty selector matches everything.
bool SelectorMatches(const Json& sel, const std::map<std::string, std::string>& labels) {
  if (!sel.is_object()) return false;
  if (sel.contains("matchLabels") && sel["matchLabels"].is_object()) {
    for (const auto& [k, v] : sel["matchLabels"].items()) {
      auto it = labels.find(k);
      if (it == labels.end() || !v.is_string() || it->second != v.get<std::string>()) return false;
    }
  }
  if (sel.contains("matchExpressions") && sel["matchExpressions"].is_array()) {
    for (const Json& e : sel["matchExpressions"]) {
      std::string key = e.value("key", ""), op = e.value("operator", "");
      std::vector<std::string> values = Strings(e, "values");
      auto it = labels.find(key);
      if (op == "In" && (it == labels.end() || !Has(values, it->second))) return false;
      if (op == "NotIn" && it != labels.end() && Has(values, it->second)) return false;
      if (op == "Exists" && it == labels.end()) return false;
      if (op == "DoesNotExist" && it != labels.end()) return false;
      if (op != "In" && op != "NotIn" && op != "Exists" && op != "DoesNotExist") return false;
    }
  }
  return true;
}

}  // namespace

PolicyRule PolicyRule::FromJson(const Json& j) {
  PolicyRule r;
  r.verbs = Strings(j, "verbs");
  r.api_groups = Strings(j, "apiGroups");
  r.resources = Strings(j, "resources");
  r.resource_names = Strings(j, "resourceNames");
  r.non_resource_urls = Strings(j, "nonResourceURLs");
  return r;
}

Json PolicyRule::ToJson() const {
  Json j = {{"verbs", verbs}};
  if (!api_groups.empty()) j["apiGroups"] = api_groups;
  if (!resources.empty()) j["resources"] = resources;
  if (!resource_names.empty()) j["resourceNames"] = resource_names;
  if (!non_resource_urls.empty()) j["nonResourceURLs"] = non_resource_urls;
  return j;
}

bool PolicyRule::Allows(const Attributes& a) const {
  if (!Has(verbs, "*") && !Has(verbs, a.verb)) return false;
  if (!a.resource_request) {
    for (const std::string& u : non_resource_urls) {
      if (u == "*" || u == a.path) return true;
      if (!u.empty() && u.back() == '*' && a.path.starts_with(u.substr(0, u.size() - 1))) return true;
    }
    return false;
  }
  if (!Has(api_groups, "*") && !Has(api_groups, a.api_group)) return false;
  std::string combined = a.subresource.empty() ? a.resource : a.resource + "/" + a.subresource;
  bool resource_ok = false;
  for (const std::string& r : resources) {
    if (r == "*" || r == combined) {
      resource_ok = true;
    } else if (!a.subresource.empty() && r.size() == a.subresource.size() + 2 && r.starts_with("*/") &&
               r.ends_with(a.subresource)) {
      resource_ok = true;
    }
    if (resource_ok) break;
  }
  if (!resource_ok) return false;
  return resource_names.empty() || Has(resource_names, a.name);
}

std::string PolicyRule::Describe() const {
  auto list = [](const char* label, const std::vector<std::string>& v) {
    std::string out = std::string(label) + ":[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? " " : "") + Json(v[i]).dump();
    return out + "]";
  };
  std::vector<std::string> parts;
  if (!non_resource_urls.empty()) {
    parts.push_back(list("NonResourceURLs", non_resource_urls));
  } else {
    parts.push_back(list("APIGroups", api_groups));
    parts.push_back(list("Resources", resources));
    if (!resource_names.empty()) parts.push_back(list("ResourceNames", resource_names));
  }
  parts.push_back(list("Verbs", verbs));
  std::string out = "{";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out + "}";
}

namespace {

bool ResourceCovered(const std::vector<std::string>& owner, const std::string& resource) {
  if (Has(owner, "*") || Has(owner, resource)) return true;
  size_t slash = resource.find('/');
  return slash != std::string::npos && Has(owner, "*" + resource.substr(slash));
}

bool UrlCovered(const std::vector<std::string>& owner, const std::string& url) {
  for (const std::string& o : owner) {
    if (o == "*" || o == url) return true;
    if (!o.empty() && o.back() == '*' && url.starts_with(o.substr(0, o.size() - 1))) return true;
  }
  return false;
}

// One simple rule (single verb, group, resource, name or URL) against an owner rule.
bool SimpleCovered(const PolicyRule& owner, const PolicyRule& s) {
  if (!Has(owner.verbs, "*") && !Has(owner.verbs, s.verbs[0])) return false;
  if (!s.non_resource_urls.empty()) return UrlCovered(owner.non_resource_urls, s.non_resource_urls[0]);
  if (owner.resources.empty()) return false;
  if (!Has(owner.api_groups, "*") && !Has(owner.api_groups, s.api_groups[0])) return false;
  if (!ResourceCovered(owner.resources, s.resources[0])) return false;
  if (owner.resource_names.empty()) return true;
  return !s.resource_names.empty() && Has(owner.resource_names, s.resource_names[0]);
}

}  // namespace

std::vector<PolicyRule> Uncovered(const std::vector<PolicyRule>& owner, const std::vector<PolicyRule>& wanted) {
  std::vector<PolicyRule> missing;
  auto check = [&](const PolicyRule& simple) {
    for (const PolicyRule& o : owner) {
      if (SimpleCovered(o, simple)) return;
    }
    missing.push_back(simple);
  };
  for (const PolicyRule& w : wanted) {
    for (const std::string& verb : w.verbs) {
      for (const std::string& url : w.non_resource_urls) check(PolicyRule{{verb}, {}, {}, {}, {url}});
      for (const std::string& group : w.api_groups) {
        for (const std::string& resource : w.resources) {
          if (w.resource_names.empty()) {
            check(PolicyRule{{verb}, {group}, {resource}, {}, {}});
          } else {
            for (const std::string& name : w.resource_names) check(PolicyRule{{verb}, {group}, {resource}, {name}, {}});
          }
        }
      }
    }
  }
  return missing;
}

void RbacIndex::Upsert(Kind kind, const std::string& ns, const std::string& name, const Json& obj) {
  std::lock_guard<std::mutex> l(mu_);
  if (kind == Kind::kRole || kind == Kind::kClusterRole) {
    Role r;
    if (obj.contains("rules") && obj["rules"].is_array()) {
      for (const Json& rule : obj["rules"]) {
        if (rule.is_object()) r.rules.push_back(PolicyRule::FromJson(rule));
      }
    }
    const Json meta = obj.value("metadata", Json::object());
    if (meta.contains("labels") && meta["labels"].is_object()) {
      for (const auto& [k, v] : meta["labels"].items()) {
        if (v.is_string()) r.labels[k] = v.get<std::string>();
      }
    }
    if (obj.contains("aggregationRule") && obj["aggregationRule"].is_object() &&
        obj["aggregationRule"].contains("clusterRoleSelectors") && obj["aggregationRule"]["clusterRoleSelectors"].is_array()) {
      for (const Json& s : obj["aggregationRule"]["clusterRoleSelectors"]) r.aggregation_selectors.push_back(s);
    }
    if (kind == Kind::kRole) {
      roles_[{ns, name}] = std::move(r);
    } else {
      cluster_roles_[name] = std::move(r);
    }
    return;
  }
  Binding b;
  const Json ref = obj.value("roleRef", Json::object());
  b.role_kind = ref.value("kind", "");
  b.role_name = ref.value("name", "");
  if (obj.contains("subjects") && obj["subjects"].is_array()) {
    for (const Json& s : obj["subjects"]) b.subjects.push_back(s);
  }
  if (kind == Kind::kRoleBinding) {
    bindings_[{ns, name}] = std::move(b);
  } else {
    cluster_bindings_[name] = std::move(b);
  }
}

void RbacIndex::Remove(Kind kind, const std::string& ns, const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  switch (kind) {
    case Kind::kRole: roles_.erase({ns, name}); break;
    case Kind::kClusterRole: cluster_roles_.erase(name); break;
    case Kind::kRoleBinding: bindings_.erase({ns, name}); break;
    case Kind::kClusterRoleBinding: cluster_bindings_.erase(name); break;
  }
}

bool RbacIndex::Applies(const Binding& b, const std::string& binding_ns, const Identity& who) const {
  for (const Json& s : b.subjects) {
    if (!s.is_object()) continue;
    std::string kind = s.value("kind", ""), name = s.value("name", "");
    if (kind == "User" && name == who.user) return true;
    if (kind == "Group" && Has(who.groups, name)) return true;
    if (kind == "ServiceAccount") {
      std::string ns = s.value("namespace", "");
      if (ns.empty()) ns = binding_ns;
      if (!ns.empty() && who.user == "system:serviceaccount:" + ns + ":" + name) return true;
    }
  }
  return false;
}

// The rules of a role, aggregated ClusterRoles expanded (recursively, each role once).
std::vector<PolicyRule> RbacIndex::RoleRules(const std::string& kind, const std::string& name, const std::string& ns) const {
  std::vector<PolicyRule> out;
  if (kind == "Role") {
    auto it = roles_.find({ns, name});
    if (it != roles_.end()) out = it->second.rules;
    return out;
  }
  if (kind != "ClusterRole") return out;
  std::set<std::string> seen;
  std::vector<std::string> todo = {name};
  while (!todo.empty()) {
    std::string n = todo.back();
    todo.pop_back();
    if (!seen.insert(n).second) continue;
    auto it = cluster_roles_.find(n);
    if (it == cluster_roles_.end()) continue;
    out.insert(out.end(), it->second.rules.begin(), it->second.rules.end());
    for (const Json& sel : it->second.aggregation_selectors) {
      for (const auto& [other, role] : cluster_roles_) {
        if (other != n && SelectorMatches(sel, role.labels)) todo.push_back(other);
      }
    }
  }
  return out;
}

std::optional<std::vector<PolicyRule>> RbacIndex::RulesOfRole(const std::string& kind, const std::string& name,
                                                              const std::string& ns) const {
  std::lock_guard<std::mutex> l(mu_);
  if (kind == "Role" && !roles_.count({ns, name})) return std::nullopt;
  if (kind == "ClusterRole" && !cluster_roles_.count(name)) return std::nullopt;
  if (kind != "Role" && kind != "ClusterRole") return std::nullopt;
  return RoleRules(kind, name, ns);
}

bool RbacIndex::Allows(const Identity& who, const Attributes& a) const {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [name, b] : cluster_bindings_) {
    if (b.role_kind != "ClusterRole" || !Applies(b, "", who)) continue;
    for (const PolicyRule& r : RoleRules("ClusterRole", b.role_name, "")) {
      if (r.Allows(a)) return true;
    }
  }
  if (a.resource_request && !a.namespace_.empty()) {
    for (auto it = bindings_.lower_bound({a.namespace_, ""}); it != bindings_.end() && it->first.first == a.namespace_; ++it) {
      if (!Applies(it->second, a.namespace_, who)) continue;
      for (const PolicyRule& r : RoleRules(it->second.role_kind, it->second.role_name, a.namespace_)) {
        if (r.Allows(a)) return true;
      }
    }
  }
  return false;
}

std::vector<PolicyRule> RbacIndex::RulesFor(const Identity& who, const std::string& ns) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<PolicyRule> out;
  for (const auto& [name, b] : cluster_bindings_) {
    if (b.role_kind != "ClusterRole" || !Applies(b, "", who)) continue;
    auto rules = RoleRules("ClusterRole", b.role_name, "");
    out.insert(out.end(), rules.begin(), rules.end());
  }
  if (!ns.empty()) {
    for (auto it = bindings_.lower_bound({ns, ""}); it != bindings_.end() && it->first.first == ns; ++it) {
      if (!Applies(it->second, ns, who)) continue;
      auto rules = RoleRules(it->second.role_kind, it->second.role_name, ns);
      out.insert(out.end(), rules.begin(), rules.end());
    }
  }
  return out;
}

std::vector<Json> DefaultClusterRoles() {
  auto role = [](const std::string& name, Json rules, Json labels = Json::object(), Json aggregate = nullptr) {
    Json meta = {{"name", name}, {"labels", labels}, {"annotations", {{"rbac.authorization.kubernetes.io/autoupdate", "true"}}}};
    meta["labels"]["kubernetes.io/bootstrapping"] = "rbac-defaults";
    Json r = {{"kind", "ClusterRole"}, {"apiVersion", "rbac.authorization.k8s.io/v1"}, {"metadata", meta}, {"rules", rules}};
    if (!aggregate.is_null()) {
      r["aggregationRule"] = {{"clusterRoleSelectors", Json::array({{{"matchLabels", {{aggregate.get<std::string>(), "true"}}}}})}};
    }
    return r;
  };
  const Json read = {"get", "list", "watch"};
  const std::string agg = "rbac.authorization.k8s.io/aggregate-to-";
  return {
      role("cluster-admin", Json::array({{{"apiGroups", {"*"}}, {"resources", {"*"}}, {"verbs", {"*"}}},
                                         {{"nonResourceURLs", {"*"}}, {"verbs", {"*"}}}})),
      role("admin", Json::array(), Json::object(), agg + "admin"),
      role("edit", Json::array(), {{agg + "admin", "true"}}, agg + "edit"),
      role("view", Json::array(), {{agg + "admin", "true"}, {agg + "edit", "true"}}, agg + "view"),
      // view: namespaces, never secrets (as kube-apiserver's view role)
      role("system:aggregate-to-view", Json::array({{{"apiGroups", {""}}, {"resources", {"namespaces"}}, {"verbs", read}}}),
           {{agg + "view", "true"}}),
      // edit: secrets, their history, and rollback
      role("system:aggregate-to-edit",
           Json::array({{{"apiGroups", {""}}, {"resources", {"secrets"}}, {"verbs", {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}}},
                        {{"apiGroups", {""}}, {"resources", {"secrets/versions"}}, {"verbs", read}},
                        {{"apiGroups", {""}}, {"resources", {"secrets/rollback"}}, {"verbs", {"create"}}}}),
           {{agg + "edit", "true"}}),
      // admin: RBAC within the namespace
      role("system:aggregate-to-admin",
           Json::array({{{"apiGroups", {"rbac.authorization.k8s.io"}}, {"resources", {"roles", "rolebindings"}},
                         {"verbs", {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}}},
                        {{"apiGroups", {"authorization.k8s.io"}}, {"resources", {"localsubjectaccessreviews"}}, {"verbs", {"create"}}}}),
           {{agg + "admin", "true"}}),
      role("system:basic-user",
           Json::array({{{"apiGroups", {"authorization.k8s.io"}}, {"resources", {"selfsubjectaccessreviews", "selfsubjectrulesreviews"}},
                         {"verbs", {"create"}}},
                        {{"apiGroups", {"authentication.k8s.io"}}, {"resources", {"selfsubjectreviews"}}, {"verbs", {"create"}}}})),
      role("system:discovery",
           Json::array({{{"nonResourceURLs", {"/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
                                              "/readyz", "/version", "/version/"}},
                         {"verbs", {"get"}}}})),
      role("system:public-info-viewer",
           Json::array({{{"nonResourceURLs", {"/healthz", "/livez", "/readyz", "/version", "/version/"}}, {"verbs", {"get"}}}})),
      role("system:auth-delegator",
           Json::array({{{"apiGroups", {"authentication.k8s.io"}}, {"resources", {"tokenreviews"}}, {"verbs", {"create"}}},
                        {{"apiGroups", {"authorization.k8s.io"}}, {"resources", {"subjectaccessreviews"}}, {"verbs", {"create"}}}})),
  };
}

std::vector<Json> DefaultClusterRoleBindings() {
  auto binding = [](const std::string& name, const std::string& role, Json groups) {
    Json subjects = Json::array();
    for (const Json& g : groups) subjects.push_back({{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Group"}, {"name", g}});
    return Json{{"kind", "ClusterRoleBinding"},
                {"apiVersion", "rbac.authorization.k8s.io/v1"},
                {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/bootstrapping", "rbac-defaults"}}},
                              {"annotations", {{"rbac.authorization.kubernetes.io/autoupdate", "true"}}}}},
                {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "ClusterRole"}, {"name", role}}},
                {"subjects", subjects}};
  };
  Json root = binding("sigil-root", "cluster-admin", Json::array());
  root["subjects"] = Json::array({{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "User"}, {"name", "sigil-root"}}});
  return {binding("cluster-admin", "cluster-admin", {"system:masters"}),
          root,  // the root token's identity, bound by name too (it is also in system:masters)
          binding("system:basic-user", "system:basic-user", {"system:authenticated"}),
          binding("system:discovery", "system:discovery", {"system:authenticated"}),
          binding("system:public-info-viewer", "system:public-info-viewer", {"system:authenticated", "system:unauthenticated"})};
}

}  // namespace sigil::authz
