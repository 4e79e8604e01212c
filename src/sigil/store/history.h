// store/history.h: version history of objects (Kubernetes Secrets), which Kubernetes lacks.
//
// Every write of an object also records the object as written as its next version, in the
// same transaction, under /sigil/history/<object key>/<version, 20 digits>; a delete records a
// tombstone version. `keep` earlier versions are kept besides the newest; older ones are
// deleted in that same transaction. Records go through the barrier like everything else, so
// they are encrypted at rest with the keyring (never with an EncryptionConfiguration
// provider, whose rules cover /registry/ keys only).
//
// Record format (JSON): {"version":N,"operation":"create|update|delete|rollback|undelete",
// "time":T,"manager":M,"object":<the object's JSON>} ("object" absent for a delete). The
// record's store revision is the object's resourceVersion for that version. The Vault face's
// kubernetes/ mount amends records afterwards (Amend): "deleted_at":T marks a version
// soft-deleted (its object is kept, so it can be undeleted), "destroyed":true drops its object
// for good.
//
// Concurrency: Record reads the version keys, then adds a compare that the next version key
// is absent; with the caller's compare on the object itself, racing writers cannot both
// commit. Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sigil/store/object_store.h"

namespace sigil::store {

struct VersionMeta {
  std::string operation;  // create, update, delete, rollback
  std::string time;       // RFC 3339
  std::string manager;
};

struct Version {
  int64_t version = 0;
  VersionMeta meta;
  int64_t revision = 0;  // store revision of the write (the object's resourceVersion then)
  bool deleted = false;    // a tombstone: the object was deleted
  bool destroyed = false;  // its object was dropped for good (Amend)
  std::string deleted_at;  // soft-deleted at this time (Amend); "" when not
  SecretBytes doc;  // the object as written (empty for a delete, or when listed without docs)
};

class History {
 public:
  static constexpr int kDefaultKeep = 10;
  static constexpr int kMaxKeep = 1000;

  explicit History(ObjectStore* store) : store_(store) {}

  static std::string Prefix(const std::string& object_key) { return "/sigil/history" + object_key + "/"; }
  // The storage key of version `version` of `object_key`.
  static std::string KeyOf(const std::string& object_key, int64_t version);

  // Adds to `also` the writes that record `doc` (nullptr: a delete) as the next version of
  // `object_key`, keeping `keep` earlier versions (0: none, only the newest; any older are
  // removed). Returns the new version's number.
  Result<int64_t> Record(const std::string& object_key, const SecretBytes* doc, const VersionMeta& meta, int keep,
                         SideEffects* also);

  // Oldest first. Without `with_docs` only the metadata is decoded (doc left empty).
  Result<std::vector<Version>> List(const std::string& object_key, bool with_docs);
  Result<std::optional<Version>> Get(const std::string& object_key, int64_t version);

  enum class Amendment { kMarkDeleted, kClearDeleted, kDestroy };
  // Adds to `also` the rewrite of version `version` as `a` says, compared with the record's
  // revision (kMarkDeleted stamps `time`). Returns false, adding nothing, when there is nothing
  // to change: no such version, a tombstone, already so, or a destroyed version (which cannot
  // be marked or cleared).
  Result<bool> Amend(const std::string& object_key, int64_t version, Amendment a, const std::string& time, SideEffects* also);

  // Adds to `also` the deletion of every version of every object under `object_prefix`.
  Status PurgeUnder(const std::string& object_prefix, SideEffects* also);
  // Adds to `also` the deletion of every version of `object_key`.
  Status Purge(const std::string& object_key, SideEffects* also);

 private:
  static Result<Version> Decode(const Object& o, bool with_doc);
  ObjectStore* store_;
};

}  // namespace sigil::store
