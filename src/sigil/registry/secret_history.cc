// The Secret version history operations of Registry (registry.h): list, get, rollback.
#include <algorithm>
#include <set>

#include "sigil/crypto/random.h"
#include "sigil/registry/registry.h"
#include "sigil/base/encoding.h"
#include "sigil/registry/rotation.h"

namespace sigil::registry {
namespace {

ApiError VersionNotFound(const std::string& name, int64_t version) {
  return FromStatusMessage(404, "NotFound", "version " + std::to_string(version) + " of secrets \"" + name + "\" not found");
}

}  // namespace

Outcome<std::optional<Registry::Versions>> Registry::ListVersions(const std::string& ns, const std::string& name,
                                                                   bool with_objects) {
  const std::string key = Secrets().Key(ns, name);
  auto versions = history_.List(key, with_objects);
  if (!versions.ok()) return FromStatus(versions.error());
  auto current = store_->Get(key);
  if (!current.ok()) return FromStatus(current.error());
  if (versions->empty() && !current->has_value()) return std::optional<Versions>();
  auto keep = HistoryVersions(ns);
  if (!keep.ok()) return FromStatus(keep.error());
  Versions out;
  out.keep = *keep;
  for (store::Version& v : *versions) {
    SecretVersion sv{v.version, v.meta.operation, v.meta.time, v.meta.manager, v.revision, v.deleted, v.destroyed, v.deleted_at,
                     std::nullopt};
    if (!v.doc.empty()) {
      Outcome<Json> j = Parse(store::Object{key, std::move(v.doc), v.revision, 0});
      if (!j.ok()) return j.error();
      sv.obj = WithResourceVersion(std::move(*j), v.revision);
    }
    // The newest version is the current one when it is the Secret as it stands now.
    if (*current && v.revision == (*current)->revision) out.current = v.version;
    out.versions.push_back(std::move(sv));
  }
  return std::optional<Versions>(std::move(out));
}

Outcome<std::optional<SecretVersion>> Registry::GetVersion(const std::string& ns, const std::string& name, int64_t version) {
  const std::string key = Secrets().Key(ns, name);
  auto v = history_.Get(key, version);
  if (!v.ok()) return FromStatus(v.error());
  if (!v->has_value()) return std::optional<SecretVersion>();
  store::Version& sv = **v;
  SecretVersion out{sv.version, sv.meta.operation, sv.meta.time, sv.meta.manager, sv.revision, sv.deleted, sv.destroyed,
                    sv.deleted_at, std::nullopt};
  if (!sv.doc.empty()) {
    Outcome<Json> j = Parse(store::Object{key, std::move(sv.doc), sv.revision, 0});
    if (!j.ok()) return j.error();
    out.obj = WithResourceVersion(std::move(*j), sv.revision);
  }
  return std::optional<SecretVersion>(std::move(out));
}

Outcome<Written> Registry::RotateSecret(const std::string& ns, const std::string& name, const WriteOptions& o, bool only_if_due,
                                        std::optional<Clock::TimePoint>* next) {
  next->reset();
  bool skipped = false;
  auto rotate = [&](const Stored& current) -> Outcome<Json> {
    skipped = false;
    Result<std::optional<RotationPolicy>> p = RotationPolicyOf(current.obj);
    if (!p.ok()) return BadRequest(p.error().message());
    if (!*p) {
      next->reset();
      if (only_if_due) {
        skipped = true;
        return ApiError(FromStatusMessage(304, "NotModified", "no policy"));
      }
      return BadRequest("secrets \"" + name + "\" has no rotation policy (annotation " + std::string(kRotationPeriod) + ")");
    }
    Clock::TimePoint now = clock_->Now();
    Clock::TimePoint due = NextRotation(current.obj, **p, now);
    if (only_if_due && due > now) {
      *next = due;
      skipped = true;
      return ApiError(FromStatusMessage(304, "NotModified", "not due"));
    }
    Json obj = current.obj;
    obj["metadata"].erase("resourceVersion");
    if (!obj.contains("data") || !obj["data"].is_object()) obj["data"] = Json::object();
    for (const std::string& k : (*p)->keys) {
      SecretBytes v = GenerateValue(**p);
      obj["data"][k] = Base64Encode(v.view());
    }
    std::string stamp = FormatRfc3339(now);
    obj["metadata"]["annotations"][std::string(kRotatedAt)] = stamp;
    *next = *ParseRfc3339(stamp) + (*p)->period;
    return obj;
  };
  WriteOptions wo = o;
  wo.operation = "rotate";
  Outcome<Written> w = Update(Secrets(), ns, name, rotate, wo);
  if (!w.ok() && skipped) return Written{};
  if (!w.ok()) next->reset();
  return w;
}

Outcome<Written> Registry::Rollback(const std::string& ns, const std::string& name, int64_t version, const WriteOptions& o,
                                    bool* created) {
  Outcome<std::optional<SecretVersion>> v = GetVersion(ns, name, version);
  if (!v.ok()) return v.error();
  if (!v->has_value()) return VersionNotFound(name, version);
  if ((*v)->deleted) {
    return BadRequest("version " + std::to_string(version) + " of secrets \"" + name +
                      "\" records a deletion; roll back to a version before it");
  }
  if ((*v)->destroyed) {
    return BadRequest("version " + std::to_string(version) + " of secrets \"" + name + "\" was destroyed; its values are gone");
  }
  const Json& old = *(*v)->obj;
  *created = false;
  // The Secret is absent: re-create it with the old version's content.
  auto recreate = [&]() -> Outcome<Json> {
    Json obj = {{"kind", "Secret"}, {"apiVersion", "v1"},
                {"metadata", {{"name", name}, {"namespace", ns}, {"uid", crypto::RandomUuid()}, {"creationTimestamp", Now()}}}};
    for (const char* f : {"labels", "annotations"}) {
      if (old["metadata"].contains(f)) obj["metadata"][f] = old["metadata"][f];
    }
    for (const char* f : {"immutable", "data", "type"}) {
      if (old.contains(f)) obj[f] = old[f];
    }
    if (o.track) o.track(nullptr, &obj);
    *created = true;
    return obj;
  };
  auto restore = [&](const Stored& current) -> Outcome<Json> {
    *created = false;
    Json next = current.obj;
    for (const char* f : {"labels", "annotations"}) {
      if (old["metadata"].contains(f)) {
        next["metadata"][f] = old["metadata"][f];
      } else {
        next["metadata"].erase(f);
      }
    }
    for (const char* f : {"immutable", "data", "type"}) {
      if (old.contains(f)) {
        next[f] = old[f];
      } else {
        next.erase(f);
      }
    }
    return next;
  };
  WriteOptions wo = o;
  if (wo.operation != "undelete") wo.operation = "rollback";
  return Update(Secrets(), ns, name, restore, wo, recreate);
}

Outcome<int> Registry::ChangeVersions(const std::string& ns, const std::string& name, const std::vector<int64_t>& versions,
                                      VersionChange change, const WriteOptions& o,
                                      const std::function<std::optional<ApiError>()>& admit_removal) {
  const std::string key = Secrets().Key(ns, name);
  using A = store::History::Amendment;
  A amendment = change == VersionChange::kSoftDelete ? A::kMarkDeleted : change == VersionChange::kUndelete ? A::kClearDeleted : A::kDestroy;
  for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
    auto current = store_->Get(key);
    if (!current.ok()) return FromStatus(current.error());
    auto listed = history_.List(key, false);
    if (!listed.ok()) return FromStatus(listed.error());
    // The version the Secret stands at: the newest record, when it is the object as stored.
    int64_t standing = 0;
    if (*current && !listed->empty() && listed->back().revision == (**current).revision) standing = listed->back().version;
    store::SideEffects also;
    bool remove_secret = change != VersionChange::kUndelete && standing != 0 &&
                         std::find(versions.begin(), versions.end(), standing) != versions.end();
    if (remove_secret && admit_removal) {
      if (std::optional<ApiError> refused = admit_removal()) return *refused;
    }
    if (remove_secret) {
      // The tombstone first: the records it trims are not amended (they are going).
      Result<int64_t> t = RecordVersion(ns, name, nullptr, "delete", o.manager, &also);
      if (!t.ok()) return FromStatus(t.error());
    }
    std::string now = Now();
    int changed = 0;
    std::set<int64_t> seen;
    for (int64_t v : versions) {
      if (!seen.insert(v).second) continue;
      if (std::find(also.deletes.begin(), also.deletes.end(), store::History::KeyOf(key, v)) != also.deletes.end()) continue;
      Result<bool> c = history_.Amend(key, v, amendment, now, &also);
      if (!c.ok()) return FromStatus(c.error());
      changed += *c ? 1 : 0;
    }
    if (o.dry_run || (changed == 0 && !remove_secret)) return changed;
    Result<int64_t> rev = remove_secret ? store_->Delete(key, (**current).revision, also) : store_->Apply(also);
    if (rev.ok()) return changed;
    if (rev.error().code() != StatusCode::kAborted && rev.error().code() != StatusCode::kNotFound) return FromStatus(rev.error());
  }
  return ModifiedConflict(Secrets().Qualified(), name);
}

