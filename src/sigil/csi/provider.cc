#include "sigil/csi/provider.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "sigil/agent/config.h"
#include "sigil/base/encoding.h"
#include "sigil/client/http_client.h"
#include "sigil/crypto/hash.h"
#include "sigil/crypto/random.h"

namespace sigil::csi {
namespace {

using Json = nlohmann::json;

Status Bad(const std::string& what) { return InvalidArgumentError(what); }

std::string Scalar(const YAML::Node& n) { return n && n.IsScalar() ? n.Scalar() : ""; }

// Kubernetes names as they may appear in a URL path (the server checks them properly).
bool IsName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return true;
}

// A Vault path as a request target: segments of URL-safe characters, no "." or ".." segment.
bool IsVaultPath(const std::string& s) {
  if (s.empty() || s.size() > 1024 || s.front() == '/') return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t slash = s.find('/', start);
    std::string_view seg(s.data() + start, (slash == std::string::npos ? s.size() : slash) - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    for (char c : seg) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.' || c == '@' || c == ':' || c == '+';
      if (!ok) return false;
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

std::string Where(const Object& o) { return "object \"" + o.name + "\""; }

// A value as the object's encoding says it is stored.
Result<SecretBytes> Decode(const Object& o, std::string_view value) {
  if (o.encoding == "utf-8") return SecretBytes(value);
  if (o.encoding == "base64") {
    auto b = Base64DecodeSecret(value);
    if (!b.ok()) return Bad(Where(o) + ": the value is not base64 (encoding: base64)");
    return std::move(b).value();
  }
  auto h = HexDecode(value);
  if (!h.ok()) return Bad(Where(o) + ": the value is not hex (encoding: hex)");
  SecretBytes out(*h);
  internal::SecureZero(h->data(), h->size());
  return out;
}

// What a Status (Kubernetes) or errors list (Vault) says, never the body itself.
std::string ServerMessage(int status, const SecretBytes& body, bool vault) {
  Json j = Json::parse(body.view(), nullptr, false);
  std::string msg;
  if (vault && j.is_object() && j.contains("errors") && j["errors"].is_array() &&
      !j["errors"].empty() && j["errors"][0].is_string()) {
    msg = j["errors"][0].get<std::string>();
  } else if (!vault && j.is_object() && j.contains("message") && j["message"].is_string()) {
    msg = j["message"].get<std::string>();
  }
  return "HTTP " + std::to_string(status) + (msg.empty() ? "" : ": " + msg);
}

Status FromHttp(int status, const std::string& message) {
  if (status == 401) return UnauthenticatedError(message);
  if (status == 403) return PermissionDeniedError(message);
  if (status == 404) return NotFoundError(message);
  if (status == 400 || status == 422) return InvalidArgumentError(message);
  return UnavailableError(message);
}

}  // namespace

Result<Parameters> ParseMount(const std::string& attributes_json, const std::string& permission) {
  Json attrs = Json::parse(attributes_json, nullptr, false);
  if (!attrs.is_object()) return Bad("attributes are not a JSON object");
  auto get = [&](const char* key) -> std::string {
    auto it = attrs.find(key);
    return it != attrs.end() && it->is_string() ? it->get<std::string>() : "";
  };
  Parameters p;
  p.role = get("roleName");
  std::string m1 = get("vaultKubernetesMountPath"), m2 = get("vaultAuthMountPath");
  if (!m1.empty() && !m2.empty())
    return Bad("give vaultKubernetesMountPath or vaultAuthMountPath, not both");
  if (!m1.empty() || !m2.empty()) p.auth_mount = m1.empty() ? m2 : m1;
  while (!p.auth_mount.empty() && p.auth_mount.back() == '/') p.auth_mount.pop_back();
  if (p.auth_mount.starts_with("auth/")) p.auth_mount = p.auth_mount.substr(5);
  if (!IsVaultPath(p.auth_mount)) return Bad("the auth mount path is not a valid path");
  p.audience = get("audience");
  p.pod_namespace = get("csi.storage.k8s.io/pod.namespace");
  p.address = get("sigilAddress");
  if (p.address.empty()) p.address = get("vaultAddress");
  for (const char* unsupported : {"vaultNamespace", "vaultSkipTLSVerify", "vaultTLSClientCertPath",
                                  "vaultTLSClientKeyPath"}) {
    if (!get(unsupported).empty() && get(unsupported) != "false") {
      return Bad(std::string("parameter ") + unsupported + " is not supported by sigil's provider");
    }
  }

  // The permission is a Go os.FileMode marshalled as JSON: a decimal number ("420").
  if (!permission.empty()) {
    int mode = -1;
    auto [end, ec] =
        std::from_chars(permission.data(), permission.data() + permission.size(), mode);
    if (ec != std::errc() || end != permission.data() + permission.size() || mode < 0 ||
        mode > 0777) {
      return Bad("permission must be a file mode from 0 to 511 (decimal), got \"" + permission +
                 "\"");
    }
    p.mode = mode;
  }

  // The pod's token: the driver's serviceAccount.tokens, {"<audience>": {"token": ...}}.
  std::string tokens_json = get("csi.storage.k8s.io/serviceAccount.tokens");
  if (tokens_json.empty()) {
    return Bad(
        "no service-account token in the mount request: the CSIDriver object needs tokenRequests "
        "(for example audience \"sigil\")");
  }
  Json tokens = Json::parse(tokens_json, nullptr, false);
  if (!tokens.is_object() || tokens.empty())
    return Bad("csi.storage.k8s.io/serviceAccount.tokens is not a JSON object of tokens");
  const Json* chosen = nullptr;
  if (!p.audience.empty()) {
    if (tokens.contains(p.audience)) chosen = &tokens[p.audience];
    if (chosen == nullptr)
      return Bad("no service-account token for audience \"" + p.audience + "\"");
  } else if (tokens.size() == 1) {
    chosen = &tokens.begin().value();
  } else {
    return Bad(
        "several service-account tokens in the request: name the one to use with the audience "
        "parameter");
  }
  if (!chosen->is_object() || !chosen->contains("token") || !(*chosen)["token"].is_string() ||
      (*chosen)["token"].get_ref<const std::string&>().empty()) {
    return Bad("the service-account token entry has no token");
  }
  p.token = SecretBytes((*chosen)["token"].get_ref<const std::string&>());

  std::string objects = get("objects");
  if (objects.empty()) return Bad("the objects parameter is required");
  YAML::Node list;
  try {
    list = YAML::Load(objects);
  } catch (const YAML::Exception& e) {
    return Bad("objects is not valid YAML: " + e.msg + " (line " + std::to_string(e.mark.line + 1) +
               ")");
  }
  if (list.IsMap() && list["array"]) {
    return Bad(
        "objects must be a YAML list of objects (the \"array:\" form of other providers is not "
        "read)");
  }
  if (!list.IsSequence() || list.size() == 0) return Bad("objects must be a non-empty YAML list");
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node& n = list[i];
    std::string at = "objects[" + std::to_string(i) + "]";
    if (!n.IsMap()) return Bad(at + " is not a mapping");
    for (const auto& kv : n) {
      static const std::set<std::string> kKnown = {
          "objectName", "secretPath",     "secretKey", "secretName", "secretNamespace",
          "encoding",   "filePermission", "method",    "secretArgs"};
      std::string key = kv.first.as<std::string>("");
      if (!kKnown.count(key)) return Bad(at + ": unknown field \"" + key + "\"");
    }
    Object o;
    o.name = Scalar(n["objectName"]);
    if (Status st = agent::CheckItemPath(o.name); !st.ok())
      return Bad(at + ".objectName: " + st.message());
    if (!names.insert(o.name).second)
      return Bad(at + ".objectName: \"" + o.name + "\" is given twice");
    o.path = Scalar(n["secretPath"]);
    o.secret_name = Scalar(n["secretName"]);
    o.secret_namespace = Scalar(n["secretNamespace"]);
    o.key = Scalar(n["secretKey"]);
    if (n["method"] && Scalar(n["method"]) != "GET")
      return Bad(at + ".method: only GET is supported");
    if (n["secretArgs"]) return Bad(at + ".secretArgs: not supported (reads only)");
    if (n["encoding"]) {
      o.encoding = Scalar(n["encoding"]);
      if (o.encoding != "utf-8" && o.encoding != "base64" && o.encoding != "hex")
        return Bad(at + ".encoding: must be utf-8, base64 or hex");
    }
    if (n["filePermission"]) {
      auto mode = agent::ParseMode(Scalar(n["filePermission"]));
      if (!mode.ok()) return Bad(at + ".filePermission: " + mode.error().message());
      o.mode = *mode;
    }
    if (!p.role.empty()) {
      if (o.path.empty()) return Bad(at + ": secretPath is required (with roleName)");
      if (!o.secret_name.empty())
        return Bad(at + ": secretName goes without roleName (it names a Kubernetes Secret)");
      while (!o.path.empty() && o.path.front() == '/') o.path.erase(0, 1);
      if (o.path.starts_with("v1/")) o.path.erase(0, 3);
      if (!IsVaultPath(o.path)) return Bad(at + ".secretPath: not a valid path");
    } else {
      if (!o.path.empty())
        return Bad(at +
                   ": secretPath needs roleName (a Vault login); without it, name a Secret with "
                   "secretName");
      if (o.secret_namespace.empty()) o.secret_namespace = p.pod_namespace;
      if (!IsName(o.secret_name)) return Bad(at + ".secretName: must be a Secret's name");
      if (!IsName(o.secret_namespace))
        return Bad(at +
                   ".secretNamespace: must be a namespace (or the pod's namespace must be known)");
      if (o.key.empty()) return Bad(at + ".secretKey: required for a Kubernetes Secret");
    }
    p.objects.push_back(std::move(o));
  }
  return p;
}

Provider::Provider(client::Endpoint server, std::chrono::seconds timeout)
    : server_(std::move(server)), timeout_(timeout), version_key_(crypto::RandomKey(32)) {}

Result<SecretBytes> Provider::Fetch(const std::string& method, const std::string& target,
                                    const SecretBytes& token, std::string_view body,
                                    bool vault) const {
  client::Endpoint ep;
  ep.server = server_.server;
  ep.ca_pem = server_.ca_pem;
  ep.token = token.Clone();
  SIGIL_ASSIGN_OR_RETURN(client::Reply reply,
                         client::Request(ep, method, target, body, "application/json", timeout_));
  if (reply.status != 200)
    return FromHttp(reply.status, ServerMessage(reply.status, reply.body, vault));
  return std::move(reply.body);
}

Result<MountResult> Provider::Mount(const std::string& attributes_json,
                                    const std::string& permission) const {
  SIGIL_ASSIGN_OR_RETURN(Parameters p, ParseMount(attributes_json, permission));
  if (!p.address.empty() && p.address != server_.server) {
    return PermissionDeniedError("this provider serves only " + server_.server + ", not " +
                                 p.address);
  }
  SecretBytes token = p.token.Clone();
  bool vault = !p.role.empty();
  if (vault) {
    Json login = {{"role", p.role}, {"jwt", std::string(p.token.view())}};
    std::string body = login.dump();
    auto reply = Fetch("POST", "/v1/auth/" + p.auth_mount + "/login", SecretBytes(), body, true);
    internal::SecureZero(body.data(), body.size());
    if (!reply.ok())
      return Status(reply.error().code(), "logging in with the pod's service account (role \"" +
                                              p.role + "\"): " + reply.error().message());
    Json answer = Json::parse(reply->view(), nullptr, false);
    if (!answer.is_object() || !answer.contains("auth") || !answer["auth"].is_object() ||
        !answer["auth"].contains("client_token") || !answer["auth"]["client_token"].is_string()) {
      return UnavailableError("the login answer has no client token");
    }
    token = SecretBytes(answer["auth"]["client_token"].get_ref<const std::string&>());
  }

  static const Json kNoData;  // a reference to it, not a copy of the answer's data (values)
  MountResult result;
  std::map<std::string, SecretBytes> cache;  // one read per path within a mount
  for (const Object& o : p.objects) {
    std::string target =
        vault ? "/v1/" + o.path
              : "/api/v1/namespaces/" + o.secret_namespace + "/secrets/" + o.secret_name;
    auto it = cache.find(target);
    if (it == cache.end()) {
      auto got = Fetch("GET", target, token, {}, vault);
      if (!got.ok()) return Status(got.error().code(), Where(o) + ": " + got.error().message());
      it = cache.emplace(target, std::move(got).value()).first;
    }
    Json answer = Json::parse(it->second.view(), nullptr, false);
    if (!answer.is_object())
      return UnavailableError(Where(o) + ": the server's answer is not a JSON object");
    File f;
    f.path = o.name;
    f.mode = o.mode.value_or(p.mode);
    std::string version;
    if (vault) {
      const Json& data = answer.contains("data") ? answer["data"] : kNoData;
      // KV version 2 answers {data: {data: {...}, metadata: {version}}}.
      bool kv2 = data.is_object() && data.contains("data") && data["data"].is_object() &&
                 data.contains("metadata") && data["metadata"].is_object();
      if (kv2 && data["metadata"].contains("version") &&
          data["metadata"]["version"].is_number_integer()) {
        version = "kv-" + std::to_string(data["metadata"]["version"].get<int64_t>());
      }
      if (o.key.empty()) {
        f.contents = SecretBytes(answer.dump());
      } else {
        const Json& fields = kv2 ? data["data"] : data;
        if (!fields.is_object() || !fields.contains(o.key))
          return NotFoundError(Where(o) + ": no key \"" + o.key + "\" at " + o.path);
        const Json& v = fields[o.key];
        if (v.is_string()) {
          SIGIL_ASSIGN_OR_RETURN(f.contents, Decode(o, v.get_ref<const std::string&>()));
        } else {
          std::string dumped = v.dump();
          SIGIL_ASSIGN_OR_RETURN(f.contents, Decode(o, dumped));
          internal::SecureZero(dumped.data(), dumped.size());
        }
      }
    } else {
      const Json& data = answer.contains("data") ? answer["data"] : kNoData;
      if (!data.is_object() || !data.contains(o.key) || !data[o.key].is_string()) {
        return NotFoundError(Where(o) + ": Secret " + o.secret_namespace + "/" + o.secret_name +
                             " has no key \"" + o.key + "\"");
      }
      auto raw = Base64DecodeSecret(data[o.key].get_ref<const std::string&>());
      if (!raw.ok()) return UnavailableError(Where(o) + ": the Secret's value is not base64");
      SIGIL_ASSIGN_OR_RETURN(f.contents, Decode(o, raw->view()));
      if (answer.contains("metadata") && answer["metadata"].is_object() &&
          answer["metadata"].contains("resourceVersion") &&
          answer["metadata"]["resourceVersion"].is_string()) {
        version = "rv-" + answer["metadata"]["resourceVersion"].get<std::string>();
      }
    }
    if (version.empty()) {
      // No version of its own (dynamic credentials, KV v1): a keyed hash of what is mounted,
      // under a key that never leaves this process, so the version tells nothing about the value.
      version = "h-" + HexEncode(crypto::HmacSha256(version_key_, f.contents.view())).substr(0, 32);
    }
    result.versions.emplace_back(o.name, version);
    result.files.push_back(std::move(f));
  }
  return result;
}

}  // namespace sigil::csi
