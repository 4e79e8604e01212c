// registry/registry.h: Kubernetes objects at kube-apiserver's storage keys, independent of HTTP.
//
// The one place that knows the rules of a write: a kind's strategy prepares and validates the
// object, an admission hook may refuse it (RBAC escalation prevention lives above, in the face),
// a Secret's write records its version in the same transaction (store/history.h), an
// unconditional update that lost a race is retried on the new version, and a namespaced create
// compares its namespace's revision in the same transaction. Deleting a namespace first marks it
// Terminating (a new revision, so a create that read the namespace before cannot commit, and a
// create that reads it after is refused), then deletes it with every object and history record
// inside in one transaction that compares each of them, so a racing write makes it retry rather
// than leave an orphan; a namespace made again later inherits nothing. A namespace left
// Terminating by a crash is finished by the next delete.
//
// Objects are JSON documents stored without resourceVersion (it is the store revision of the
// last write). Documents hold secret values (a Secret's data). A stored document that is not
// JSON is a 500 with a fixed message, and the server log names its key.
//
// Every method is synchronous and thread-safe; writes block until durable.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "sigil/base/clock.h"
#include "sigil/registry/resource.h"
#include "sigil/registry/selectors.h"
#include "sigil/store/history.h"
#include "sigil/store/object_store.h"

namespace sigil::registry {

// A value or the Kubernetes API error to answer (metav1.Status, as kube-apiserver's registry
// returns StatusError). Storage failures arrive as errors too (FromStatus).
template <typename T>
class Outcome {
 public:
  Outcome(T v) : v_(std::move(v)) {}                // NOLINT: implicit, like Result
  Outcome(ApiError e) : v_(std::move(e)) {}         // NOLINT
  bool ok() const { return v_.index() == 0; }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }
  const ApiError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, ApiError> v_;
};

// The one mapping of an infrastructure failure (storage, barrier) to a Kubernetes error:
// kResourceExhausted 507, kUnavailable 503, kDataLoss 500 with a fixed message (logged with the
// detail), anything else 500.
ApiError FromStatus(const Status& s);

// An object as stored, with the revision of its last write.
struct Stored {
  Json obj;               // without metadata.resourceVersion
  int64_t revision = 0;
  // The object as the API shows it: resourceVersion set, metadata in Go's field order.
  Json Rendered() const;
};

// Renders `obj` with resourceVersion `revision` and metadata in Go's field order.
Json WithResourceVersion(Json obj, int64_t revision);

// `obj` serialised for the store (the JSON text, wiped once copied into the result).
SecretBytes Serialize(const Json& obj);

// The stored form of `obj`: no resourceVersion (it is the revision), metadata in Go's order.
Json StoredForm(Json obj);

struct Written {
  Json obj;  // rendered, with its new resourceVersion
  int64_t revision = 0;
  std::vector<std::string> warnings;
  std::vector<std::string> deleted_keys = {};  // DeleteNamespace: every object key the cascade deleted
  int64_t version = 0;  // a Secret's write: the history version it recorded
};

struct WriteOptions {
  std::string field_validation = "Warn";  // Strict, Warn or Ignore
  bool dry_run = false;
  std::string manager;                    // recorded in version history
  std::string operation = "update";       // create, update, rollback: recorded in version history
  // Admission: may refuse the object about to be written (RBAC escalation prevention).
  std::function<std::optional<ApiError>(const Json& obj)> admit;
  // Field management: updates obj.metadata.managedFields given the object before (null on
  // create); runs after validation, before the object is stored.
  std::function<void(const Json* old_obj, Json* obj)> track;
};

struct ListOptions {
  LabelSelector labels;
  FieldSelector fields;
  size_t limit = 0;           // 0: everything
  std::string continue_token;
  int64_t exact_revision = 0;  // resourceVersionMatch=Exact: 410 unless the store is there
};

// Whether `obj` (a rendered object of `r`) matches the label and field selectors of `o`.
bool Matches(const Resource& r, const ListOptions& o, const Json& obj);

struct ListPage {
  std::vector<Json> items;  // rendered
  int64_t revision = 0;
  std::string continue_token;
  std::vector<int64_t> deletion_revisions;  // DeleteCollection: the revision that deleted items[i]
};

