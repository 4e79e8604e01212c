#include "sigil/client/operator.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "sigil/base/file.h"

namespace sigil::client {
namespace {

using Json = nlohmann::ordered_json;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// A Vault error reply as the vault CLI prints one.
Status VaultError(const Reply& r, const std::string& what) {
  Json j = Json::parse(r.body.view(), nullptr, false);
  std::string msg;
  if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    for (const Json& e : j["errors"]) {
      if (e.is_string()) msg += (msg.empty() ? "" : "; ") + e.get<std::string>();
    }
  }
  if (msg.empty()) msg = "HTTP " + std::to_string(r.status);
  return Status(r.status == 503 ? StatusCode::kUnavailable : StatusCode::kFailedPrecondition,
                "Error " + what + ": Code: " + std::to_string(r.status) + ". Errors:\n\n* " + msg);
}

Result<Json> Call(const Endpoint& ep, const std::string& method, const std::string& path, const Json& body,
                  const std::string& what, std::string* raw = nullptr) {
  std::string text = body.is_null() ? std::string() : body.dump();
  SIGIL_ASSIGN_OR_RETURN(Reply r, Request(ep, method, path, text));
  if (r.status == 204) return Json();
  if (r.status != 200) return VaultError(r, what);
  if (raw) *raw = std::string(r.body.view());
  Json j = Json::parse(r.body.view(), nullptr, false);
  if (j.is_discarded()) return UnavailableError("the server's answer is not JSON");
  return j;
}

std::string StatusText(const Json& s) {
  auto str = [&](const char* k) { return s.contains(k) ? s[k].dump() : std::string("-"); };
  std::string out;
  out += "Key                Value\n---                -----\n";
  out += "Seal Type          " + s.value("type", "") + "\n";
  out += "Initialized        " + str("initialized") + "\n";
  out += "Sealed             " + str("sealed") + "\n";
  out += "Total Shares       " + str("n") + "\n";
  out += "Threshold          " + str("t") + "\n";
  if (s.value("sealed", true)) {
    out += "Unseal Progress    " + str("progress") + "/" + str("t") + "\n";
    out += "Unseal Nonce       " + s.value("nonce", "") + "\n";
  }
  out += "Version            " + s.value("version", "") + "\n";
  out += "Storage Type       " + s.value("storage_type", "") + "\n";
  if (s.contains("cluster_name")) out += "Cluster Name       " + s.value("cluster_name", "") + "\n";
  if (s.contains("cluster_id")) out += "Cluster ID         " + s.value("cluster_id", "") + "\n";
  return out;
}

}  // namespace

Result<Endpoint> VaultEndpoint(const std::string& address, const std::string& ca_file, const std::string& token) {
  Endpoint ep;
  ep.server = !address.empty() ? address : !Env("VAULT_ADDR").empty() ? Env("VAULT_ADDR") : "https://127.0.0.1:8443";
  while (!ep.server.empty() && ep.server.back() == '/') ep.server.pop_back();
  std::string ca = !ca_file.empty() ? ca_file : Env("VAULT_CACERT");
  if (!ca.empty()) {
    SIGIL_ASSIGN_OR_RETURN(ep.ca_pem, file::ReadFile(ca, 1 << 20));
  }
  std::string t = !token.empty() ? token : Env("VAULT_TOKEN");
  ep.token = SecretBytes(t);
  return ep;
}

Result<SecretBytes> OperatorInit(const Endpoint& ep, int shares, int threshold, bool json) {
  std::string raw;
  SIGIL_ASSIGN_OR_RETURN(Json j, Call(ep, "PUT", "/v1/sys/init", Json{{"secret_shares", shares}, {"secret_threshold", threshold}},
                                      "initializing", &raw));
  if (json) return SecretBytes(raw + "\n");
  std::string out;
  int i = 1;
  for (const Json& k : j["keys_base64"]) out += "Unseal Key " + std::to_string(i++) + ": " + k.get<std::string>() + "\n";
  out += "\nInitial Root Token: " + j.value("root_token", "") + "\n\n";
  out += "sigil initialized with " + std::to_string(shares) + " key shares and a key threshold of " + std::to_string(threshold) +
         ". Give the key shares to different people and keep them apart: any " + std::to_string(threshold) +
         " of them unseal the server, fewer reveal nothing. The server is sealed until then; unseal it with\n"
         "`sigil operator unseal` once per share. sigil does not keep the shares: lose more than " +
         std::to_string(shares - threshold) + " of them and the data cannot be read again.\n";
  SecretBytes result(out);
  internal::SecureZero(out.data(), out.size());
  internal::SecureZero(raw.data(), raw.size());
  return result;
}

Result<std::string> OperatorUnseal(const Endpoint& ep, const SecretBytes& share, bool reset, bool json) {
  Json body = reset ? Json{{"reset", true}} : Json{{"key", std::string(share.view())}};
  std::string raw;
  auto j = Call(ep, "PUT", "/v1/sys/unseal", body, "unsealing", &raw);
  if (body.contains("key")) {
    std::string& k = body["key"].get_ref<std::string&>();
    internal::SecureZero(k.data(), k.size());
  }
  if (!j.ok()) return j.error();
  return json ? raw + "\n" : StatusText(*j);
}

Result<std::string> OperatorSeal(const Endpoint& ep) {
  SIGIL_RETURN_IF_ERROR(Call(ep, "PUT", "/v1/sys/seal", nullptr, "sealing").status());
  return std::string("Success! sigil is sealed.\n");
}

Result<std::string> OperatorStatus(const Endpoint& ep, bool json, bool* sealed) {
  std::string raw;
  SIGIL_ASSIGN_OR_RETURN(Json j, Call(ep, "GET", "/v1/sys/seal-status", nullptr, "checking seal status", &raw));
  *sealed = j.value("sealed", true);
  return json ? raw + "\n" : StatusText(j);
}

}  // namespace sigil::client
