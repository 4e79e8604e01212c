// storage/backend.h: the untrusted byte store under the barrier.
//
// A Backend maps keys to opaque values (always ciphertext: only the barrier calls it) and keeps
// one global revision that increases by one with every commit that changes something, as etcd's
// does. Each stored key carries the revision that created it and the one that last modified it;
// the modification revision becomes a Kubernetes object's resourceVersion.
//
// Contracts shared by every implementation (checked by backend_conformance.h):
// - Commit is atomic and serialisable: either every op of a transaction is applied at one new
//   revision, or none is. It returns only once the change is durable for that backend (LMDB:
//   after the fsync of the batch that holds it).
// - Reads see only committed data. Range returns keys in byte order.
// - Watch delivers every change after a revision exactly once and in revision order.
// Thread safety: every method may be called from any thread concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sigil/base/result.h"

namespace sigil::storage {

// The longest key every backend accepts (LMDB's default MDB_MAXKEYSIZE). Longer keys are
// kInvalidArgument. Kubernetes keys are at most ~340 bytes (/registry/secrets/<63>/<253>).
inline constexpr size_t kMaxKeySize = 511;

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
};

struct RangeRequest {
  std::string prefix;       // keys that start with this; empty = all keys
  std::string start_after;  // continue token: only keys strictly greater than this
  size_t limit = 0;         // 0 = no limit
  bool keys_only = false;   // values are left empty
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  bool more = false;      // more keys match after the last one returned
  int64_t revision = 0;   // the store revision this read observed
};

// A condition on one key: its mod_revision must equal `mod_revision`; 0 means "must not exist".
struct Compare {
  std::string key;
  int64_t mod_revision = 0;
};

struct Op {
  enum class Kind { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;  // for kPut

  static Op Put(std::string k, std::string v) { return Op{Kind::kPut, std::move(k), std::move(v)}; }
  static Op Delete(std::string k) { return Op{Kind::kDelete, std::move(k), {}}; }
};

struct Txn {
  std::vector<Compare> compares;  // all must hold, or nothing is applied
  std::vector<Op> ops;            // applied in order; deleting a missing key is a no-op
};

struct TxnResult {
  bool succeeded = false;  // false: a compare failed and nothing was applied
  int64_t revision = 0;    // the commit's revision if it changed something, else the current one
};

struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;                  // for kDelete: key, empty value, mod_revision = deletion revision
  std::optional<KeyValue> prev; // the value before this event, if the key existed
};

// Receives events in revision order. Called on a backend thread with the backend's watch lock
// held: it must return quickly, must not block, and must not call back into the backend or
// destroy its own WatchHandle.
using WatchCallback = std::function<void(const std::vector<Event>&)>;

// Cancels the watch when destroyed; no callback runs after the destructor returns.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

using CommitCallback = std::function<void(Result<TxnResult>)>;

class Backend {
 public:
  virtual ~Backend() = default;

  // The value at `key`, or nullopt if absent. Errors: kInvalidArgument (key too long for the
  // backend), kUnavailable (backend failed), kInternal.
  virtual Result<std::optional<KeyValue>> Get(std::string_view key) = 0;

  virtual Result<RangeResult> Range(const RangeRequest& request) = 0;

  // Applies `txn` atomically and durably. Errors (nothing applied): kInvalidArgument (bad key),
  // kResourceExhausted (store or disk full), kUnavailable (the backend has failed, e.g. an
  // fsync error; it refuses all writes until restarted).
  virtual Result<TxnResult> Commit(Txn txn) = 0;

  // As Commit, but returns at once; `done` runs on a backend thread after the commit is durable
  // (or has failed). `done` must not block.
  virtual void CommitAsync(Txn txn, CommitCallback done) = 0;

  // Delivers every change to keys under `prefix` with revision > `after_revision`. Errors:
  // kOutOfRange if changes after `after_revision` are no longer retained (Kubernetes: 410 Gone).
  virtual Result<std::unique_ptr<WatchHandle>> Watch(std::string prefix, int64_t after_revision,
                                                     WatchCallback callback) = 0;

  virtual int64_t CurrentRevision() = 0;

  // OK, or why the backend refuses writes (for /readyz).
  virtual Status Health() = 0;
};

}  // namespace sigil::storage