struct Preconditions {
  std::optional<std::string> uid, resource_version;
};

// One change seen by a watch, decoded. `now` is absent for a delete; `before` when the key did
// not exist. Objects are rendered with the event's revision and hold secret values.
struct WatchEvent {
  std::optional<Json> now, before;
  int64_t revision = 0;
};
// Runs on the storage writer's thread: quick, non-blocking, must not call the registry.
// `error` is set when a stored value failed to decrypt or decode; the watch is then over.
using WatchCallback = std::function<void(const std::vector<WatchEvent>&, const Status& error)>;
// Ends its watch when destroyed (never from inside the callback).
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

// One version of a Secret (sigil's history).
struct SecretVersion {
  int64_t version = 0;
  std::string operation, time, manager;
  int64_t revision = 0;
  bool deleted = false;     // a tombstone: the Secret was deleted
  bool destroyed = false;   // its values were destroyed for good (the Vault face's destroy)
  std::string deleted_at;   // soft-deleted through the Vault face at this time; "" when not
  std::optional<Json> obj;  // rendered; absent for a deletion or a destroyed version
};

class Registry {
 public:
  struct Options {
    // Earlier versions kept per Secret unless the namespace's sigil.dev/history-versions
    // annotation says otherwise; 0 turns history off.
    int history_versions = 10;
  };
  static constexpr int kMaxUpdateRetries = 100;
  static constexpr const char* kHistoryAnnotation = "sigil.dev/history-versions";

  Registry(store::ObjectStore* store, Clock* clock, Options options);

  Outcome<Stored> Get(const Resource& r, const std::string& ns, const std::string& name);
  Outcome<ListPage> List(const Resource& r, const std::string& ns, const ListOptions& o);
  // Creates `in` (a client's object) in `ns`; generateName, uid and creationTimestamp are filled.
  Outcome<Written> Create(const Resource& r, const std::string& ns, const Json& in, const WriteOptions& o);
  // Replaces ns/name by what `mutate` makes of the current object (rendered, with its
  // resourceVersion). A resourceVersion in the result must match (else 409); without one a lost
  // race is retried on the new version. When the object is absent and `on_missing` is set, the
  // object it returns (complete and prepared, managedFields included) is created instead.
  using Mutation = std::function<Outcome<Json>(const Stored& current)>;
  Outcome<Written> Update(const Resource& r, const std::string& ns, const std::string& name, const Mutation& mutate,
                          const WriteOptions& o, const std::function<Outcome<Json>()>& on_missing = nullptr);
  // Deletes ns/name; returns the object as it was.
  Outcome<Stored> Delete(const Resource& r, const std::string& ns, const std::string& name, const Preconditions& p,
                         const WriteOptions& o);
  // Deletes every object the selectors match, one by one (as kube-apiserver: not atomic).
  // Returns the deleted objects, rendered, and the revision of the listing.
  Outcome<ListPage> DeleteCollection(const Resource& r, const std::string& ns, const ListOptions& sel, const WriteOptions& o);

  // Watches changes of `r` in `ns` ("" for all) after `after_revision`. kOutOfRange when that
  // history is gone (Kubernetes: 410).
  Result<std::unique_ptr<WatchHandle>> Watch(const Resource& r, const std::string& ns, int64_t after_revision,
                                             WatchCallback cb);
  int64_t CurrentRevision();

  // ---- namespaces (registry/namespaces.cc) ----
  // A new Namespace object (uid, creationTimestamp, the kubernetes.io/metadata.name label).
  Json NewNamespace(const std::string& name, const Json& labels, const Json& annotations);
  Json DefaultServiceAccount(const std::string& ns);
  Outcome<Written> CreateNamespace(const Json& obj, bool dry_run);
  // Labels and annotations only change; `mutate` gets the live namespace and returns the next.
  Outcome<Written> UpdateNamespace(const std::string& name, const Mutation& mutate, bool dry_run);
  // Marks the namespace Terminating, then deletes it with everything inside.
  Outcome<Written> DeleteNamespace(const std::string& name);
  Status EnsureDefaultNamespaces();
  // Validates a namespace object (name, labels, annotations, the history annotation).
  FieldErrors ValidateNamespace(const Json& obj);

