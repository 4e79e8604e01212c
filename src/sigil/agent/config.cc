#include "sigil/agent/config.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <csignal>
#include <set>

namespace sigil::agent {
namespace {

Status Bad(const std::string& where, const std::string& what) {
  return InvalidArgumentError(where + ": " + what);
}

// Every mapping is checked for keys the agent does not know: a misspelt `on_delete` must not
// silently keep the default.
Status OnlyKnownKeys(const YAML::Node& node, const std::string& where,
                     const std::set<std::string>& known) {
  if (!node.IsMap()) return Bad(where, "must be a mapping");
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>("");
    if (!known.count(key)) return Bad(where, "unknown field \"" + key + "\"");
  }
  return OkStatus();
}

Result<std::string> String(const YAML::Node& node, const std::string& where) {
  if (!node.IsScalar()) return Bad(where, "must be a string");
  return node.as<std::string>();
}

Result<bool> Bool(const YAML::Node& node, const std::string& where) {
  bool b = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, b))
    return Bad(where, "must be true or false");
  return b;
}

Result<int64_t> Integer(const YAML::Node& node, const std::string& where, int64_t lo, int64_t hi) {
  if (!node.IsScalar()) return Bad(where, "must be an integer");
  const std::string& s = node.Scalar();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) {
    return Bad(where,
               "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return v;
}

std::string Resolve(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

// Kubernetes object names (DNS subdomain for Secrets, DNS label for namespaces) are checked by
// the server; here only what would make a bad URL: empty, '/', '?', '%', '#', control bytes.
Status CheckName(const std::string& s, const std::string& where) {
  if (s.empty()) return Bad(where, "must not be empty");
  if (s.size() > 253) return Bad(where, "must be at most 253 characters");
  for (unsigned char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return Bad(where, "must consist of lower case alphanumeric characters, '-' or '.'");
  }
  return OkStatus();
}

Result<SecretSource> ParseSecret(const YAML::Node& node, const std::string& where,
                                 const std::string& base_dir) {
  SIGIL_RETURN_IF_ERROR(OnlyKnownKeys(node, where,
                                      {"namespace", "name", "directory", "items", "mode", "owner",
                                       "group", "optional", "on_delete"}));
  SecretSource s;
  s.namespace_ = "default";
  if (node["namespace"]) {
    SIGIL_ASSIGN_OR_RETURN(s.namespace_, String(node["namespace"], where + ".namespace"));
  }
  SIGIL_RETURN_IF_ERROR(CheckName(s.namespace_, where + ".namespace"));
  if (!node["name"]) return Bad(where, "name is required");
  SIGIL_ASSIGN_OR_RETURN(s.name, String(node["name"], where + ".name"));
  SIGIL_RETURN_IF_ERROR(CheckName(s.name, where + ".name"));
  if (!node["directory"]) return Bad(where, "directory is required");
  SIGIL_ASSIGN_OR_RETURN(std::string dir, String(node["directory"], where + ".directory"));
  if (dir.empty()) return Bad(where + ".directory", "must not be empty");
  s.directory = Resolve(dir, base_dir);
  while (s.directory.size() > 1 && s.directory.back() == '/') s.directory.pop_back();
  if (node["mode"]) {
    SIGIL_ASSIGN_OR_RETURN(std::string m, String(node["mode"], where + ".mode"));
    auto mode = ParseMode(m);
    if (!mode.ok()) return Bad(where + ".mode", mode.error().message());
    s.mode = *mode;
  }
  if (node["owner"]) {
    SIGIL_ASSIGN_OR_RETURN(s.owner, Integer(node["owner"], where + ".owner", 0, 0xfffffffe));
  }
  if (node["group"]) {
    SIGIL_ASSIGN_OR_RETURN(s.group, Integer(node["group"], where + ".group", 0, 0xfffffffe));
  }
  if (node["optional"]) {
    SIGIL_ASSIGN_OR_RETURN(s.optional, Bool(node["optional"], where + ".optional"));
  }
  if (node["on_delete"]) {
    SIGIL_ASSIGN_OR_RETURN(std::string d, String(node["on_delete"], where + ".on_delete"));
    if (d != "keep" && d != "remove") return Bad(where + ".on_delete", "must be keep or remove");
    s.remove_on_delete = d == "remove";
  }
  if (const YAML::Node& items = node["items"]) {
    if (!items.IsSequence() || items.size() == 0)
      return Bad(where + ".items", "must be a non-empty list");
    std::set<std::string> paths;
    for (size_t i = 0; i < items.size(); ++i) {
      std::string at = where + ".items[" + std::to_string(i) + "]";
      SIGIL_RETURN_IF_ERROR(OnlyKnownKeys(items[i], at, {"key", "path", "mode"}));
      Item item;
      if (!items[i]["key"]) return Bad(at, "key is required");
      SIGIL_ASSIGN_OR_RETURN(item.key, String(items[i]["key"], at + ".key"));
      if (item.key.empty()) return Bad(at + ".key", "must not be empty");
      item.path = item.key;
      if (items[i]["path"]) {
        SIGIL_ASSIGN_OR_RETURN(item.path, String(items[i]["path"], at + ".path"));
      }
      if (Status st = CheckItemPath(item.path); !st.ok()) return Bad(at + ".path", st.message());
      if (!paths.insert(item.path).second)
        return Bad(at + ".path", "\"" + item.path + "\" is given twice");
      if (items[i]["mode"]) {
        SIGIL_ASSIGN_OR_RETURN(std::string m, String(items[i]["mode"], at + ".mode"));
        auto mode = ParseMode(m);
        if (!mode.ok()) return Bad(at + ".mode", mode.error().message());
        item.mode = *mode;
      }
      s.items.push_back(std::move(item));
    }
    // A path must not be both a file and a directory ("a" and "a/b").
    for (const std::string& p : paths) {
      for (size_t slash = p.find('/'); slash != std::string::npos; slash = p.find('/', slash + 1)) {
        if (paths.count(p.substr(0, slash)))
          return Bad(where + ".items",
                     "\"" + p.substr(0, slash) + "\" is both a file and a directory");
      }
    }
  }
  return s;
}

// A Vault path (no leading /v1/): segments of URL-safe characters, none "." or "..".
Status CheckVaultPath(const std::string& s, const std::string& where) {
  if (s.empty() || s.size() > 1024 || s.front() == '/' || s.back() == '/')
    return Bad(where, "must be a Vault path like database/creds/readonly");
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    std::string_view seg(s.data() + start, (slash == std::string::npos ? s.size() : slash) - start);
    if (seg.empty() || seg == "." || seg == "..")
      return Bad(where, "must be a Vault path like database/creds/readonly");
    for (char c : seg) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.' || c == '@';
      if (!ok) return Bad(where, "must be a Vault path like database/creds/readonly");
    }
    if (slash == std::string::npos) return OkStatus();
    start = slash + 1;
  }
}

