#include "sigil/client/commands.h"

#include <nlohmann/json.hpp>

namespace sigil::client {
namespace {

using Json = nlohmann::ordered_json;

std::string PathEscape(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string Base(const SecretRef& ref) {
  return "/sigil/v1/namespaces/" + PathEscape(ref.ns) + "/secrets/" + PathEscape(ref.name);
}

// An error reply as kubectl prints one.
Status ServerError(const Reply& r) {
  Json j = Json::parse(r.body.view(), nullptr, false);
  if (j.is_object() && j.value("kind", "") == "Status") {
    return Status(r.status == 404 ? StatusCode::kNotFound : StatusCode::kFailedPrecondition,
                  "Error from server (" + j.value("reason", "Unknown") + "): " + j.value("message", ""));
  }
  return UnavailableError("unexpected reply from the server: HTTP " + std::to_string(r.status));
}

std::string Pad(const std::string& s, size_t w) { return s.size() >= w ? s + "   " : s + std::string(w - s.size() + 3, ' '); }

}  // namespace

Result<SecretRef> ParseSecretRef(const std::string& text, const std::string& default_ns) {
  SecretRef ref;
  size_t slash = text.find('/');
  if (slash == std::string::npos) {
    ref.ns = default_ns;
    ref.name = text;
  } else {
    ref.ns = text.substr(0, slash);
    ref.name = text.substr(slash + 1);
  }
  if (ref.ns.empty() || ref.name.empty() || ref.name.find('/') != std::string::npos) {
    return InvalidArgumentError("expected NAMESPACE/NAME or NAME, got \"" + text + "\"");
  }
  return ref;
}

Result<std::string> SecretHistory(const Endpoint& ep, const SecretRef& ref, bool json) {
  SIGIL_ASSIGN_OR_RETURN(Reply r, Request(ep, "GET", Base(ref) + "/versions"));
  if (r.status != 200) return ServerError(r);
  if (json) return std::string(r.body.view()) + "\n";
  Json list = Json::parse(r.body.view(), nullptr, false);
  if (!list.is_object() || !list.contains("versions")) return UnavailableError("unexpected reply from the server");
  std::vector<std::array<std::string, 6>> rows = {{"VERSION", "OPERATION", "TIME", "MANAGER", "RESOURCE-VERSION", "KEYS"}};
  int64_t current = list["current"].is_number_integer() ? list["current"].get<int64_t>() : 0;
  for (const Json& v : list["versions"]) {
    std::string keys;
    if (v.value("deleted", false)) {
      keys = "(deleted)";
    } else {
      for (const Json& k : v.value("keys", Json::array())) keys += (keys.empty() ? "" : ",") + k.get<std::string>();
    }
    int64_t n = v.value("version", int64_t{0});
    rows.push_back({std::to_string(n) + (n == current ? "*" : ""), v.value("operation", ""), v.value("time", ""),
                    v.value("manager", ""), v.value("resourceVersion", ""), keys});
  }
  std::array<size_t, 6> width{};
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i + 1 < row.size(); ++i) line += Pad(row[i], width[i]);
    out += line + row.back() + "\n";
  }
  if (rows.size() == 1) out += "(no versions recorded)\n";
  out += current > 0 ? "* current version; " : "the secret does not exist now; ";
  out += "keeping " + std::to_string(list.value("keep", 0)) + " earlier versions\n";
  return out;
}

Result<SecretBytes> CreateToken(const Endpoint& ep, const std::string& user, const std::vector<std::string>& groups,
                                int64_t ttl_seconds, bool json) {
  std::string body = Json{{"user", user}, {"groups", groups}, {"ttlSeconds", ttl_seconds}}.dump();
  SIGIL_ASSIGN_OR_RETURN(Reply r, Request(ep, "POST", "/sigil/v1/tokens", body));
  if (r.status != 201) return ServerError(r);
  if (json) return std::move(r.body);
  Json j = Json::parse(r.body.view(), nullptr, false);
  if (!j.is_object() || !j.contains("token") || !j["token"].is_string()) return UnavailableError("unexpected reply from the server");
  std::string& t = j["token"].get_ref<std::string&>();
  SecretBytes out(t);
  internal::SecureZero(t.data(), t.size());
  return out;
}

Result<std::string> AuditHash(const Endpoint& ep, const std::string& value) {
  std::string body = Json{{"value", value}}.dump();
  auto r = Request(ep, "POST", "/sigil/v1/audit/hash", body);
  internal::SecureZero(body.data(), body.size());
  if (!r.ok()) return r.error();
  if (r->status != 200) return ServerError(*r);
  Json j = Json::parse(r->body.view(), nullptr, false);
  if (!j.is_object() || !j.contains("hash") || !j["hash"].is_string()) return UnavailableError("unexpected reply from the server");
  return j["hash"].get<std::string>();
}

Result<std::string> SecretRotate(const Endpoint& ep, const SecretRef& ref) {
  SIGIL_ASSIGN_OR_RETURN(Reply r, Request(ep, "POST", Base(ref) + "/rotate?fieldManager=sigil-rotate", ""));
  if (r.status != 200) return ServerError(r);
  Json obj = Json::parse(r.body.view(), nullptr, false);
  std::string rv, at;
  if (obj.is_object() && obj.contains("metadata")) {
    rv = obj["metadata"].value("resourceVersion", "");
    if (obj["metadata"].contains("annotations")) at = obj["metadata"]["annotations"].value("sigil.dev/rotated-at", "");
  }
  return "secret/" + ref.name + " rotated at " + at + " (resourceVersion " + rv + ")\n";
}

Result<std::string> SecretRollback(const Endpoint& ep, const SecretRef& ref, int64_t to_version, bool dry_run) {
  std::string body = Json{{"version", to_version}}.dump();
  std::string target = Base(ref) + "/rollback?fieldManager=sigil-rollback" + (dry_run ? "&dryRun=All" : "");
  SIGIL_ASSIGN_OR_RETURN(Reply r, Request(ep, "POST", target, body));
  if (r.status != 200 && r.status != 201) return ServerError(r);
  Json obj = Json::parse(r.body.view(), nullptr, false);
  std::string rv = obj.is_object() ? obj["metadata"].value("resourceVersion", "") : "";
  std::string what = r.status == 201 ? "re-created from" : "rolled back to";
  return "secret/" + ref.name + " " + what + " version " + std::to_string(to_version) +
         (dry_run ? " (server dry run)" : " (resourceVersion " + rv + ")") + "\n";
}

}  // namespace sigil::client
