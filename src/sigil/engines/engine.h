// engines/engine.h: the secrets engine interface. A secrets engine serves the paths under its
// mount (/v1/<mount path>/...) once the Vault face has authenticated, authorized and audited
// the request (api/vault/): it sees the path relative to its mount, the operation and the body,
// and keeps its data in its mount's Storage, which cannot reach outside
// /sigil/logical/<mount uuid>/ (mount_table.h).
//
// Engine types are listed in one table (FindEngineType): each validates and normalises a
// mount's options when it is enabled or tuned, and makes the engine for a mount. The face may
// make an engine object per request or keep one, so an engine keeps nothing outside its
// Storage that a later object would need; one object may be called concurrently.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sigil/base/clock.h"
#include "sigil/engines/mount_table.h"

namespace sigil::engines {

enum class Operation { kRead, kList, kCreate, kUpdate, kDelete, kPatch };

struct Request {
  Operation op = Operation::kRead;
  std::string path;  // relative to the mount, without a leading '/'; "" for the mount itself
  Json data = Json::object();  // the body, always an object
  std::map<std::string, std::string> query;
  // The caller may create but not update (the ACL checked "create" after Exists said the path
  // was free): a write that finds the entry there after all must not replace it (403).
  bool create_only = false;
};

struct Response {
  int status = 200;     // 200 with `data`, 204, 404 (nothing there; `data` may describe it), or an error status
  Json data = nullptr;
  std::vector<std::string> warnings;
  std::string error;    // with an error status
  int64_t lease_duration = 0;  // seconds, for the envelope (KV v1 reports its TTL here)
  std::string lease_id;        // what is handed out has a lease (dynamic credentials)
  bool renewable = false;

  static Response Ok(Json data) { return Response{200, std::move(data), {}, {}, 0, {}, false}; }
  static Response NoContent() { return Response{204, nullptr, {}, {}, 0, {}, false}; }
  static Response NotFound() { return Response{404, nullptr, {}, {}, 0, {}, false}; }
  static Response Error(int status, std::string message) { return Response{status, nullptr, {}, std::move(message), 0, {}, false}; }
};

class SecretsEngine {
 public:
  virtual ~SecretsEngine() = default;
  // Vault's existence check, for writes: true when the write updates something that exists
  // (the caller needs "update"), false when it creates (the caller needs "create"). nullopt:
  // the path has no existence check (the caller needs "update").
  virtual Result<std::optional<bool>> Exists(const Request& r) {
    (void)r;
    return std::optional<bool>();
  }
  // Storage failures come back as errors (rendered by the face); everything the engine
  // decides (bad input, nothing found) is a Response.
  virtual Result<Response> Handle(const Request& r) = 0;
};

struct EngineType {
  std::string name;
  // Validates and normalises a mount's type and options at enable (`existing` null) and tune
  // (`existing` the mount as it is). kInvalidArgument with a message for the caller.
  std::function<Status(Mount* m, const Mount* existing)> prepare;
  std::function<std::unique_ptr<SecretsEngine>(const Mount& m, Storage storage, Clock* clock)> make;
};

// An entry path under a mount: not empty, not absolute, at most 1024 bytes, without empty,
// "." or ".." segments (a trailing '/' is a folder).
bool ValidEntryPath(std::string_view path);

// KV v2 request fields, shared by the kv engine and the kubernetes/ mount: `options.cas` (a
// non-negative integer, or its decimal string; nullopt when absent), and `versions` (a list of
// version numbers, each an integer or a non-negative decimal string). kInvalidArgument with
// Vault's message.
Result<std::optional<int64_t>> CasOption(const Json& body);
Result<std::vector<int64_t>> VersionsField(const Json& body);

// A LIST answer over the storage keys below `prefix` in `storage`: the entries and folders
// (ending in '/') directly below it, as Vault lists them; 404 when there are none.
Result<Response> ListFolder(Storage& storage, const std::string& prefix);

// The engine type for a mount type as Vault names them ("kv", and its aliases "kv-v1",
// "kv-v2" and "generic", which prepare() rewrites to "kv"); null if sigil has none.
const EngineType* FindEngineType(std::string_view type);
// The names sigil serves, for error messages.
std::string EngineTypeNames();

}  // namespace sigil::engines
