// engines/mount_table.h: Vault's mount tables: which secrets engine or auth method serves which
// path prefix. Two tables, each one JSON document in the store (encrypted like every value):
// /sigil/core/mounts (secrets engines, under /v1/<path>) and /sigil/core/auth (auth methods,
// under /v1/auth/<path>). Each mount has a uuid, and its engine keeps its data under
// /sigil/logical/<uuid>/ (engines::Storage confines it there), so disabling a mount deletes
// exactly its data, and no engine can read another's keys.
//
// Built-in mounts (sys/ for secrets, token/ for auth) are listed and cannot be disabled. The
// table is loaded at Open and kept current by a store watch; a change made through this object
// applies at once. Thread-safe.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sigil/store/object_store.h"

namespace sigil::engines {

using Json = nlohmann::ordered_json;

struct Mount {
  std::string path = {};  // with its trailing '/', e.g. "userpass/"
  std::string type = {};  // e.g. "userpass", "token", "system"
  std::string description = {};
  std::string accessor = {};  // "<type>_<8 hex>"
  std::string uuid = {};
  Json options = nullptr;
  int64_t default_lease_ttl = 0, max_lease_ttl = 0;  // seconds; 0: the system's
  bool builtin = false;

  Json ToJson() const;  // as sys/mounts and sys/auth list an entry
  static std::optional<Mount> FromJson(const Json& j);
};

// An engine's view of the store: keys are relative to its mount's prefix and cannot leave it.
class Storage {
 public:
  Storage(store::ObjectStore* store, std::string prefix) : store_(store), prefix_(std::move(prefix)) {}
  // kInvalidArgument for a key that is empty, absolute, or has "." or ".." segments.
  Result<std::optional<store::Object>> Get(std::string_view key);
  Result<std::vector<std::string>> List(std::string_view prefix);  // relative names below `prefix`
  // With an expected revision: kAborted if the entry changed or went since; without: kAlreadyExists
  // if it exists.
  Result<int64_t> Put(std::string_view key, const SecretBytes& doc, std::optional<int64_t> expected_revision);
  Status Delete(std::string_view key);
  // Deletes `key` only if it is still at `revision`: kAborted otherwise.
  Status DeleteIf(std::string_view key, int64_t revision);
  const std::string& prefix() const { return prefix_; }

 private:
  Result<std::string> Key(std::string_view key) const;
  store::ObjectStore* store_;
  std::string prefix_;
};

class MountTable {
 public:
  enum class Kind { kSecrets, kAuth };
  static Result<std::unique_ptr<MountTable>> Open(store::ObjectStore* store, Kind kind, std::vector<Mount> builtins);
  ~MountTable();

  std::vector<Mount> List() const;
  // The mount serving `path` (relative to /v1/ for secrets, to /v1/auth/ for auth): the longest
  // mount path that is a prefix of path + "/".
  std::optional<Mount> Find(std::string_view path) const;
  // Adds a mount at m.path (normalised to end in '/'), with a fresh uuid and accessor.
  // kInvalidArgument: a bad path, one inside or around an existing mount ("path is already
  // in use at ...", as Vault), or (secrets) one under auth/, cubbyhole/ or identity/.
  Result<Mount> Enable(Mount m);
  // Removes the mount at `path` and deletes its data. kInvalidArgument for built-ins;
  // nothing to do when there is no such mount.
  Status Disable(std::string_view path);
  // Applies `change` to the mount at `path` (its path, uuid and accessor cannot change) and
  // stores it. kNotFound when no such mount; kInvalidArgument for built-ins and from `change`.
  Result<Mount> Tune(std::string_view path, const std::function<Status(Mount*)>& change);
  // Moves a mount to another path; its data stays where it is (it is keyed by uuid).
  // kInvalidArgument for built-ins or a path in use, kNotFound when `from` is not mounted.
  Status Remount(std::string_view from, std::string_view to);

  Storage StorageFor(const Mount& m) const { return Storage(store_, "/sigil/logical/" + m.uuid + "/"); }

 private:
  MountTable(store::ObjectStore* store, Kind kind, std::string key, std::vector<Mount> builtins)
      : store_(store), kind_(kind), key_(std::move(key)), builtins_(std::move(builtins)) {}
  void Apply(const Json& doc, int64_t revision);
  // "a/b" and "/a/b/" both as "a/b/"; kInvalidArgument for paths Vault would refuse and for
  // `reserved` prefixes.
  Result<std::string> NormalisePath(std::string_view raw) const;
  // Rewrites the stored table with `change` applied to the current one, compare-on-revision.
  Status Modify(const std::function<Status(std::vector<Mount>*)>& change);

  store::ObjectStore* store_;
  Kind kind_;
  std::string key_;
  std::vector<Mount> builtins_;
  mutable std::shared_mutex mu_;
  std::vector<Mount> mounts_;  // guarded by mu_: the stored ones
  int64_t revision_ = 0;       // guarded by mu_
  std::unique_ptr<storage::WatchHandle> watch_;
};

}  // namespace sigil::engines