  // ---- Secret version history (registry/secret_history.cc) ----
  // Oldest first; nullopt when the Secret never existed (no versions and no object). `keep` is
  // the namespace's setting; `current` the version that is the Secret as it stands, if any.
  struct Versions {
    std::vector<SecretVersion> versions;
    int keep = 0;
    std::optional<int64_t> current;
  };
  // Without `with_objects` the versions' objects are neither decrypted into JSON nor returned
  // (obj stays empty): for callers that need only the numbers, times and flags.
  Outcome<std::optional<Versions>> ListVersions(const std::string& ns, const std::string& name, bool with_objects = true);
  Outcome<std::optional<SecretVersion>> GetVersion(const std::string& ns, const std::string& name, int64_t version);
  // Writes a new version equal to `version` in data, labels, annotations, immutability and
  // type; re-creates a deleted Secret (201 then). The new version's operation is "rollback"
  // unless `o.operation` names another ("undelete").
  // Writes new values for the keys the Secret's rotation policy names (registry/rotation.h)
  // and sets sigil.dev/rotated-at; the history records operation "rotate". With `only_if_due`
  // nothing is written (revision 0 in the result) unless the policy says it is due. `*next`
  // receives when the Secret is next due, nullopt when it is gone or has no policy (then, on
  // demand, 404 or 400).
  Outcome<Written> RotateSecret(const std::string& ns, const std::string& name, const WriteOptions& o, bool only_if_due,
                                std::optional<Clock::TimePoint>* next);
  Outcome<Written> Rollback(const std::string& ns, const std::string& name, int64_t version, const WriteOptions& o,
                            bool* created);

  // The Vault face's changes to recorded versions (kubernetes/ mount), each in one transaction:
  // kSoftDelete marks versions deleted (their values kept), kUndelete clears the mark, kDestroy
  // drops their values for good. When `versions` includes the version the Secret stands at,
  // kSoftDelete and kDestroy delete the Secret too (a tombstone version is recorded, watchers
  // see it go). Versions that do not exist, or have nothing to change, are skipped. Returns the
  // number of versions changed.
  // `admit_removal`, when set, is asked (on every attempt, with the state the commit compares)
  // before the change deletes the Secret; an error it returns is the answer and nothing changes.
  enum class VersionChange { kSoftDelete, kUndelete, kDestroy };
  Outcome<int> ChangeVersions(const std::string& ns, const std::string& name, const std::vector<int64_t>& versions,
                              VersionChange change, const WriteOptions& o,
                              const std::function<std::optional<ApiError>()>& admit_removal = nullptr);
  // The names of the Secrets in `ns` that exist or have recorded versions (deleted ones whose
  // history is kept), sorted; and the names of the namespaces. Keys only: nothing is decrypted.
  Outcome<std::vector<std::string>> SecretNames(const std::string& ns);
  Outcome<std::vector<std::string>> NamespaceNames();
  // Deletes the Secret, if it exists, and every recorded version of it, in one transaction.
  // Returns whether there was anything to delete.
  Outcome<bool> DeleteWithHistory(const std::string& ns, const std::string& name);

 private:
  std::string Now() const;
  // A stored document, or a 500 (logged with its key) when it is not one: the barrier
  // authenticated it, so a bad one is sigil's fault, never the client's.
  static Outcome<Json> Parse(const store::Object& o);
  // The namespace's object and revision; 404 when absent.
  Outcome<Stored> Namespace(const std::string& ns);
  Result<int> HistoryVersions(const std::string& ns);
  Result<int64_t> RecordVersion(const std::string& ns, const std::string& name, const SecretBytes* doc, const std::string& operation,
                                const std::string& manager, store::SideEffects* also);
  // Stores a new object (its namespace compared, a Secret's first version recorded).
  Outcome<Written> CreateStored(const Resource& r, const std::string& ns, Json obj, const WriteOptions& o);
  // The shared end of Update: `next` replaces `current`. nullopt: lost an unconditional race.
  std::optional<Outcome<Written>> Replace(const Resource& r, const std::string& ns, const std::string& name, const Json& next,
                                          const Stored& current, const WriteOptions& o);

  store::ObjectStore* store_;
  Clock* clock_;
  store::History history_;
  Options options_;
};

}  // namespace sigil::registry