Result<EnvVar> ParseEnv(const YAML::Node& node, const std::string& where) {
  SIGIL_RETURN_IF_ERROR(OnlyKnownKeys(
      node, where, {"name", "prefix", "namespace", "secret", "credential", "key", "optional"}));
  EnvVar e;
  e.namespace_ = "default";
  if (node["name"]) {
    SIGIL_ASSIGN_OR_RETURN(e.name, String(node["name"], where + ".name"));
  }
  if (node["prefix"]) {
    SIGIL_ASSIGN_OR_RETURN(e.prefix, String(node["prefix"], where + ".prefix"));
  }
  if (node["namespace"]) {
    SIGIL_ASSIGN_OR_RETURN(e.namespace_, String(node["namespace"], where + ".namespace"));
  }
  SIGIL_RETURN_IF_ERROR(CheckName(e.namespace_, where + ".namespace"));
  if (node["secret"].IsDefined() == node["credential"].IsDefined())
    return Bad(where, "give secret or credential");
  if (node["secret"]) {
    SIGIL_ASSIGN_OR_RETURN(e.secret, String(node["secret"], where + ".secret"));
    SIGIL_RETURN_IF_ERROR(CheckName(e.secret, where + ".secret"));
  } else {
    SIGIL_ASSIGN_OR_RETURN(e.credential, String(node["credential"], where + ".credential"));
    SIGIL_RETURN_IF_ERROR(CheckVaultPath(e.credential, where + ".credential"));
  }
  if (node["key"]) {
    SIGIL_ASSIGN_OR_RETURN(e.key, String(node["key"], where + ".key"));
  }
  if (node["optional"]) {
    SIGIL_ASSIGN_OR_RETURN(e.optional, Bool(node["optional"], where + ".optional"));
  }
  if (!e.name.empty()) {
    if (!IsEnvName(e.name))
      return Bad(where + ".name", "must be a variable name ([A-Za-z_][A-Za-z0-9_]*)");
    if (e.key.empty()) return Bad(where, "key is required with name");
    if (!e.prefix.empty()) return Bad(where, "prefix goes without name (every key of the Secret)");
  } else {
    if (!e.key.empty()) return Bad(where, "name is required with key");
    if (!e.prefix.empty() && !IsEnvName(e.prefix))
      return Bad(where + ".prefix", "must start a variable name ([A-Za-z_][A-Za-z0-9_]*)");
  }
  return e;
}

}  // namespace

