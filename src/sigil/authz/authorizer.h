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
  // Applies a committed RBAC write at `key` (one of the four /registry/... prefixes) to the index
  // now, without waiting for the store watch: `obj` is the object as written at `revision`, or
  // null for a delete. So the writer's next request is decided on the new rules
  // (read-your-writes) and no request thread waits. A write older than one already applied to
  // that key, or than the watch's progress, is ignored; the watch delivers the same write later
  // and it is applied once. Non-RBAC keys are ignored.
  void Observe(const std::string& key, const nlohmann::json* obj, int64_t revision);
  // Waits until the index has seen the write of `revision` under `prefix` (one of the four
  // /registry/... prefixes), or `timeout` passes. Returns whether it has. For tests.
  bool WaitFor(const std::string& prefix, int64_t revision, std::chrono::milliseconds timeout) const;

 private:
  Authorizer() = default;
  void Seen(const std::string& prefix, int64_t revision);
  // One write to the index, from the watch or from Observe, at most once per revision of a key.
  void Apply(RbacIndex::Kind kind, const std::string& prefix, const std::string& key, const std::string& ns,
             const std::string& name, const nlohmann::json* obj, int64_t revision, bool from_watch);

  std::mutex apply_mu_;  // orders Apply; guards revisions_
  // key -> revision applied by Observe that the watch has not delivered yet.
  std::map<std::string, int64_t> revisions_;
  RbacIndex index_;
  mutable std::mutex seen_mu_;
  mutable std::condition_variable seen_cv_;
  std::map<std::string, int64_t> seen_;  // prefix -> newest revision applied to the index
  std::vector<std::unique_ptr<storage::WatchHandle>> watches_;
};

}  // namespace sigil::authz
