// The Secret version history operations of Registry (registry.h): list, get, rollback.
#include "sigil/crypto/random.h"
#include "sigil/registry/registry.h"

namespace sigil::registry {
namespace {

ApiError VersionNotFound(const std::string& name, int64_t version) {
  return FromStatusMessage(404, "NotFound", "version " + std::to_string(version) + " of secrets \"" + name + "\" not found");
}

}  // namespace

Outcome<std::optional<Registry::Versions>> Registry::ListVersions(const std::string& ns, const std::string& name) {
  const std::string key = Secrets().Key(ns, name);
  auto versions = history_.List(key, true);
  if (!versions.ok()) return FromStatus(versions.error());
  auto current = store_->Get(key);
  if (!current.ok()) return FromStatus(current.error());
  if (versions->empty() && !current->has_value()) return std::optional<Versions>();
  auto keep = HistoryVersions(ns);
  if (!keep.ok()) return FromStatus(keep.error());
  Versions out;
  out.keep = *keep;
  for (store::Version& v : *versions) {
    SecretVersion sv{v.version, v.meta.operation, v.meta.time, v.meta.manager, v.revision, v.deleted, std::nullopt};
    if (!v.deleted) {
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
  SecretVersion out{sv.version, sv.meta.operation, sv.meta.time, sv.meta.manager, sv.revision, sv.deleted, std::nullopt};
  if (!sv.deleted) {
    Outcome<Json> j = Parse(store::Object{key, std::move(sv.doc), sv.revision, 0});
    if (!j.ok()) return j.error();
    out.obj = WithResourceVersion(std::move(*j), sv.revision);
  }
  return std::optional<SecretVersion>(std::move(out));
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
  wo.operation = "rollback";
  return Update(Secrets(), ns, name, restore, wo, recreate);
}

}  // namespace sigil::registry
