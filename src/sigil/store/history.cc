#include "sigil/store/history.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace sigil::store {
namespace {

using Json = nlohmann::ordered_json;

std::string VersionKey(const std::string& object_key, int64_t version) {
  char digits[24];
  std::snprintf(digits, sizeof(digits), "%020lld", static_cast<long long>(version));
  return History::Prefix(object_key) + digits;
}

int64_t VersionOfKey(std::string_view key) {
  std::string_view tail = key.substr(key.rfind('/') + 1);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), v);
  return ec == std::errc() && p == tail.data() + tail.size() ? v : 0;
}

// Every version key of an object, oldest first (a handful: `keep` bounds them).
Result<std::vector<std::pair<int64_t, std::string>>> VersionKeys(ObjectStore* store, const std::string& object_key) {
  SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> keys, store->Keys(History::Prefix(object_key)));
  std::vector<std::pair<int64_t, std::string>> out;
  for (std::string& k : keys) {
    if (int64_t v = VersionOfKey(k); v > 0) out.emplace_back(v, std::move(k));
  }
  return out;
}

}  // namespace

std::string History::KeyOf(const std::string& object_key, int64_t version) { return VersionKey(object_key, version); }

Result<int64_t> History::Record(const std::string& object_key, const SecretBytes* doc, const VersionMeta& meta, int keep,
                                SideEffects* also) {
  SIGIL_ASSIGN_OR_RETURN(auto existing, VersionKeys(store_, object_key));
  int64_t next = existing.empty() ? 1 : existing.back().first + 1;
  keep = std::max(keep, 0);
  // A tombstone does not take the place of the version it deletes: that version (the Secret's
  // last values) stays, so a deletion can be undone even when no earlier versions are kept.
  if (doc == nullptr) ++keep;
  for (auto& [v, k] : existing) {
    if (v <= next - 1 - keep) also->deletes.push_back(k);
  }
  std::string key = VersionKey(object_key, next);
  also->compares.push_back({key, 0});
  Json head = {{"version", next}, {"operation", meta.operation}, {"time", meta.time}, {"manager", meta.manager}};
  std::string h = head.dump();
  // The object's bytes are spliced in as they are, not re-serialised from a parsed copy.
  SecretBytes record;
  std::string_view body = doc == nullptr ? std::string_view() : doc->view();
  record.Append(std::string_view(h).substr(0, h.size() - 1));
  if (doc != nullptr) {
    record.Append(",\"object\":");
    record.Append(body);
  }
  record.Append("}");
  also->puts.emplace_back(std::move(key), std::move(record));
  return next;
}

Result<Version> History::Decode(const Object& o, bool with_doc) {
  Json j = Json::parse(o.doc.view(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("version") || !j["version"].is_number_integer()) {
    return DataLossError("history record " + o.key + " is malformed");
  }
  Version v;
  v.version = j["version"].get<int64_t>();
  v.meta.operation = j.value("operation", "");
  v.meta.time = j.value("time", "");
  v.meta.manager = j.value("manager", "");
  v.revision = o.revision;
  if (auto it = j.find("revision"); it != j.end() && it->is_number_integer()) v.revision = it->get<int64_t>();
  v.destroyed = j.value("destroyed", false);
  v.deleted = !j.contains("object") && !v.destroyed;
  if (auto it = j.find("deleted_at"); it != j.end() && it->is_string()) v.deleted_at = it->get<std::string>();
  if (with_doc && j.contains("object")) {
    std::string s = j["object"].dump();
    v.doc = SecretBytes(s);
    internal::SecureZero(s.data(), s.size());
  }
  // j holds the object's values: nlohmann frees them unwiped (docs/threat-model.md).
  return v;
}

Result<std::vector<Version>> History::List(const std::string& object_key, bool with_docs) {
  SIGIL_ASSIGN_OR_RETURN(ObjectList l, store_->List(Prefix(object_key), "", 0));
  std::vector<Version> out;
  for (const Object& o : l.items) {
    SIGIL_ASSIGN_OR_RETURN(Version v, Decode(o, with_docs));
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::optional<Version>> History::Get(const std::string& object_key, int64_t version) {
  SIGIL_ASSIGN_OR_RETURN(std::optional<Object> o, store_->Get(VersionKey(object_key, version)));
  if (!o) return std::optional<Version>();
  SIGIL_ASSIGN_OR_RETURN(Version v, Decode(*o, true));
  return std::optional<Version>(std::move(v));
}

Result<bool> History::Amend(const std::string& object_key, int64_t version, Amendment a, const std::string& time,
                            SideEffects* also) {
  std::string key = VersionKey(object_key, version);
  SIGIL_ASSIGN_OR_RETURN(std::optional<Object> o, store_->Get(key));
  if (!o) return false;
  Json j = Json::parse(o->doc.view(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("version")) return DataLossError("history record " + key + " is malformed");
  if (!j.contains("object") || j.value("destroyed", false)) return false;  // a tombstone, or destroyed
  switch (a) {
    case Amendment::kMarkDeleted:
      if (j.contains("deleted_at")) return false;
      j["deleted_at"] = time;
      break;
    case Amendment::kClearDeleted:
      if (!j.contains("deleted_at")) return false;
      j.erase("deleted_at");
      break;
    case Amendment::kDestroy:
      j.erase("object");
      j["destroyed"] = true;
      break;
  }
  // The record's revision is the object's resourceVersion at that version; rewriting the record
  // gives it a new one, so the first amendment keeps the original in the record.
  if (!j.contains("revision")) j["revision"] = o->revision;
  std::string text = j.dump();
  also->compares.push_back({key, o->revision});
  also->puts.emplace_back(key, SecretBytes(std::string_view(text)));
  internal::SecureZero(text.data(), text.size());
  // j held the object's values: nlohmann frees them unwiped (docs/threat-model.md).
  return true;
}

Status History::Purge(const std::string& object_key, SideEffects* also) {
  SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> keys, store_->Keys(Prefix(object_key)));
  for (std::string& k : keys) also->deletes.push_back(std::move(k));
  return OkStatus();
}

Status History::PurgeUnder(const std::string& object_prefix, SideEffects* also) {
  SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> keys, store_->Keys("/sigil/history" + object_prefix));
  for (std::string& k : keys) also->deletes.push_back(std::move(k));
  return OkStatus();
}

}  // namespace sigil::store
