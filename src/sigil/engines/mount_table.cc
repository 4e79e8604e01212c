#include "sigil/engines/mount_table.h"

#include <algorithm>
#include <mutex>

#include "sigil/base/encoding.h"
#include "sigil/base/logging.h"
#include "sigil/crypto/random.h"

namespace sigil::engines {

Json Mount::ToJson() const {
  return Json{{"type", type},
              {"description", description},
              {"accessor", accessor},
              {"uuid", uuid},
              {"local", false},
              {"seal_wrap", false},
              {"external_entropy_access", false},
              {"options", options},
              {"plugin_version", ""},
              {"running_plugin_version", ""},
              {"running_sha256", ""},
              {"config", {{"default_lease_ttl", default_lease_ttl}, {"max_lease_ttl", max_lease_ttl}, {"force_no_cache", false}}}};
}

std::optional<Mount> Mount::FromJson(const Json& j) {
  if (!j.is_object() || !j.contains("path") || !j["path"].is_string() || !j.contains("type") || !j["type"].is_string()) {
    return std::nullopt;
  }
  Mount m;
  m.path = j["path"].get<std::string>();
  m.type = j["type"].get<std::string>();
  m.description = j.value("description", "");
  m.accessor = j.value("accessor", "");
  m.uuid = j.value("uuid", "");
  m.options = j.contains("options") ? j["options"] : Json(nullptr);
  m.default_lease_ttl = j.value("default_lease_ttl", int64_t{0});
  m.max_lease_ttl = j.value("max_lease_ttl", int64_t{0});
  return m;
}

// ---- Storage ----

Result<std::string> Storage::Key(std::string_view key) const {
  if (key.empty() || key.front() == '/') return InvalidArgumentError("invalid storage key");
  size_t start = 0;
  while (start <= key.size()) {
    size_t slash = key.find('/', start);
    std::string_view seg = key.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg == "." || seg == "..") return InvalidArgumentError("invalid storage key");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (prefix_.size() + key.size() > store::kMaxKeyBytes) {
    return InvalidArgumentError("path is too long for the store: with the mount's own prefix, keys are at most " +
                                std::to_string(store::kMaxKeyBytes) + " bytes");
  }
  return prefix_ + std::string(key);
}

Result<std::optional<store::Object>> Storage::Get(std::string_view key) {
  SIGIL_ASSIGN_OR_RETURN(std::string k, Key(key));
  return store_->Get(k);
}

Result<std::vector<std::string>> Storage::List(std::string_view prefix) {
  std::string p = prefix_ + std::string(prefix);
  if (!prefix.empty()) SIGIL_RETURN_IF_ERROR(Key(prefix).status());
  SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> keys, store_->Keys(p));
  for (std::string& k : keys) k.erase(0, p.size());
  return keys;
}

Result<int64_t> Storage::Put(std::string_view key, const SecretBytes& doc, std::optional<int64_t> expected_revision) {
  SIGIL_ASSIGN_OR_RETURN(std::string k, Key(key));
  if (!expected_revision || *expected_revision == 0) return store_->Create(k, doc);
  Result<int64_t> r = store_->Update(k, doc, *expected_revision);
  // Deleted since it was read is a changed entry like any other: the caller reads again.
  if (!r.ok() && r.error().code() == StatusCode::kNotFound) return AbortedError("the entry changed");
  return r;
}

Status Storage::Delete(std::string_view key) {
  SIGIL_ASSIGN_OR_RETURN(std::string k, Key(key));
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(k));
  if (!o) return OkStatus();
  return store_->Delete(k, o->revision).status();
}

Status Storage::DeleteIf(std::string_view key, int64_t revision) {
  SIGIL_ASSIGN_OR_RETURN(std::string k, Key(key));
  Result<int64_t> r = store_->Delete(k, revision);
  if (!r.ok() && r.error().code() == StatusCode::kNotFound) return AbortedError("the entry changed");
  return r.status();
}

// ---- MountTable ----

