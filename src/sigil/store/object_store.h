// store/object_store.h: versioned objects over the barrier, for the API layers.
//
// An object is an opaque serialised document (JSON for Kubernetes objects) at a storage key.
// Its version is the store revision of its last write (Kubernetes resourceVersion). Every
// write is compare-on-revision, so concurrent writers cannot lose each other's updates.
// Documents hold secret values: they are SecretBytes in and out, and encrypted at rest by the
// barrier. Thread safety: all methods are thread-safe; writes block until durable.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sigil/barrier/barrier.h"

namespace sigil::store {

// The longest key the store takes (the backend's limit): a longer key is never found, and
// writing one fails.
inline constexpr size_t kMaxKeyBytes = storage::kMaxKeySize;

struct Object {
  std::string key;
  SecretBytes doc;
  int64_t revision = 0;         // last modification
  int64_t create_revision = 0;
};

struct ObjectList {
  std::vector<Object> items;
  int64_t revision = 0;  // the store revision the list reflects
  bool more = false;
};

struct ObjectEvent {
  enum class Type { kPut, kDelete };
  Type type;
  std::optional<Object> object;  // the new state (kPut); for kDelete only key and revision are set
  std::optional<Object> prev;    // the state before, if the key existed
  std::string key;
  int64_t revision = 0;
};
// Runs on the storage writer's thread with its watch lock held: quick, non-blocking, and must
// not call back into the store. `error` is set when an event's value failed to decrypt.
using ObjectWatchCallback = std::function<void(const std::vector<ObjectEvent>&, const Status& error)>;

// Writes that ride along with a primary write in the same transaction (version history,
// cascades). Every compare must hold too, or nothing is written and the call is kAborted.
struct SideEffects {
  struct Compare {
    std::string key;
    int64_t revision = 0;  // expected mod revision; 0 = the key must be absent
  };
  std::vector<Compare> compares;
  std::vector<std::pair<std::string, SecretBytes>> puts;
  std::vector<std::string> deletes;
};

class ObjectStore {
 public:
  explicit ObjectStore(barrier::Barrier* barrier) : barrier_(barrier) {}

  // nullopt if absent. kDataLoss if the stored value does not authenticate.
  Result<std::optional<Object>> Get(const std::string& key);
  Result<ObjectList> List(const std::string& prefix, const std::string& start_after, size_t limit);
  // The keys under `prefix`, in order, without reading (or decrypting) their values.
  Result<std::vector<std::string>> Keys(const std::string& prefix);

  // Creates `key`; kAlreadyExists if present, kAborted if a side compare failed. Returns the
  // new revision.
  Result<int64_t> Create(const std::string& key, const SecretBytes& doc, const SideEffects& also = {});
  // Replaces `key` if its revision is still `expected_revision`: kAborted if it changed (or a
  // side compare failed), kNotFound if it is gone. Returns the new revision.
  Result<int64_t> Update(const std::string& key, const SecretBytes& doc, int64_t expected_revision,
                         const SideEffects& also = {});
  // Deletes `key` at `expected_revision` (kAborted if it changed, kNotFound if absent), with the
  // side effects (for cascades such as a namespace's secrets). Returns the deletion revision.
  Result<int64_t> Delete(const std::string& key, int64_t expected_revision, const SideEffects& also = {});
  // Commits `txn` alone (no primary key): kAborted if one of its compares fails.
  Result<int64_t> Apply(const SideEffects& txn);

  // Every change under `prefix` after `after_revision`, in order; kOutOfRange if that history is
  // no longer kept. The watch ends when the handle is destroyed (never from inside `cb`).
  Result<std::unique_ptr<storage::WatchHandle>> Watch(const std::string& prefix, int64_t after_revision,
                                                      ObjectWatchCallback cb);

  int64_t CurrentRevision() { return barrier_->CurrentRevision(); }

 private:
  barrier::Barrier* barrier_;
};

}  // namespace sigil::store
