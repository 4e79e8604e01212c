// api/vault/sys_auth.cc: the auth method table (sys/auth): list, enable (with the lease TTLs of
// its config), disable, read; tuning is in sys_mounts.cc. Enabling needs sudo on
// sys/auth/<path>, as Vault. sigil's auth methods: token (built in, at token/)
// userpass, kubernetes and approle; other types are refused until they exist.
#include "sigil/api/vault/impl.h"

namespace sigil::vault {

std::optional<Reply> VaultApi::Impl::SysAuth(const Request& r) {
  if (r.path != "sys/auth" && !r.path.starts_with("sys/auth/")) return std::nullopt;
  if (options_.auth_mounts == nullptr) return std::nullopt;
  engines::MountTable& table = *options_.auth_mounts;
  std::string path = r.path.size() > 9 ? r.path.substr(9) : "";
  if (path.empty()) {
    if (r.op != Operation::kRead) return Error(405, "unsupported operation");
    Json data = Json::object();
    for (const engines::Mount& m : table.List()) data[m.path] = m.ToJson();
    return SysInjected(std::move(data));
  }
  if (path.ends_with("/tune")) return Tune(r, &table, std::string_view(path).substr(0, path.size() - 5), false);
  switch (r.op) {
    case Operation::kWrite: {
      Result<std::optional<std::string>> type = StringField(r.body, "type");
      if (!type.ok()) return Error(400, type.error().message());
      if (!*type || (*type)->empty()) return Error(400, "backend type must be specified as a string");
      if (**type != "userpass" && **type != "kubernetes" && **type != "approle") {
        return Error(400, "auth method type \"" + (*type)->substr(0, 64) +
                              "\" is not supported by sigil (supported: approle, kubernetes, userpass)");
      }
      Result<std::optional<std::string>> description = StringField(r.body, "description");
      if (!description.ok()) return Error(400, description.error().message());
      engines::Mount m;
      m.path = path;
      m.type = **type;
      m.description = description->value_or("");
      if (std::optional<Reply> refused = RefuseUnsupported(r.body, {"local", "seal_wrap", "plugin_name", "plugin_version"})) {
        return std::move(*refused);
      }
      if (auto it = r.body.find("config"); it != r.body.end() && !it->is_null()) {
        if (!it->is_object()) return Error(400, "config must be an object");
        if (std::optional<Reply> refused = RefuseUnsupported(*it, kUnsupportedMountConfig)) return std::move(*refused);
        if (Status st = ApplyMountConfig(*it, &m); !st.ok()) return Error(400, st.message());
      }
      Result<engines::Mount> made = table.Enable(std::move(m));
      if (!made.ok()) {
        if (made.error().code() == StatusCode::kInvalidArgument) return Error(400, made.error().message());
        return errors_.Render(made.error(), core::RequestInfo{});
      }
      return NoContent();
    }
    case Operation::kDelete: {
      Status st = table.Disable(path);
      if (st.code() == StatusCode::kInvalidArgument) return Error(400, st.message());
      if (!st.ok()) return errors_.Render(st, core::RequestInfo{});
      return NoContent();
    }
    case Operation::kRead: {
      std::string p = path.ends_with("/") ? path : path + "/";
      for (const engines::Mount& m : table.List()) {
        if (m.path == p) return SysInjected(m.ToJson());
      }
      return Error(400, "no matching mount");
    }
    default:
      return Error(405, "unsupported operation");
  }
}

}  // namespace sigil::vault
