// api/vault/sys_audit.cc: sys/audit (the trail's sinks, as Vault lists audit devices: a file
// sink is device "file/", standard output "stdout/") and sys/audit-hash/<device>, the hash the
// trail shows for a value (as `sigil audit hash`). sigil has one trail whatever the device
// name; Vault's per-device salts are one per-server key here. Sinks are configured in the
// server's configuration file: enabling or disabling a device through the API is refused (as
// OpenBao refuses it unless its configuration allows it).
#include "sigil/api/vault/impl.h"

namespace sigil::vault {

std::optional<Reply> VaultApi::Impl::SysAudit(const Request& r) {
  if (r.path == "sys/audit" || (r.path.starts_with("sys/audit/"))) {
    if (r.path == "sys/audit") {
      if (r.op != Operation::kRead) return Error(405, "unsupported operation");
      Json data = Json::object();
      if (options_.auditor != nullptr) {
        int files = 0;
        for (const audit::SinkOptions& s : options_.auditor->log()->sinks()) {
          bool out = s.path == "-";
          std::string name = out ? "stdout/" : files++ == 0 ? "file/" : "file" + std::to_string(files) + "/";
          data[name] = Json{{"type", "file"},
                            {"description", out ? "the audit trail on standard output" : "the audit trail"},
                            {"options", {{"file_path", out ? "stdout" : s.path}}},
                            {"local", false},
                            {"path", name}};
        }
      }
      return SysInjected(std::move(data));
    }
    return Error(400, "audit devices are set in sigil's configuration file (audit.log_path, audit.stdout, "
                      "audit.policy_file), not through the API");
  }
  if (!r.path.starts_with("sys/audit-hash/")) return std::nullopt;
  if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
  if (options_.auditor == nullptr) return Error(400, "unknown audit backend");
  Result<std::optional<std::string>> input = StringField(r.body, "input");
  if (!input.ok()) return Error(400, input.error().message());
  if (!*input) return Error(400, "'input' parameter not supplied");
  std::string hash = options_.auditor->Hash(**input);
  return SysInjected(Json{{"hash", hash}});
}

}  // namespace sigil::vault
