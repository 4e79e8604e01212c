// authz/authorizer.h: RBAC over the store. The RBAC objects live where kube-apiserver keeps them
// (/registry/clusterroles/<name>, /registry/roles/<ns>/<name>, /registry/clusterrolebindings/
// <name>, /registry/rolebindings/<ns>/<name>); Open creates the default ClusterRoles and
// bindings that are missing, loads everything into an RbacIndex and keeps it current with
// store watches, so a decision never reads storage. Thread-safe.
#pragma once

#include <memory>
#include <vector>

#include "sigil/authz/rbac.h"
#include "sigil/store/object_store.h"

namespace sigil::authz {

class Authorizer {
 public:
  static Result<std::unique_ptr<Authorizer>> Open(store::ObjectStore* store);
  ~Authorizer();

  bool Allows(const Identity& who, const Attributes& a) const { return index_.Allows(who, a); }
  std::vector<PolicyRule> RulesFor(const Identity& who, const std::string& ns) const { return index_.RulesFor(who, ns); }

 private:
  Authorizer() = default;
  RbacIndex index_;
  std::vector<std::unique_ptr<storage::WatchHandle>> watches_;
};

}  // namespace sigil::authz
