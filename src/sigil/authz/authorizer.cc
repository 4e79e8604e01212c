#include "sigil/authz/authorizer.h"

#include "sigil/base/clock.h"
#include "sigil/base/logging.h"
#include "sigil/crypto/random.h"

namespace sigil::authz {
namespace {

using Json = nlohmann::json;

struct Prefix {
  const char* prefix;
  RbacIndex::Kind kind;
  bool namespaced;
};
constexpr Prefix kPrefixes[] = {
    {"/registry/clusterroles/", RbacIndex::Kind::kClusterRole, false},
    {"/registry/roles/", RbacIndex::Kind::kRole, true},
    {"/registry/clusterrolebindings/", RbacIndex::Kind::kClusterRoleBinding, false},
    {"/registry/rolebindings/", RbacIndex::Kind::kRoleBinding, true},
};

// "/registry/roles/<ns>/<name>" -> (ns, name); cluster objects have no ns.
std::pair<std::string, std::string> Split(const Prefix& p, const std::string& key) {
  std::string rest = key.substr(std::string_view(p.prefix).size());
  if (!p.namespaced) return {"", rest};
  size_t slash = rest.find('/');
  if (slash == std::string::npos) return {"", rest};
  return {rest.substr(0, slash), rest.substr(slash + 1)};
}

}  // namespace

Authorizer::~Authorizer() { watches_.clear(); }

void Authorizer::Seen(const std::string& prefix, int64_t revision) {
  {
    std::lock_guard<std::mutex> l(seen_mu_);
    int64_t& r = seen_[prefix];
    r = std::max(r, revision);
  }
  seen_cv_.notify_all();
}

bool Authorizer::WaitFor(const std::string& prefix, int64_t revision, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> l(seen_mu_);
  return seen_cv_.wait_for(l, timeout, [&] {
    auto it = seen_.find(prefix);
    return it != seen_.end() && it->second >= revision;
  });
}

void Authorizer::Apply(RbacIndex::Kind kind, const std::string& prefix, const std::string& key, const std::string& ns,
                       const std::string& name, const Json* obj, int64_t revision, bool from_watch) {
  {
    std::lock_guard<std::mutex> l(apply_mu_);
    auto it = revisions_.find(key);
    if (from_watch) {
      // Observe applied this write or a newer one already: only forget it once the watch is there.
      bool newer_applied = it != revisions_.end() && it->second > revision;
      if (!newer_applied) {
        if (obj != nullptr) {
          index_.Upsert(kind, ns, name, *obj);
        } else {
          index_.Remove(kind, ns, name);
        }
        if (it != revisions_.end()) revisions_.erase(it);
      }
      std::lock_guard<std::mutex> sl(seen_mu_);  // still under apply_mu_: Observe sees both at once
      int64_t& r = seen_[prefix];
      r = std::max(r, revision);
    } else {
      {
        std::lock_guard<std::mutex> sl(seen_mu_);
        auto s = seen_.find(prefix);
        if (s != seen_.end() && s->second >= revision) return;  // the watch applied it, or newer
      }
      if (it != revisions_.end() && it->second >= revision) return;
      if (obj != nullptr) {
        index_.Upsert(kind, ns, name, *obj);
      } else {
        index_.Remove(kind, ns, name);
      }
      revisions_[key] = revision;
    }
  }
  if (from_watch) seen_cv_.notify_all();
}

void Authorizer::Observe(const std::string& key, const Json* obj, int64_t revision) {
  for (const Prefix& p : kPrefixes) {
    if (!key.starts_with(p.prefix)) continue;
    auto [ns, name] = Split(p, key);
    Apply(p.kind, p.prefix, key, ns, name, obj, revision, false);
    return;
  }
}

Result<std::unique_ptr<Authorizer>> Authorizer::Open(store::ObjectStore* store) {
  std::unique_ptr<Authorizer> a(new Authorizer());
  // Defaults are stored as the API would have created them (uid, creationTimestamp).
  auto stamp = [](Json obj) {
    obj["metadata"]["uid"] = crypto::RandomUuid();
    obj["metadata"]["creationTimestamp"] = FormatRfc3339(Clock::Real()->Now());
    return obj;
  };
  for (Json role : DefaultClusterRoles()) {
    role = stamp(std::move(role));
    auto r = store->Create("/registry/clusterroles/" + role["metadata"]["name"].get<std::string>(), SecretBytes(role.dump()));
    if (!r.ok() && r.error().code() != StatusCode::kAlreadyExists) return r.error();
  }
  for (Json b : DefaultClusterRoleBindings()) {
    b = stamp(std::move(b));
    auto r = store->Create("/registry/clusterrolebindings/" + b["metadata"]["name"].get<std::string>(), SecretBytes(b.dump()));
    if (!r.ok() && r.error().code() != StatusCode::kAlreadyExists) return r.error();
  }
  for (const Prefix& p : kPrefixes) {
    SIGIL_ASSIGN_OR_RETURN(store::ObjectList l, store->List(p.prefix, "", 0));
    for (const store::Object& o : l.items) {
      auto [ns, name] = Split(p, o.key);
      a->index_.Upsert(p.kind, ns, name, Json::parse(o.doc.view(), nullptr, false));
    }
    a->Seen(p.prefix, l.revision);
    Authorizer* self = a.get();
    SIGIL_ASSIGN_OR_RETURN(auto handle, store->Watch(p.prefix, l.revision, [self, p](const std::vector<store::ObjectEvent>& events,
                                                                                        const Status& error) {
      for (const store::ObjectEvent& e : events) {
        auto [ns, name] = Split(p, e.key);
        if (e.type == store::ObjectEvent::Type::kPut && e.object) {
          Json obj = Json::parse(e.object->doc.view(), nullptr, false);
          self->Apply(p.kind, p.prefix, e.key, ns, name, &obj, e.revision, true);
        } else {
          self->Apply(p.kind, p.prefix, e.key, ns, name, nullptr, e.revision, true);
        }
      }
      if (!error.ok()) log::Error("RBAC watch: an object failed to decrypt; decisions may be stale", {{"error", error.message()}});
    }));
    a->watches_.push_back(std::move(handle));
  }
  return a;
}

}  // namespace sigil::authz