Outcome<bool> Registry::DeleteWithHistory(const std::string& ns, const std::string& name) {
  const std::string key = Secrets().Key(ns, name);
  for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
    auto current = store_->Get(key);
    if (!current.ok()) return FromStatus(current.error());
    store::SideEffects also;
    if (Status st = history_.Purge(key, &also); !st.ok()) return FromStatus(st);
    if (!*current && also.deletes.empty()) return false;
    Result<int64_t> rev = *current ? store_->Delete(key, (**current).revision, also) : store_->Apply(also);
    if (rev.ok()) return true;
    if (rev.error().code() != StatusCode::kAborted && rev.error().code() != StatusCode::kNotFound) return FromStatus(rev.error());
  }
  return ModifiedConflict(Secrets().Qualified(), name);
}

}  // namespace sigil::registry

namespace sigil::registry {

Outcome<std::vector<std::string>> Registry::SecretNames(const std::string& ns) {
  std::set<std::string> names;
  const std::string live = Secrets().Prefix(ns);
  auto keys = store_->Keys(live);
  if (!keys.ok()) return FromStatus(keys.error());
  for (const std::string& k : *keys) names.insert(k.substr(live.size()));
  // History keys: /sigil/history/registry/secrets/<ns>/<name>/<version>.
  const std::string kept = "/sigil/history" + live;
  auto versions = store_->Keys(kept);
  if (!versions.ok()) return FromStatus(versions.error());
  for (const std::string& k : *versions) {
    std::string_view rest = std::string_view(k).substr(kept.size());
    if (size_t slash = rest.find('/'); slash != std::string_view::npos && slash > 0) names.emplace(rest.substr(0, slash));
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Outcome<std::vector<std::string>> Registry::NamespaceNames() {
  const std::string prefix = Namespaces().Prefix("");
  auto keys = store_->Keys(prefix);
  if (!keys.ok()) return FromStatus(keys.error());
  std::vector<std::string> out;
  for (const std::string& k : *keys) out.push_back(k.substr(prefix.size()));
  return out;
}

}  // namespace sigil::registry
