// api/vault/sys_audit.cc: sys/audit-hash/<device>, the hash the trail shows for a value (as
// `sigil audit hash`). sigil has one trail whatever the device name; Vault's per-device salts
// are one per-server key here.
#include "sigil/api/vault/impl.h"

namespace sigil::vault {

std::optional<Reply> VaultApi::Impl::SysAudit(const Request& r) {
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