bool IsEnvName(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

Result<int> ParseSignal(const std::string& text) {
  static const std::pair<const char*, int> kSignals[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
      {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"WINCH", SIGWINCH}};
  std::string_view name = text;
  if (name.starts_with("SIG")) name.remove_prefix(3);
  for (const auto& [n, v] : kSignals) {
    if (name == n) return v;
  }
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc() && end == text.data() + text.size()) {
    for (const auto& [n, s] : kSignals) {
      if (v == s) return v;
    }
  }
  return InvalidArgumentError(
      "must be one of SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2, SIGTERM, SIGWINCH; got "
      "\"" +
      text + "\"");
}

Result<int> ParseMode(const std::string& text) {
  std::string_view s = text;
  int base = 10;
  if (s.starts_with("0o") || s.starts_with("0O")) {
    s.remove_prefix(2);
    base = 8;
  } else if (s.size() > 1 && s.front() == '0') {
    base = 8;
  }
  int v = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0 || v > 0777) {
    return InvalidArgumentError(
        "a file mode must be from 0 to 0777 (octal 0644, 0o644 or decimal 420), got \"" + text +
        "\"");
  }
  return v;
}

Status CheckItemPath(const std::string& path) {
  if (path.empty()) return InvalidArgumentError("must not be empty");
  if (path.front() == '/') return InvalidArgumentError("must be a relative path");
  if (path.starts_with("..")) return InvalidArgumentError("must not start with '..'");
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view part(path.data() + start,
                          (slash == std::string::npos ? path.size() : slash) - start);
    if (part.empty()) return InvalidArgumentError("must not contain empty path elements");
    if (part == "..") return InvalidArgumentError("must not contain '..'");
    if (part == ".") return InvalidArgumentError("must not contain '.' elements");
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f) return InvalidArgumentError("must not contain control characters");
  }
  return OkStatus();
}

