// authz/rbac.h: Kubernetes RBAC evaluation (rbac.authorization.k8s.io/v1), deny by default, with
// kube-apiserver's semantics (k/k plugin/pkg/auth/authorizer/rbac/rbac.go and
// pkg/apis/rbac/v1/evaluation_helpers.go):
//   - a request is allowed when some rule of some role bound to the caller allows it; there are
//     no deny rules;
//   - ClusterRoleBindings grant their role everywhere; RoleBindings grant a Role of their own
//     namespace, or a ClusterRole, in their namespace only;
//   - subjects: User (by name), Group (by membership), ServiceAccount (as the user
//     system:serviceaccount:<namespace>:<name>);
//   - rules match verbs, apiGroups, resources ("secrets", "secrets/versions", "*", "*/sub"),
//     resourceNames (empty = all; never for list/watch/create/deletecollection without a name)
//     and nonResourceURLs ("/healthz", "/api/*" as a prefix, "*"), each with "*";
//   - aggregated ClusterRoles take the rules of every ClusterRole whose labels match one of
//     their clusterRoleSelectors.
// RbacIndex holds the objects (as JSON, as stored) and answers questions. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "sigil/base/identity.h"

namespace sigil::authz {

struct Attributes {
  std::string verb;  // get list watch create update patch delete deletecollection (resource); get post ... (path)
  bool resource_request = true;
  std::string api_group, resource, subresource, namespace_, name;  // resource requests
  std::string path;                                                   // non-resource requests
};

struct PolicyRule {
  std::vector<std::string> verbs, api_groups, resources, resource_names, non_resource_urls;
  static PolicyRule FromJson(const nlohmann::json& j);
  nlohmann::json ToJson() const;
  bool Allows(const Attributes& a) const;
  // kube-apiserver's compact form, as in escalation errors:
  // {APIGroups:[""], Resources:["secrets"], Verbs:["get"]}
  std::string Describe() const;
};

// The parts of `wanted` that `owner` does not cover, one verb / group / resource / name (or
// verb / URL) each: kube-apiserver's validation.Covers, which escalation checks use. Empty when
// `owner` holds everything `wanted` grants.
std::vector<PolicyRule> Uncovered(const std::vector<PolicyRule>& owner, const std::vector<PolicyRule>& wanted);

class RbacIndex {
 public:
  enum class Kind { kRole, kClusterRole, kRoleBinding, kClusterRoleBinding };

  // Adds or replaces an object (its JSON as stored); Remove drops it. `ns` is empty for cluster
  // objects.
  void Upsert(Kind kind, const std::string& ns, const std::string& name, const nlohmann::json& obj);
  void Remove(Kind kind, const std::string& ns, const std::string& name);

  bool Allows(const Identity& who, const Attributes& a) const;
  // Every rule that applies to `who` in `ns` (cluster-wide rules included): what a
  // SelfSubjectRulesReview reports.
  std::vector<PolicyRule> RulesFor(const Identity& who, const std::string& ns) const;
  // The rules a role grants (aggregation expanded); nullopt when the role does not exist.
  std::optional<std::vector<PolicyRule>> RulesOfRole(const std::string& kind, const std::string& name, const std::string& ns) const;

 private:
  struct Role {
    std::vector<PolicyRule> rules;
    std::map<std::string, std::string> labels;
    std::vector<nlohmann::json> aggregation_selectors;  // clusterRoleSelectors (ClusterRoles)
  };
  struct Binding {
    std::string role_kind, role_name;
    std::vector<nlohmann::json> subjects;
  };
  bool Applies(const Binding& b, const std::string& binding_ns, const Identity& who) const;
  std::vector<PolicyRule> RoleRules(const std::string& kind, const std::string& name, const std::string& ns) const;

  mutable std::mutex mu_;
  std::map<std::string, Role> cluster_roles_;
  std::map<std::pair<std::string, std::string>, Role> roles_;
  std::map<std::string, Binding> cluster_bindings_;
  std::map<std::pair<std::string, std::string>, Binding> bindings_;
};

// The default ClusterRoles and ClusterRoleBindings sigil creates when they are missing
// (kube-apiserver's bootstrap policy, for the resources sigil serves).
std::vector<nlohmann::json> DefaultClusterRoles();
std::vector<nlohmann::json> DefaultClusterRoleBindings();

}  // namespace sigil::authz
