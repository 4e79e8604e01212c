// Fuzzes audit redaction (audit/redaction.h) with bodies about Secrets. Input: one byte that
// picks the media type and subresource, then JSON text. The oracle does not restate the
// redaction's positions; it asks what the recorded body would do if a server acted on it:
//
// - applied (as a merge patch, as each JSON patch operation alone with `test` and unknown
//   operations turned into `add`, and as the whole JSON patch) to a Secret whose strings are
//   all hashes, every string, number or boolean that lands in data, stringData or the
//   last-applied annotation (of the Secret, its items, object and rows[*].object) is a hash;
// - the same holds of the recorded body read as a Secret, a list, a watch event or a Table;
// - an operation's value whose path is not a JSON pointer, and every member of an operation
//   other than op, path, from and value, is a hash (or null).
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "sigil/audit/redaction.h"

namespace {

using Json = nlohmann::ordered_json;
constexpr char kLastApplied[] = "kubectl.kubernetes.io/last-applied-configuration";
constexpr std::string_view kHashPrefix = "hmac-sha256:";

void Fail(const char* what) {
  (void)what;
  std::abort();
}

bool IsHash(const Json& v) {
  return v.is_string() && v.get_ref<const std::string&>().starts_with(kHashPrefix);
}

// Every leaf below a secret position is a hash or null.
void CheckLeaves(const Json& v) {
  if (v.is_structured()) {
    for (const Json& e : v) CheckLeaves(e);
  } else if (!v.is_null() && !IsHash(v)) {
    Fail("a value sits unhashed where a Secret's values are");
  }
}

void CheckSecretLike(const Json& j, int depth = 0) {
  if (!j.is_object() || depth > 40) return;
  for (const char* f : {"data", "stringData"}) {
    if (j.contains(f)) CheckLeaves(j[f]);
  }
  if (j.contains("metadata") && j["metadata"].is_object() &&
      j["metadata"].contains("annotations")) {
    const Json& a = j["metadata"]["annotations"];
    if (a.is_object() && a.contains(kLastApplied)) CheckLeaves(a[kLastApplied]);
    if (!a.is_object()) CheckLeaves(a);  // a structure standing where annotations sit
  }
  if (j.contains("items") && j["items"].is_array()) {
    for (const Json& i : j["items"]) CheckSecretLike(i, depth + 1);
  }
  if (j.contains("object")) CheckSecretLike(j["object"], depth + 1);
  if (j.contains("rows") && j["rows"].is_array()) {
    for (const Json& r : j["rows"]) {
      if (r.is_object() && r.contains("object")) CheckSecretLike(r["object"], depth + 1);
    }
  }
}

Json HashedSecret() {
  Json meta = {{"name", "hmac-sha256:n"},
               {"annotations", {{kLastApplied, "hmac-sha256:l"}, {"a", "hmac-sha256:a"}}},
               {"labels", {{"l", "hmac-sha256:b"}}}};
  Json s = {{"kind", "hmac-sha256:k"},
            {"metadata", meta},
            {"data", {{"k", "hmac-sha256:d"}}},
            {"stringData", {{"k", "hmac-sha256:s"}}}};
  Json doc = s;
  doc["items"] = Json::array({s});
  doc["object"] = s;
  doc["rows"] = Json::array({{{"object", s}}});
  return doc;
}

bool ShallowEnough(std::string_view text) {
  int depth = 0;
  for (char c : text) {
    if (c == '[' || c == '{') {
      if (++depth > 64) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// base.patch(ops), one operation at a time, or nullopt where the patch fails. nlohmann's
// patch() asserts (a debug-build abort, not an exception) when an add's parent is a scalar, so
// that case is refused here first, as a JSON patch library on a server would refuse it.
std::optional<Json> Patched(Json doc, const Json& ops) {
  for (const Json& op : ops) {
    try {
      if (op.is_object() && op.contains("path") && op["path"].is_string()) {
        Json::json_pointer ptr(op["path"].get<std::string>());
        if (!ptr.empty()) {
          Json::json_pointer parent = ptr.parent_pointer();
          if (doc.contains(parent) && !doc[parent].is_structured()) return std::nullopt;
        }
      }
      doc = doc.patch(Json::array({op}));
    } catch (const nlohmann::json::exception&) {
      return std::nullopt;
    }
  }
  return doc;
}

void CheckJsonPatch(const Json& patch) {
  const Json base = HashedSecret();
  for (const Json& op : patch) {
    if (!op.is_object()) {
      if (!IsHash(op)) Fail("an operation that is not an object was kept");
      continue;
    }
    for (const auto& [name, member] : op.items()) {
      if (name == "op" || name == "path" || name == "from") {
        if (!member.is_string() && !IsHash(member)) Fail("a non-string op, path or from was kept");
      } else if (name != "value" && !member.is_null() && !IsHash(member)) {
        Fail("an unknown member of an operation was kept");
      }
    }
    if (!op.contains("value") || op["value"].is_null()) continue;
    if (!op.contains("path") || !op["path"].is_string()) {
      if (!IsHash(op["value"])) Fail("the value of an operation without a path was kept");
      continue;
    }
    try {
      (void)Json::json_pointer(op["path"].get<std::string>());
    } catch (const nlohmann::json::exception&) {
      if (!IsHash(op["value"])) Fail("the value of an operation with an invalid path was kept");
      continue;
    }
    Json as_add = op;
    if (!op.contains("op") || (op["op"] != "move" && op["op"] != "copy" && op["op"] != "remove"))
      as_add["op"] = "add";
    if (std::optional<Json> one = Patched(base, Json::array({as_add}))) CheckSecretLike(*one);
  }
  if (std::optional<Json> all = Patched(base, patch)) CheckSecretLike(*all);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* kMedia[] = {
      "application/json", "application/json-patch+json", "application/merge-patch+json",
      "application/strategic-merge-patch+json", "application/apply-patch+yaml"};
  static const char* kSub[] = {"", "versions", "rollback", "status"};
  const char* media = kMedia[data[0] % 5];
  const char* sub = kSub[(data[0] / 5) % 4];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (!ShallowEnough(text)) return 0;
  Json in = Json::parse(text, nullptr, false);
  if (in.is_discarded()) return 0;
  auto hash = [](std::string_view v) {
    return std::string(kHashPrefix) + std::to_string(v.size());
  };
  std::optional<Json> out = sigil::audit::RedactBody("", "secrets", sub, media, in, hash);
  if (!out) return 0;
  if (std::string_view(sub) == "status") Fail("an unknown subresource's body was recorded");
  (void)out->dump(-1, ' ', false, Json::error_handler_t::replace);
  if (std::string_view(media) == "application/json-patch+json") {
    if (!out->is_array() || out->size() != in.size()) Fail("a JSON patch changed shape");
    CheckJsonPatch(*out);
    return 0;
  }
  if (!out->is_object()) Fail("an object body changed shape");
  CheckSecretLike(*out);
  Json merged = HashedSecret();
  merged.merge_patch(*out);
  CheckSecretLike(merged);
  return 0;
}