Result<std::unique_ptr<MountTable>> MountTable::Open(store::ObjectStore* store, Kind kind, std::vector<Mount> builtins) {
  for (Mount& b : builtins) b.builtin = true;
  std::string key = kind == Kind::kAuth ? "/sigil/core/auth" : "/sigil/core/mounts";
  std::unique_ptr<MountTable> t(new MountTable(store, kind, key, std::move(builtins)));
  // One read gives the table and the store revision it reflects; the watch starts there. (The
  // table's own revision is usually far older than what the watch history still holds after a
  // restart or a busy period, and a watch from it is refused.)
  SIGIL_ASSIGN_OR_RETURN(store::ObjectList l, store->List(key, "", 0));
  int64_t after = l.revision;
  for (const store::Object& o : l.items) {
    if (o.key == key) t->Apply(Json::parse(o.doc.view(), nullptr, false), o.revision);
  }
  // A stored mount at a built-in's path (one enabled there before that built-in existed) keeps
  // being served, with its data; the built-in steps aside until the mount is moved (sys/remount)
  // and the server restarted. Hiding the operator's mount would silently point its clients and
  // policies at something else.
  std::erase_if(t->builtins_, [&](const Mount& b) {
    for (const Mount& m : t->mounts_) {
      if (m.path == b.path) {
        log::Warn("a stored mount hides a built-in one; move it with sys/remount and restart to serve the built-in",
                  {{"path", b.path}, {"stored_type", m.type}, {"builtin_type", b.type}});
        return true;
      }
    }
    return false;
  });
  MountTable* self = t.get();
  SIGIL_ASSIGN_OR_RETURN(t->watch_, store->Watch(key, after, [self](const std::vector<store::ObjectEvent>& events, const Status& error) {
    for (const store::ObjectEvent& e : events) {
      if (e.key != self->key_) continue;  // a prefix watch also sees /sigil/core/mountsX
      if (e.type == store::ObjectEvent::Type::kPut && e.object) {
        self->Apply(Json::parse(e.object->doc.view(), nullptr, false), e.revision);
      } else {
        self->Apply(Json::array(), e.revision);
      }
    }
    if (!error.ok()) log::Error("mount table watch: the table failed to decrypt", {{"error", error.message()}});
  }));
  return t;
}

MountTable::~MountTable() { watch_.reset(); }

void MountTable::Apply(const Json& doc, int64_t revision) {
  std::vector<Mount> mounts;
  if (doc.is_array()) {
    for (const Json& j : doc) {
      if (std::optional<Mount> m = Mount::FromJson(j)) mounts.push_back(std::move(*m));
    }
  } else {
    log::Error("the stored mount table is not a list; no mounts are served", {{"key", key_}});
  }
  std::unique_lock<std::shared_mutex> l(mu_);
  if (revision <= revision_) return;
  revision_ = revision;
  mounts_ = std::move(mounts);
}

std::vector<Mount> MountTable::List() const {
  std::vector<Mount> out = builtins_;
  std::shared_lock<std::shared_mutex> l(mu_);
  out.insert(out.end(), mounts_.begin(), mounts_.end());
  std::sort(out.begin(), out.end(), [](const Mount& a, const Mount& b) { return a.path < b.path; });
  return out;
}

std::optional<Mount> MountTable::Find(std::string_view path) const {
  // On the path of every request under a mount: no copy or sort of the table, one copy out.
  std::string p = std::string(path) + "/";
  const Mount* best = nullptr;
  auto consider = [&](const Mount& m) {
    if (p.starts_with(m.path) && (best == nullptr || m.path.size() > best->path.size())) best = &m;
  };
  std::shared_lock<std::shared_mutex> l(mu_);
  for (const Mount& m : builtins_) consider(m);
  for (const Mount& m : mounts_) consider(m);
  return best ? std::optional<Mount>(*best) : std::nullopt;
}

Status MountTable::Modify(const std::function<Status(std::vector<Mount>*)>& change) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(key_));
    std::vector<Mount> mounts;
    if (o) {
      Json doc = Json::parse(o->doc.view(), nullptr, false);
      if (!doc.is_array()) return DataLossError("the stored mount table is not a list");
      for (const Json& j : doc) {
        if (std::optional<Mount> m = Mount::FromJson(j)) mounts.push_back(std::move(*m));
      }
    }
    SIGIL_RETURN_IF_ERROR(change(&mounts));
    Json doc = Json::array();
    for (const Mount& m : mounts) {
      Json j = {{"path", m.path}, {"type", m.type}, {"description", m.description}, {"accessor", m.accessor},
                {"uuid", m.uuid}, {"options", m.options}, {"default_lease_ttl", m.default_lease_ttl},
                {"max_lease_ttl", m.max_lease_ttl}};
      doc.push_back(std::move(j));
    }
    SecretBytes bytes(doc.dump());
    Result<int64_t> r = o ? store_->Update(key_, bytes, o->revision) : store_->Create(key_, bytes);
    if (r.ok()) {
      Apply(doc, *r);
      return OkStatus();
    }
    if (r.error().code() != StatusCode::kAborted && r.error().code() != StatusCode::kAlreadyExists) return r.error();
  }
  return AbortedError("the mount table kept changing; try again");
}

