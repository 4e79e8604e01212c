// authz/authorizer.h: RBAC over the store. The RBAC objects live where kube-apiserver keeps them
// (/registry/clusterroles/<name>, /registry/roles/<ns>/<name>, /registry/clusterrolebindings/
// <name>, /registry/rolebindings/<ns>/<name>); Open creates the default ClusterRoles and
// bindings that are missing, loads everything into an RbacIndex and keeps it current with
// store watches, so a decision never reads storage. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
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
  std::optional<std::vector<PolicyRule>> RulesOfRole(const std::string& kind, const std::string& name, const std::string& ns) const {
    return index_.RulesOfRole(kind, name, ns);
  }
  // Waits until the index has seen the write of `revision` under `prefix` (one of the four
  // /registry/... prefixes), or `timeout` passes. Returns whether it has.
  bool WaitFor(const std::string& prefix, int64_t revision, std::chrono::milliseconds timeout) const;

 private:
  Authorizer() = default;
  void Seen(const std::string& prefix, int64_t revision);

  RbacIndex index_;
  mutable std::mutex seen_mu_;
  mutable std::condition_variable seen_cv_;
  std::map<std::string, int64_t> seen_;  // prefix -> newest revision applied to the index
  std::vector<std::unique_ptr<storage::WatchHandle>> watches_;
};

}  // namespace sigil::authz
