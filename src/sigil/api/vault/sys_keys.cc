// api/vault/sys_keys.cc: sys/seal (sudo), sys/rotate (sudo) and sys/key-status, token-guarded
// and audited like every request of the unsealed face; the server's SealControl does the work.
#include "sigil/api/vault/impl.h"
#include "sigil/base/logging.h"
#include "sigil/base/clock.h"

namespace sigil::vault {
namespace {

Json KeyJson(const KeyStatus& k) {
  return Json{{"term", k.term}, {"install_time", FormatRfc3339(std::chrono::system_clock::from_time_t(k.install_unix))},
              {"encryptions", nullptr}};
}

}  // namespace

std::optional<Reply> VaultApi::Impl::SysKeys(const Request& r) {
  if (r.path == "sys/kms-plugin/keys" || r.path == "sys/kms-plugin/rotate") {
    // sigil as a KMS v2 plugin (kms/plugin.h): its keys (IDs and ages, never material), and
    // rotation (sudo), which changes the key ID its Status reports.
    if (options_.kms_plugin == nullptr) return Error(404, "sigil is not serving as a KMS plugin (kms_plugin.socket is not set)");
    if (r.path == "sys/kms-plugin/rotate") {
      if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
      auto id = options_.kms_plugin->Rotate();
      if (!id.ok()) return errors_.Render(id.error(), core::RequestInfo{});
      return SysInjected(Json{{"key_id", *id}});
    }
    if (r.op != Operation::kRead) return Error(405, "unsupported operation");
    Json keys = Json::array();
    std::vector<kms::PluginKeyInfo> list = options_.kms_plugin->Keys();
    for (const kms::PluginKeyInfo& k : list) {
      keys.push_back({{"key_id", k.key_id}, {"created", FormatRfc3339(std::chrono::system_clock::from_time_t(k.created_unix))}});
    }
    return SysInjected(Json{{"socket", options_.kms_plugin->socket_path()},
                            {"current_key_id", list.empty() ? "" : list.back().key_id},
                            {"keys", keys}});
  }
  if (r.path != "sys/seal" && r.path != "sys/rotate" && r.path != "sys/key-status") return std::nullopt;
  if (options_.seal == nullptr) return Error(404, "no handler for route \"" + r.path + "\". route entry not found.");
  if (r.path == "sys/key-status") {
    if (r.op != Operation::kRead) return Error(405, "unsupported operation");
    auto k = options_.seal->CurrentKey();
    if (!k.ok()) return errors_.Render(k.error(), core::RequestInfo{});
    return SysInjected(KeyJson(*k));
  }
  if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
  if (r.path == "sys/rotate") {
    auto k = options_.seal->Rotate();
    if (!k.ok()) return errors_.Render(k.error(), core::RequestInfo{});
    log::Info("rotated the keyring", {{"term", static_cast<int64_t>(k->term)}});
    return NoContent();
  }
  Status s = options_.seal->Seal();
  if (!s.ok()) return errors_.Render(s, core::RequestInfo{});
  return NoContent();
}

}  // namespace sigil::vault