Result<Config> ParseConfig(const std::string& yaml_text, const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("the configuration is not valid YAML: " + e.msg + " (line " +
                                std::to_string(e.mark.line + 1) + ")");
  }
  try {
    SIGIL_RETURN_IF_ERROR(
        OnlyKnownKeys(root, "configuration",
                      {"server", "ca_file", "kubeconfig", "context", "auth", "secrets", "env",
                       "exec", "credentials", "vault", "backoff", "watch_timeout_seconds"}));
    Config c;
    if (root["server"]) {
      SIGIL_ASSIGN_OR_RETURN(c.server, String(root["server"], "server"));
    }
    if (root["ca_file"]) {
      SIGIL_ASSIGN_OR_RETURN(c.ca_file, String(root["ca_file"], "ca_file"));
      c.ca_file = Resolve(c.ca_file, base_dir);
    }
    if (root["kubeconfig"]) {
      SIGIL_ASSIGN_OR_RETURN(c.kubeconfig, String(root["kubeconfig"], "kubeconfig"));
      c.kubeconfig = Resolve(c.kubeconfig, base_dir);
    }
    if (root["context"]) {
      SIGIL_ASSIGN_OR_RETURN(c.context, String(root["context"], "context"));
    }
    if (c.server.empty() == c.kubeconfig.empty())
      return InvalidArgumentError("configuration: give either server or kubeconfig");
    if (!c.kubeconfig.empty() && !c.ca_file.empty())
      return InvalidArgumentError(
          "configuration: ca_file goes with server, not kubeconfig (the kubeconfig names its CA)");
    if (!c.server.starts_with("https://")) {
      if (!c.server.empty()) return Bad("server", "must be an https:// URL");
    }
    if (const YAML::Node& auth = root["auth"]) {
      SIGIL_RETURN_IF_ERROR(OnlyKnownKeys(
          auth, "auth", {"token_file", "client_certificate_file", "client_key_file"}));
      if (auth["token_file"]) {
        SIGIL_ASSIGN_OR_RETURN(c.auth.token_file, String(auth["token_file"], "auth.token_file"));
      }
      if (auth["client_certificate_file"]) {
        SIGIL_ASSIGN_OR_RETURN(c.auth.cert_file, String(auth["client_certificate_file"],
                                                        "auth.client_certificate_file"));
      }
      if (auth["client_key_file"]) {
        SIGIL_ASSIGN_OR_RETURN(c.auth.key_file,
                               String(auth["client_key_file"], "auth.client_key_file"));
      }
      c.auth.token_file = Resolve(c.auth.token_file, base_dir);
      c.auth.cert_file = Resolve(c.auth.cert_file, base_dir);
      c.auth.key_file = Resolve(c.auth.key_file, base_dir);
      if (c.auth.cert_file.empty() != c.auth.key_file.empty()) {
        return Bad("auth", "client_certificate_file and client_key_file go together");
      }
    }
    if (!c.server.empty() && c.auth.token_file.empty() && c.auth.cert_file.empty()) {
      return Bad("auth",
                 "give token_file or client_certificate_file and client_key_file (with server; a "
                 "kubeconfig carries its own user)");
    }
    if (const YAML::Node& b = root["backoff"]) {
      SIGIL_RETURN_IF_ERROR(OnlyKnownKeys(b, "backoff", {"min_milliseconds", "max_milliseconds"}));
      if (b["min_milliseconds"]) {
        SIGIL_ASSIGN_OR_RETURN(
            int64_t v, Integer(b["min_milliseconds"], "backoff.min_milliseconds", 10, 600000));
        c.backoff_min = std::chrono::milliseconds(v);
      }
      if (b["max_milliseconds"]) {
        SIGIL_ASSIGN_OR_RETURN(
            int64_t v, Integer(b["max_milliseconds"], "backoff.max_milliseconds", 10, 3600000));
        c.backoff_max = std::chrono::milliseconds(v);
      }
      if (c.backoff_max < c.backoff_min)
        return Bad("backoff", "max_milliseconds must not be less than min_milliseconds");
    }
    if (root["watch_timeout_seconds"]) {
      SIGIL_ASSIGN_OR_RETURN(
          int64_t v, Integer(root["watch_timeout_seconds"], "watch_timeout_seconds", 10, 3600));
      c.watch_timeout = std::chrono::seconds(v);
    }
    if (const YAML::Node& env = root["env"]) {
      if (!env.IsSequence()) return Bad("env", "must be a list");
      std::set<std::string> names;
      for (size_t i = 0; i < env.size(); ++i) {
        std::string at = "env[" + std::to_string(i) + "]";
        SIGIL_ASSIGN_OR_RETURN(EnvVar e, ParseEnv(env[i], at));
        if (!e.name.empty() && !names.insert(e.name).second) {
          return Bad(at + ".name", "\"" + e.name + "\" is given twice");
        }
        c.env.push_back(std::move(e));
      }
    }
    if (const YAML::Node& exec = root["exec"]) {
      SIGIL_RETURN_IF_ERROR(OnlyKnownKeys(
          exec, "exec", {"on_change", "signal", "stop_signal", "stop_timeout_seconds"}));
      if (exec["on_change"]) {
        SIGIL_ASSIGN_OR_RETURN(std::string v, String(exec["on_change"], "exec.on_change"));
        if (v == "restart") {
          c.exec.on_change = Exec::OnChange::kRestart;
        } else if (v == "signal") {
          c.exec.on_change = Exec::OnChange::kSignal;
        } else if (v == "none") {
          c.exec.on_change = Exec::OnChange::kNone;
        } else {
          return Bad("exec.on_change", "must be restart, signal or none");
        }
      }
      for (auto [field, out] :
           {std::pair{"signal", &c.exec.signal}, std::pair{"stop_signal", &c.exec.stop_signal}}) {
        if (!exec[field]) continue;
        SIGIL_ASSIGN_OR_RETURN(std::string v, String(exec[field], std::string("exec.") + field));
        auto sig = ParseSignal(v);
        if (!sig.ok()) return Bad(std::string("exec.") + field, sig.error().message());
        *out = *sig;
      }
      if (exec["stop_timeout_seconds"]) {
        SIGIL_ASSIGN_OR_RETURN(
            int64_t v, Integer(exec["stop_timeout_seconds"], "exec.stop_timeout_seconds", 1, 3600));
        c.exec.stop_timeout = std::chrono::seconds(v);
      }
    }
    if (const YAML::Node& v = root["vault"]) {
      SIGIL_RETURN_IF_ERROR(OnlyKnownKeys(v, "vault", {"login"}));
      if (const YAML::Node& login = v["login"]) {
        SIGIL_RETURN_IF_ERROR(OnlyKnownKeys(login, "vault.login", {"method", "role", "mount"}));
        VaultLogin l;
        std::string method = "kubernetes";
        if (login["method"]) {
          SIGIL_ASSIGN_OR_RETURN(method, String(login["method"], "vault.login.method"));
        }
        if (method != "kubernetes")
          return Bad("vault.login.method", "only kubernetes is supported");
        if (!login["role"]) return Bad("vault.login", "role is required");
        SIGIL_ASSIGN_OR_RETURN(l.role, String(login["role"], "vault.login.role"));
        if (login["mount"]) {
          SIGIL_ASSIGN_OR_RETURN(l.mount, String(login["mount"], "vault.login.mount"));
        }
        SIGIL_RETURN_IF_ERROR(CheckVaultPath(l.mount, "vault.login.mount"));
        if (c.auth.token_file.empty())
          return Bad("vault.login",
                     "needs auth.token_file (the service-account token it logs in with)");
        c.vault_login = std::move(l);
      }
    }
    if (const YAML::Node& creds = root["credentials"]) {
      if (!creds.IsSequence()) return Bad("credentials", "must be a list");
      for (size_t i = 0; i < creds.size(); ++i) {
        std::string at = "credentials[" + std::to_string(i) + "]";
        SIGIL_RETURN_IF_ERROR(
            OnlyKnownKeys(creds[i], at, {"path", "directory", "items", "mode", "owner", "group"}));
        if (!creds[i]["path"]) return Bad(at, "path is required");
        // The same item and mode rules as a Secret's; parsed through ParseSecret's code.
        YAML::Node as_secret;
        as_secret["name"] = "credential";
        as_secret["directory"] = creds[i]["directory"] ? creds[i]["directory"] : YAML::Node("-");
        for (const char* k : {"items", "mode", "owner", "group"}) {
          if (creds[i][k]) as_secret[k] = creds[i][k];
        }
        SIGIL_ASSIGN_OR_RETURN(SecretSource s, ParseSecret(as_secret, at, base_dir));
        CredentialSource cs;
        SIGIL_ASSIGN_OR_RETURN(cs.path, String(creds[i]["path"], at + ".path"));
        if (cs.path.starts_with("/v1/")) cs.path.erase(0, 4);
        SIGIL_RETURN_IF_ERROR(CheckVaultPath(cs.path, at + ".path"));
        if (creds[i]["directory"]) cs.directory = s.directory;
        cs.items = std::move(s.items);
        cs.mode = s.mode;
        cs.owner = s.owner;
        cs.group = s.group;
        for (const CredentialSource& other : c.credentials) {
          if (other.path == cs.path) return Bad(at + ".path", "\"" + cs.path + "\" is given twice");
        }
        c.credentials.push_back(std::move(cs));
      }
    }
    for (const EnvVar& e : c.env) {
      if (e.credential.empty()) continue;
      bool listed = false;
      for (const CredentialSource& cs : c.credentials) listed = listed || cs.path == e.credential;
      if (!listed)
        c.credentials.push_back(
            CredentialSource{e.credential, "", {}, 0644, std::nullopt, std::nullopt});
    }
    const YAML::Node& secrets = root["secrets"];
    if (secrets && !secrets.IsSequence()) return Bad("secrets", "must be a list");
    if ((!secrets || secrets.size() == 0) && c.env.empty() && c.credentials.empty()) {
      return Bad("secrets", "a non-empty list is required (or env, with sigil-agent run)");
    }
    std::set<std::string> dirs;
    for (size_t i = 0; secrets && i < secrets.size(); ++i) {
      std::string at = "secrets[" + std::to_string(i) + "]";
      SIGIL_ASSIGN_OR_RETURN(SecretSource s, ParseSecret(secrets[i], at, base_dir));
      // Two sources in one directory would swap each other's ..data link.
      if (!dirs.insert(s.directory).second)
        return Bad(at + ".directory", "\"" + s.directory + "\" is used by another source");
      c.secrets.push_back(std::move(s));
    }
    for (size_t i = 0; i < c.credentials.size(); ++i) {
      const std::string& d = c.credentials[i].directory;
      if (!d.empty() && !dirs.insert(d).second) {
        return Bad("credentials[" + std::to_string(i) + "].directory",
                   "\"" + d + "\" is used by another source");
      }
    }
    return c;
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string("configuration: ") + e.what());
  }
}

}  // namespace sigil::agent
