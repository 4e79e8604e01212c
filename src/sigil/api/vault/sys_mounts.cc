// api/vault/sys_mounts.cc: the secrets engine table (sys/mounts: list, read, enable, disable,
// tune; sys/remount), tuning of both tables (sys/mounts/<path>/tune, sys/auth/<path>/tune), and
// the requests under a secrets engine's mount, handed to its engine (engines/engine.h).
#include "sigil/api/vault/impl.h"
#include "sigil/api/vault/kubernetes_mount.h"
#include "sigil/engines/engine.h"

namespace sigil::vault {
namespace {

constexpr int64_t kSystemMaxTtl = 768 * 3600;  // Vault's default max_lease_ttl (32 days)

// A TTL field of a mount's config or tune body: seconds, a Go duration, or "system" (reset).
Result<std::optional<int64_t>> TtlField(const Json& body, std::string_view name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<int64_t>();
  if (it->is_string() && (it->get_ref<const std::string&>() == "system" || it->get_ref<const std::string&>().empty())) {
    return std::optional<int64_t>(0);
  }
  SIGIL_ASSIGN_OR_RETURN(std::optional<std::chrono::seconds> d, DurationField(body, name));
  return std::optional<int64_t>(d ? d->count() : 0);
}

}  // namespace

// Applies the TTLs a tune or enable body sets to `m`; Vault's checks.
Status ApplyMountConfig(const Json& config, engines::Mount* m) {
  SIGIL_ASSIGN_OR_RETURN(std::optional<int64_t> def, TtlField(config, "default_lease_ttl"));
  SIGIL_ASSIGN_OR_RETURN(std::optional<int64_t> max, TtlField(config, "max_lease_ttl"));
  if (def) m->default_lease_ttl = *def;
  if (max) m->max_lease_ttl = *max;
  int64_t eff_max = m->max_lease_ttl > 0 ? m->max_lease_ttl : kSystemMaxTtl;
  if (m->max_lease_ttl > kSystemMaxTtl) return InvalidArgumentError("max_lease_ttl cannot be greater than the system max lease ttl");
  // An unset default follows the max (the system's default is the system's max here).
  if (m->default_lease_ttl > eff_max) return InvalidArgumentError("default_lease_ttl cannot be greater than max_lease_ttl");
  return OkStatus();
}

namespace {

Reply TuneAnswer(const engines::Mount& m) {
  int64_t max = m.max_lease_ttl > 0 ? m.max_lease_ttl : kSystemMaxTtl;
  return SysInjected(Json{{"description", m.description},
                          {"default_lease_ttl", m.default_lease_ttl > 0 ? m.default_lease_ttl : max},
                          {"max_lease_ttl", max},
                          {"force_no_cache", false},
                          {"options", m.options}});
}

}  // namespace

const std::initializer_list<const char*> kUnsupportedMountConfig = {
    "audit_non_hmac_request_keys", "audit_non_hmac_response_keys", "listing_visibility", "passthrough_request_headers",
    "allowed_response_headers",    "token_type",                   "plugin_version",     "allowed_managed_keys",
    "user_lockout_config",         "force_no_cache"};

std::optional<Reply> VaultApi::Impl::Tune(const Request& r, engines::MountTable* table, std::string_view path,
                                          bool secrets) {
  std::string p(path);
  if (!p.ends_with("/")) p += "/";
  std::optional<engines::Mount> current;
  for (const engines::Mount& m : table->List()) {
    if (m.path == p) current = m;
  }
  if (r.op == Operation::kRead) {
    if (!current) return Error(400, "cannot fetch sysview for path \"" + p.substr(0, 128) + "\"");
    return TuneAnswer(*current);
  }
  if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
  if (std::optional<Reply> refused = RefuseUnsupported(r.body, kUnsupportedMountConfig)) return std::move(*refused);
  Result<std::optional<std::string>> description = StringField(r.body, "description");
  if (!description.ok()) return Error(400, description.error().message());
  Result<engines::Mount> tuned = table->Tune(p, [&](engines::Mount* m) -> Status {
    SIGIL_RETURN_IF_ERROR(ApplyMountConfig(r.body, m));
    if (*description) m->description = **description;
    if (auto it = r.body.find("options"); it != r.body.end() && !it->is_null()) {
      if (!it->is_object()) return InvalidArgumentError("options must be an object");
      if (!secrets) return InvalidArgumentError("options are not supported for this auth method");
      const engines::EngineType* type = engines::FindEngineType(m->type);
      if (type == nullptr) return InvalidArgumentError("unknown mount type");
      engines::Mount before = *m;
      Json merged = m->options.is_object() ? m->options : Json::object();
      for (auto& [k, v] : it->items()) merged[k] = v;
      m->options = merged;
      return type->prepare(m, &before);
    }
    return OkStatus();
  });
  if (!tuned.ok()) {
    if (tuned.error().code() == StatusCode::kInvalidArgument || tuned.error().code() == StatusCode::kNotFound) {
      return Error(400, tuned.error().message());
    }
    return errors_.Render(tuned.error(), core::RequestInfo{});
  }
  return NoContent();
}

std::optional<Reply> VaultApi::Impl::SysMounts(const Request& r) {
  if (options_.secret_mounts == nullptr) return std::nullopt;
  engines::MountTable& table = *options_.secret_mounts;
  if (r.path == "sys/remount") {
    if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
    Result<std::optional<std::string>> from = StringField(r.body, "from");
    Result<std::optional<std::string>> to = StringField(r.body, "to");
    if (!from.ok()) return Error(400, from.error().message());
    if (!to.ok()) return Error(400, to.error().message());
    if (!*from || !*to || (*from)->empty() || (*to)->empty()) return Error(400, "both 'from' and 'to' must be specified");
    if ((*from)->starts_with("auth/") || (*to)->starts_with("auth/")) {
      return Error(400, "moving auth methods is not supported by sigil");
    }
    Status st = table.Remount(**from, **to);
    if (st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kNotFound) return Error(400, st.message());
    if (!st.ok()) return errors_.Render(st, core::RequestInfo{});
    return NoContent();
  }
  if (r.path != "sys/mounts" && !r.path.starts_with("sys/mounts/")) return std::nullopt;
  std::string path = r.path.size() > 11 ? r.path.substr(11) : "";
  if (path.empty()) {
    if (r.op != Operation::kRead) return Error(405, "unsupported operation");
    Json data = Json::object();
    for (const engines::Mount& m : table.List()) data[m.path] = m.ToJson();
    return SysInjected(std::move(data));
  }
  if (path.ends_with("/tune")) return Tune(r, &table, std::string_view(path).substr(0, path.size() - 5), true);
  return MountEntry(r, &table, path, {"local", "seal_wrap", "external_entropy_access", "plugin_name", "plugin_version"},
                    [this](engines::Mount* m) -> Status {
                      if (m->type == database::kMountType && options_.database != nullptr) return database::Service::Prepare(m);
                      const engines::EngineType* et = engines::FindEngineType(m->type);
                      if (et == nullptr) {
                        return InvalidArgumentError("secrets engine type \"" + m->type.substr(0, 64) +
                                                    "\" is not supported by sigil (supported: " + engines::EngineTypeNames() + ")");
                      }
                      return et->prepare(m, nullptr);
                    });
}

Reply VaultApi::Impl::MountEntry(const Request& r, engines::MountTable* table, const std::string& path,
                                 std::initializer_list<const char*> unsupported,
                                 const std::function<Status(engines::Mount*)>& check_type) {
  switch (r.op) {
    case Operation::kWrite: {
      if (std::optional<Reply> refused = RefuseUnsupported(r.body, unsupported)) return std::move(*refused);
      Result<std::optional<std::string>> type = StringField(r.body, "type");
      if (!type.ok()) return Error(400, type.error().message());
      if (!*type || (*type)->empty()) return Error(400, "backend type must be specified as a string");
      Result<std::optional<std::string>> description = StringField(r.body, "description");
      if (!description.ok()) return Error(400, description.error().message());
      engines::Mount m;
      m.path = path;
      m.type = **type;
      m.description = description->value_or("");
      if (auto it = r.body.find("options"); it != r.body.end() && !it->is_null()) {
        if (!it->is_object()) return Error(400, "options must be an object");
        m.options = *it;
      }
      if (auto it = r.body.find("config"); it != r.body.end() && !it->is_null()) {
        if (!it->is_object()) return Error(400, "config must be an object");
        if (std::optional<Reply> refused = RefuseUnsupported(*it, kUnsupportedMountConfig)) return std::move(*refused);
        if (Status st = ApplyMountConfig(*it, &m); !st.ok()) return Error(400, st.message());
      }
      if (Status st = check_type(&m); !st.ok()) return Error(400, st.message());
      Result<engines::Mount> made = table->Enable(std::move(m));
      if (!made.ok()) {
        if (made.error().code() == StatusCode::kInvalidArgument) return Error(400, made.error().message());
        return errors_.Render(made.error(), core::RequestInfo{});
      }
      return NoContent();
    }
    case Operation::kDelete: {
      // As Vault: what the mount handed out is revoked before it goes (its data, which the
      // revocations need, goes with it); a revocation that fails keeps the mount.
      if (table == options_.secret_mounts && options_.leases != nullptr) {
        std::string p = path.ends_with("/") ? path : path + "/";
        bool mounted = false;
        for (const engines::Mount& m : table->List()) mounted = mounted || (m.path == p && !m.builtin);
        if (mounted) {
          Result<size_t> revoked = options_.leases->RevokePrefix(p, /*force=*/false, /*sync=*/true);
          if (!revoked.ok()) return Error(400, "failed to revoke \"" + p + "\" (" + revoked.error().message() + ")");
        }
      }
      std::string disabled_uuid;
      for (const engines::Mount& m : table->List()) {
        if (m.path == (path.ends_with("/") ? path : path + "/") && m.type == database::kMountType) disabled_uuid = m.uuid;
      }
      Status st = table->Disable(path);
      if (st.code() == StatusCode::kInvalidArgument) return Error(400, st.message());
      if (!st.ok()) return errors_.Render(st, core::RequestInfo{});
      if (!disabled_uuid.empty() && options_.database != nullptr) options_.database->ForgetMount(disabled_uuid);
      return NoContent();
    }
    case Operation::kRead: {
      std::string p = path.ends_with("/") ? path : path + "/";
      for (const engines::Mount& m : table->List()) {
        if (m.path == p) return SysInjected(m.ToJson());
      }
      return Error(400, "no matching mount");
    }
    default:
      return Error(405, "unsupported operation");
  }
}

std::optional<engines::Mount> VaultApi::Impl::EngineMount(std::string_view path) const {
  if (options_.secret_mounts == nullptr || path.starts_with("sys/") || path.starts_with("auth/")) return std::nullopt;
  std::optional<engines::Mount> m = options_.secret_mounts->Find(path);
  if (!m) return std::nullopt;
  if (m->type == kKubernetesMountType) return options_.registry != nullptr ? m : std::nullopt;
  if (m->type == database::kMountType) return options_.database != nullptr ? m : std::nullopt;
  if (engines::FindEngineType(m->type) == nullptr) return std::nullopt;
  return m;
}

engines::Request VaultApi::Impl::EngineRequest(const Request& r, const engines::Mount& m) {
  engines::Request er;
  er.path = r.path.size() > m.path.size() ? r.path.substr(m.path.size()) : std::string();
  er.data = r.body;
  er.query = r.query;
  switch (r.op) {
    case Operation::kRead: er.op = engines::Operation::kRead; break;
    case Operation::kList: er.op = engines::Operation::kList; break;
    case Operation::kWrite: er.op = engines::Operation::kUpdate; break;
    case Operation::kDelete: er.op = engines::Operation::kDelete; break;
    case Operation::kPatch: er.op = engines::Operation::kPatch; break;
  }
  return er;
}

std::unique_ptr<engines::SecretsEngine> VaultApi::Impl::EngineFor(const engines::Mount& m, const Request& r,
                                                                  const Identity* who) const {
  if (m.type == kKubernetesMountType) {
    if (options_.registry == nullptr) return nullptr;
    return NewKubernetesMount(KubernetesMountContext{options_.registry, options_.rbac, &kube_pipeline_, clock_, who, r.audit_uri,
                                                     r.user_agent, r.remote});
  }
  if (m.type == database::kMountType) {
    if (options_.database == nullptr) return nullptr;
    database::Caller caller;
    if (who != nullptr) {
      caller.token_key = who->token_key;
      if (auto it = who->extra.find("sigil.dev/vault-display-name"); it != who->extra.end() && !it->second.empty()) {
        caller.display_name = it->second.front();
      } else if (std::find(who->policies.begin(), who->policies.end(), "root") != who->policies.end() ||
                 std::find(who->groups.begin(), who->groups.end(), "system:masters") != who->groups.end()) {
        caller.display_name = "root";  // sigil's own root token, as Vault names its root token
      }
    }
    return options_.database->Engine(m, std::move(caller));
  }
  const engines::EngineType* type = engines::FindEngineType(m.type);
  return type ? type->make(m, options_.secret_mounts->StorageFor(m), clock_) : nullptr;
}

Reply VaultApi::Impl::Logical(const Request& r, const engines::Mount& m, const Identity* who) {
  std::unique_ptr<engines::SecretsEngine> engine = EngineFor(m, r, who);
  if (!engine) return Error(404, "no handler for route \"" + r.path.substr(0, 256) + "\". route entry not found.");
  engines::Request er = EngineRequest(r, m);
  if (er.op == engines::Operation::kUpdate) {
    Result<std::optional<bool>> exists = engine->Exists(er);
    if (exists.ok() && exists->has_value() && !**exists) {
      er.op = engines::Operation::kCreate;
      // The ACL checked this write when the entry existed (update) or not (create); it may have
      // changed since. A creation needs "create", whatever was checked; and if the caller may
      // not update, the entry must still be absent when the engine writes.
      authz::Acl acl = who != nullptr ? options_.policies->AclFor(*who) : authz::Acl();
      if (who == nullptr || !acl.Allows(r.path, authz::kCapCreate, false)) return Error(403, "permission denied");
      er.create_only = !acl.Allows(r.path, authz::kCapUpdate, false);
    }
  }
  Result<engines::Response> res = engine->Handle(er);
  if (!res.ok()) return errors_.Render(res.error(), core::RequestInfo{});
  switch (res->status) {
    case 200:
      if (!res->lease_id.empty()) return LeasedEnvelope(std::move(res->data), res->lease_id, res->renewable, res->lease_duration, res->warnings);
      return LogicalEnvelope(std::move(res->data), res->lease_duration, res->warnings);
    case 204: return NoContent(res->warnings);
    case 404:  // with data: what Vault shows of a deleted or destroyed KV version
      return res->data.is_null() ? NotFound() : LogicalEnvelope(std::move(res->data), 0, res->warnings, 404);
    default: return Error(res->status, res->error);
  }
}

}  // namespace sigil::vault