Result<std::string> MountTable::NormalisePath(std::string_view raw) const {
  std::string path(raw);
  while (path.starts_with("/")) path.erase(0, 1);
  if (!path.ends_with("/")) path += "/";
  bool control = std::any_of(path.begin(), path.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
  if (path == "/" || path.find("//") != std::string::npos || path.find("..") != std::string::npos ||
      path.starts_with("./") || path.find("/./") != std::string::npos || control ||
      path.find_first_of("*+?#%\\ ") != std::string::npos || path.size() > 128) {
    return InvalidArgumentError("invalid mount path");
  }
  if (kind_ == Kind::kSecrets) {
    for (std::string_view reserved : {"auth/", "cubbyhole/", "identity/"}) {
      if (path.starts_with(reserved)) return InvalidArgumentError("cannot mount under \"" + std::string(reserved) + "\"");
    }
  }
  return path;
}

Result<Mount> MountTable::Enable(Mount m) {
  SIGIL_ASSIGN_OR_RETURN(m.path, NormalisePath(m.path));
  m.uuid = crypto::RandomUuid();
  m.accessor = m.type + "_" + HexEncode(crypto::RandomBytes(4));
  Status st = Modify([&](std::vector<Mount>* mounts) -> Status {
    std::vector<Mount> all = *mounts;
    all.insert(all.end(), builtins_.begin(), builtins_.end());
    for (const Mount& e : all) {
      if (m.path.starts_with(e.path) || e.path.starts_with(m.path)) {
        return InvalidArgumentError("path is already in use at " + e.path);
      }
    }
    mounts->push_back(m);
    return OkStatus();
  });
  if (!st.ok()) return st;
  return m;
}

Status MountTable::Disable(std::string_view raw) {
  std::string path(raw);
  while (path.starts_with("/")) path.erase(0, 1);
  if (!path.ends_with("/")) path += "/";
  for (const Mount& b : builtins_) {
    if (b.path == path) return InvalidArgumentError("cannot unmount \"" + path + "\"");
  }
  std::optional<Mount> gone;
  SIGIL_RETURN_IF_ERROR(Modify([&](std::vector<Mount>* mounts) -> Status {
    auto it = std::find_if(mounts->begin(), mounts->end(), [&](const Mount& m) { return m.path == path; });
    if (it == mounts->end()) return OkStatus();
    gone = *it;
    mounts->erase(it);
    return OkStatus();
  }));
  if (!gone) return OkStatus();
  // The mount is gone from the table: nothing routes to its data any more. Delete the data.
  std::string prefix = "/sigil/logical/" + gone->uuid + "/";
  SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> keys, store_->Keys(prefix));
  for (const std::string& k : keys) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(k));
    if (o) SIGIL_RETURN_IF_ERROR(store_->Delete(k, o->revision).status());
  }
  return OkStatus();
}

Result<Mount> MountTable::Tune(std::string_view raw, const std::function<Status(Mount*)>& change) {
  std::string path(raw);
  while (path.starts_with("/")) path.erase(0, 1);
  if (!path.ends_with("/")) path += "/";
  for (const Mount& b : builtins_) {
    if (b.path == path) return InvalidArgumentError("tuning the built-in mount \"" + path + "\" is not supported by sigil");
  }
  Mount out;
  SIGIL_RETURN_IF_ERROR(Modify([&](std::vector<Mount>* mounts) -> Status {
    auto it = std::find_if(mounts->begin(), mounts->end(), [&](const Mount& m) { return m.path == path; });
    if (it == mounts->end()) return NotFoundError("no mount at \"" + path + "\"");
    Mount changed = *it;
    if (Status st = change(&changed); !st.ok()) return st;
    changed.path = it->path;
    changed.uuid = it->uuid;
    changed.accessor = it->accessor;
    *it = changed;
    out = changed;
    return OkStatus();
  }));
  return out;
}

Status MountTable::Remount(std::string_view raw_from, std::string_view raw_to) {
  std::string from(raw_from);
  while (from.starts_with("/")) from.erase(0, 1);
  if (!from.ends_with("/")) from += "/";
  SIGIL_ASSIGN_OR_RETURN(std::string to, NormalisePath(raw_to));
  for (const Mount& b : builtins_) {
    if (b.path == from || b.path == to) return InvalidArgumentError("cannot remount \"" + b.path + "\"");
  }
  return Modify([&](std::vector<Mount>* mounts) -> Status {
    auto it = std::find_if(mounts->begin(), mounts->end(), [&](const Mount& m) { return m.path == from; });
    if (it == mounts->end()) return NotFoundError("no mount at \"" + from + "\"");
    std::vector<Mount> others = builtins_;
    for (const Mount& m : *mounts) {
      if (m.path != from) others.push_back(m);
    }
    for (const Mount& e : others) {
      if (to.starts_with(e.path) || e.path.starts_with(to)) return InvalidArgumentError("path is already in use at " + e.path);
    }
    if (to.starts_with(from) || from.starts_with(to)) return InvalidArgumentError("existing mount at " + from);
    it->path = to;
    return OkStatus();
  });
}

}  // namespace sigil::engines
