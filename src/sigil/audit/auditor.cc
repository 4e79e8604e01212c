#include "sigil/audit/auditor.h"

#include "sigil/base/encoding.h"
#include "sigil/crypto/hash.h"
#include "sigil/crypto/random.h"

namespace sigil::audit {
namespace {

using Json = nlohmann::ordered_json;
constexpr char kKeyPath[] = "/sigil/audit/hmac-key";

}  // namespace

Result<std::unique_ptr<Auditor>> Auditor::Open(store::ObjectStore* store, Policy policy, const std::vector<SinkOptions>& sinks) {
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> existing, store->Get(kKeyPath));
  SecretBytes key;
  if (existing) {
    key = std::move(existing->doc);
  } else {
    key = crypto::RandomKey(32);
    auto r = store->Create(kKeyPath, key);
    if (!r.ok() && r.error().code() != StatusCode::kAlreadyExists) return r.error();
    if (!r.ok()) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> again, store->Get(kKeyPath));
      if (!again) return DataLossError("the audit key vanished while it was created");
      key = std::move(again->doc);
    }
  }
  if (key.size() != 32) return DataLossError(std::string(kKeyPath) + " is not a 32-byte key");
  SIGIL_ASSIGN_OR_RETURN(std::unique_ptr<AuditLog> log, AuditLog::Open(sinks));
  return std::unique_ptr<Auditor>(new Auditor(std::move(policy), std::move(key), std::move(log)));
}

std::string Auditor::Hash(std::string_view value) const { return "hmac-sha256:" + HexEncode(crypto::HmacSha256(key_, value)); }

std::optional<Json> Auditor::RedactedBody(std::string_view api_group, std::string_view resource, std::string_view subresource,
                                          std::string_view content_type, Json body) const {
  return RedactBody(api_group, resource, subresource, content_type, std::move(body), [this](std::string_view v) { return Hash(v); });
}

Status Auditor::Write(const std::vector<Json>& events) {
  std::vector<std::string> lines;
  lines.reserve(events.size());
  for (const Json& e : events) {
    // "annotations" goes last (added when absent): the log appends the chain annotation to it
    // without parsing the line.
    if (!e.is_object() || e.empty()) return InvalidArgumentError("an audit event must be a JSON object");
    if (std::prev(e.end()).key() == "annotations" && e["annotations"].is_object()) {
      lines.push_back(e.dump(-1, ' ', false, Json::error_handler_t::replace));
      continue;
    }
    Json copy = e;
    Json ann = copy.contains("annotations") && copy["annotations"].is_object() ? std::move(copy["annotations"]) : Json::object();
    copy.erase("annotations");
    copy["annotations"] = std::move(ann);
    lines.push_back(copy.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  return log_->Append(std::move(lines));
}

}  // namespace sigil::audit
