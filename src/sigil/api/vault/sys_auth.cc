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
  return MountEntry(r, &table, path, {"local", "seal_wrap", "plugin_name", "plugin_version"}, [](engines::Mount* m) -> Status {
    if (m->type != "userpass" && m->type != "kubernetes" && m->type != "approle") {
      return InvalidArgumentError("auth method type \"" + m->type.substr(0, 64) +
                                  "\" is not supported by sigil (supported: approle, kubernetes, userpass)");
    }
    if (!m->options.is_null() && !m->options.empty()) return InvalidArgumentError("options are not supported for this auth method");
    return OkStatus();
  });
}

}  // namespace sigil::vault
