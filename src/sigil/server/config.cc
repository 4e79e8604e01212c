#include "sigil/server/config.h"

#include <algorithm>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <set>

#include "sigil/base/file.h"
#include "sigil/base/logging.h"

namespace sigil::server {
namespace {

Status CheckKeys(const YAML::Node& node, const std::string& where, const std::set<std::string>& allowed) {
  for (const auto& kv : node) {
    std::string k = kv.first.as<std::string>();
    if (!allowed.count(k)) return InvalidArgumentError("config: unknown key \"" + where + k + "\"");
  }
  return OkStatus();
}

template <typename T>
Status Get(const YAML::Node& node, const char* key, const std::string& where, T* out) {
  if (!node[key]) return OkStatus();
  try {
    *out = node[key].as<T>();
  } catch (const YAML::Exception&) {
    return InvalidArgumentError("config: \"" + where + key + "\" has the wrong type");
  }
  return OkStatus();
}

Status GetSeconds(const YAML::Node& node, const char* key, const std::string& where, std::chrono::seconds* out) {
  int64_t v = out->count();
  SIGIL_RETURN_IF_ERROR(Get(node, key, where, &v));
  if (v <= 0) return InvalidArgumentError("config: \"" + where + key + "\" must be positive");
  *out = std::chrono::seconds(v);
  return OkStatus();
}

Status Parse(const YAML::Node& root, Config* c) {
  if (!root.IsMap()) return InvalidArgumentError("config: the document must be a YAML mapping");
  SIGIL_RETURN_IF_ERROR(CheckKeys(root, "", {"listen", "data_dir", "log", "tls", "seal", "encryption_config",
                                               "storage", "limits", "threads", "history", "auth", "audit", "kms",
                                               "kms_plugin"}));
  SIGIL_RETURN_IF_ERROR(Get(root, "listen", "", &c->listen));
  SIGIL_RETURN_IF_ERROR(Get(root, "data_dir", "", &c->data_dir));
  SIGIL_RETURN_IF_ERROR(Get(root, "encryption_config", "", &c->encryption_config_file));
  SIGIL_RETURN_IF_ERROR(Get(root, "threads", "", &c->http.threads));
  if (YAML::Node log = root["log"]) {
    if (!log.IsMap()) return InvalidArgumentError("config: \"log\" must be a mapping");
    SIGIL_RETURN_IF_ERROR(CheckKeys(log, "log.", {"level", "format"}));
    SIGIL_RETURN_IF_ERROR(Get(log, "level", "log.", &c->log_level));
    SIGIL_RETURN_IF_ERROR(Get(log, "format", "log.", &c->log_format));
  }
  if (YAML::Node tls = root["tls"]) {
    if (!tls.IsMap()) return InvalidArgumentError("config: \"tls\" must be a mapping");
    SIGIL_RETURN_IF_ERROR(CheckKeys(tls, "tls.", {"cert_file", "key_file", "ca_file", "hosts"}));
    SIGIL_RETURN_IF_ERROR(Get(tls, "cert_file", "tls.", &c->tls_cert_file));
    SIGIL_RETURN_IF_ERROR(Get(tls, "key_file", "tls.", &c->tls_key_file));
    SIGIL_RETURN_IF_ERROR(Get(tls, "ca_file", "tls.", &c->tls_ca_file));
    SIGIL_RETURN_IF_ERROR(Get(tls, "hosts", "tls.", &c->tls_hosts));
  }
  if (YAML::Node seal = root["seal"]) {
    if (!seal.IsMap()) return InvalidArgumentError("config: \"seal\" must be a mapping");
    SIGIL_RETURN_IF_ERROR(CheckKeys(seal, "seal.", {"type", "key_file", "endpoint", "timeout_seconds"}));
    SIGIL_RETURN_IF_ERROR(Get(seal, "type", "seal.", &c->seal_type));
    SIGIL_RETURN_IF_ERROR(Get(seal, "key_file", "seal.", &c->seal_key_file));
    SIGIL_RETURN_IF_ERROR(Get(seal, "endpoint", "seal.", &c->seal_kms_endpoint));
    std::chrono::seconds timeout = std::chrono::duration_cast<std::chrono::seconds>(c->seal_kms_timeout);
    SIGIL_RETURN_IF_ERROR(GetSeconds(seal, "timeout_seconds", "seal.", &timeout));
    c->seal_kms_timeout = timeout;
  }
  if (YAML::Node kms = root["kms"]) {
    if (!kms.IsMap()) return InvalidArgumentError("config: \"kms\" must be a mapping");
    SIGIL_RETURN_IF_ERROR(CheckKeys(kms, "kms.", {"poll_interval_seconds", "poll_interval_unhealthy_seconds",
                                                  "write_seed_ttl_seconds"}));
    SIGIL_RETURN_IF_ERROR(GetSeconds(kms, "poll_interval_seconds", "kms.", &c->kms_poll_healthy));
    SIGIL_RETURN_IF_ERROR(GetSeconds(kms, "poll_interval_unhealthy_seconds", "kms.", &c->kms_poll_unhealthy));
    SIGIL_RETURN_IF_ERROR(GetSeconds(kms, "write_seed_ttl_seconds", "kms.", &c->kms_write_seed_ttl));
  }
  if (YAML::Node plugin = root["kms_plugin"]) {
    if (!plugin.IsMap()) return InvalidArgumentError("config: \"kms_plugin\" must be a mapping");
    SIGIL_RETURN_IF_ERROR(CheckKeys(plugin, "kms_plugin.", {"socket", "rotation_period_seconds"}));
    SIGIL_RETURN_IF_ERROR(Get(plugin, "socket", "kms_plugin.", &c->kms_plugin_socket));
    if (c->kms_plugin_socket.empty() || c->kms_plugin_socket.front() != '/') {
      return InvalidArgumentError("config: kms_plugin.socket must be an absolute path");
    }
    int64_t period = 0;
    SIGIL_RETURN_IF_ERROR(Get(plugin, "rotation_period_seconds", "kms_plugin.", &period));
    if (period < 0) return InvalidArgumentError("config: kms_plugin.rotation_period_seconds must not be negative");
    c->kms_plugin_rotation_period = std::chrono::seconds(period);
  }
  if (YAML::Node storage = root["storage"]) {
    if (!storage.IsMap()) return InvalidArgumentError("config: \"storage\" must be a mapping");
    SIGIL_RETURN_IF_ERROR(CheckKeys(storage, "storage.", {"type", "max_size_mb", "watch_history", "watch_history_max_mb"}));
    std::string type = "lmdb";
    SIGIL_RETURN_IF_ERROR(Get(storage, "type", "storage.", &type));
    if (type != "lmdb") return InvalidArgumentError("config: storage.type \"" + type + "\" is not supported (lmdb)");
    uint64_t mb = c->storage_max_bytes >> 20;
    SIGIL_RETURN_IF_ERROR(Get(storage, "max_size_mb", "storage.", &mb));
    if (mb < 1) return InvalidArgumentError("config: storage.max_size_mb must be at least 1");
    c->storage_max_bytes = mb << 20;
    SIGIL_RETURN_IF_ERROR(Get(storage, "watch_history", "storage.", &c->watch_history));
    uint64_t history_mb = c->watch_history_bytes >> 20;
    SIGIL_RETURN_IF_ERROR(Get(storage, "watch_history_max_mb", "storage.", &history_mb));
    if (history_mb < 1 || history_mb > (uint64_t{1} << 20)) {
      return InvalidArgumentError("config: storage.watch_history_max_mb must be between 1 and 1048576");
    }
    c->watch_history_bytes = history_mb << 20;
  }
  if (YAML::Node auth = root["auth"]) {
    if (!auth.IsMap()) return InvalidArgumentError("config: \"auth\" must be a mapping");
    SIGIL_RETURN_IF_ERROR(CheckKeys(auth, "auth.", {"token_file", "client_ca_file", "service_accounts"}));
    SIGIL_RETURN_IF_ERROR(Get(auth, "token_file", "auth.", &c->auth_token_file));
    SIGIL_RETURN_IF_ERROR(Get(auth, "client_ca_file", "auth.", &c->auth_client_ca_file));
    if (YAML::Node sa = auth["service_accounts"]) {
      if (!sa.IsMap()) return InvalidArgumentError("config: \"auth.service_accounts\" must be a mapping");
      const std::string w = "auth.service_accounts.";
      SIGIL_RETURN_IF_ERROR(CheckKeys(sa, w, {"issuers", "audiences", "key_files", "jwks_files", "signing_issuer"}));
      SIGIL_RETURN_IF_ERROR(Get(sa, "issuers", w, &c->sa_issuers));
      SIGIL_RETURN_IF_ERROR(Get(sa, "audiences", w, &c->sa_audiences));
      SIGIL_RETURN_IF_ERROR(Get(sa, "key_files", w, &c->sa_key_files));
      SIGIL_RETURN_IF_ERROR(Get(sa, "jwks_files", w, &c->sa_jwks_files));
      SIGIL_RETURN_IF_ERROR(Get(sa, "signing_issuer", w, &c->sa_signing_issuer));
      bool external = sa["issuers"] || sa["audiences"] || sa["key_files"] || sa["jwks_files"];
      if (external && c->sa_issuers.empty()) {
        return InvalidArgumentError("config: auth.service_accounts.issuers must name at least one issuer");
      }
      if (external && c->sa_key_files.empty() && c->sa_jwks_files.empty()) {
        return InvalidArgumentError("config: auth.service_accounts needs key_files or jwks_files");
      }
      if (c->sa_signing_issuer.empty()) return InvalidArgumentError("config: auth.service_accounts.signing_issuer may not be empty");
    }
  }
  if (YAML::Node audit = root["audit"]) {
    if (!audit.IsMap()) return InvalidArgumentError("config: \"audit\" must be a mapping");
    SIGIL_RETURN_IF_ERROR(CheckKeys(audit, "audit.", {"enabled", "policy_file", "log_path", "stdout", "max_size_mb", "fsync"}));
    bool enabled = true;
    if (audit["enabled"]) {
      SIGIL_RETURN_IF_ERROR(Get(audit, "enabled", "audit.", &enabled));
    }
    c->audit_enabled = enabled;
    SIGIL_RETURN_IF_ERROR(Get(audit, "policy_file", "audit.", &c->audit_policy_file));
    SIGIL_RETURN_IF_ERROR(Get(audit, "log_path", "audit.", &c->audit_log_path));
    SIGIL_RETURN_IF_ERROR(Get(audit, "stdout", "audit.", &c->audit_stdout));
    SIGIL_RETURN_IF_ERROR(Get(audit, "max_size_mb", "audit.", &c->audit_max_size_mb));
    SIGIL_RETURN_IF_ERROR(Get(audit, "fsync", "audit.", &c->audit_fsync));
    if (c->audit_max_size_mb < 0) return InvalidArgumentError("config: audit.max_size_mb must not be negative");
  }
  if (YAML::Node history = root["history"]) {
    if (!history.IsMap()) return InvalidArgumentError("config: \"history\" must be a mapping");
    SIGIL_RETURN_IF_ERROR(CheckKeys(history, "history.", {"versions"}));
    SIGIL_RETURN_IF_ERROR(Get(history, "versions", "history.", &c->history_versions));
    if (c->history_versions < 0 || c->history_versions > 1000) {
      return InvalidArgumentError("config: history.versions must be 0..1000");
    }
  }
  if (YAML::Node limits = root["limits"]) {
    if (!limits.IsMap()) return InvalidArgumentError("config: \"limits\" must be a mapping");
    SIGIL_RETURN_IF_ERROR(CheckKeys(limits, "limits.", {"max_body_bytes", "max_header_bytes", "handshake_timeout_seconds",
                                                        "read_timeout_seconds", "idle_timeout_seconds", "shutdown_grace_seconds",
                                                        "max_connections", "max_requests_inflight",
                                                        "max_mutating_requests_inflight"}));
    SIGIL_RETURN_IF_ERROR(Get(limits, "max_connections", "limits.", &c->http.max_connections));
    SIGIL_RETURN_IF_ERROR(Get(limits, "max_requests_inflight", "limits.", &c->max_requests_inflight));
    SIGIL_RETURN_IF_ERROR(Get(limits, "max_mutating_requests_inflight", "limits.", &c->max_mutating_requests_inflight));
    SIGIL_RETURN_IF_ERROR(Get(limits, "max_body_bytes", "limits.", &c->http.max_body_bytes));
    SIGIL_RETURN_IF_ERROR(Get(limits, "max_header_bytes", "limits.", &c->http.max_header_bytes));
    SIGIL_RETURN_IF_ERROR(GetSeconds(limits, "handshake_timeout_seconds", "limits.", &c->http.handshake_timeout));
    SIGIL_RETURN_IF_ERROR(GetSeconds(limits, "read_timeout_seconds", "limits.", &c->http.read_timeout));
    SIGIL_RETURN_IF_ERROR(GetSeconds(limits, "idle_timeout_seconds", "limits.", &c->http.idle_timeout));
    SIGIL_RETURN_IF_ERROR(GetSeconds(limits, "shutdown_grace_seconds", "limits.", &c->http.shutdown_grace));
  }
  return OkStatus();
}

}  // namespace

Status Config::ApplyListen() {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return InvalidArgumentError("listen must be ADDRESS:PORT, got \"" + listen + "\"");
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string port = listen.substr(colon + 1);
  unsigned v = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (ec != std::errc() || p != port.data() + port.size() || v > 65535) {
    return InvalidArgumentError("listen port must be 0..65535, got \"" + port + "\"");
  }
  http.address = host;
  http.port = static_cast<uint16_t>(v);
  return OkStatus();
}

Status Config::Validate() {
  SIGIL_RETURN_IF_ERROR(ApplyListen());
  log::Level level;
  if (!log::ParseLevel(log_level, &level)) return InvalidArgumentError("log level must be trace, debug, info, warn, error or off");
  if (log_format != "text" && log_format != "json") return InvalidArgumentError("log format must be text or json");
  if (tls_cert_file.empty() != tls_key_file.empty()) return InvalidArgumentError("tls.cert_file and tls.key_file go together");
  if (dev) {
    // Dev mode's store lives in a temporary directory that is removed at exit, and its root
    // key only in memory: a data_dir would be silently ignored, so it is refused instead.
    if (!data_dir.empty()) {
      return InvalidArgumentError("dev mode keeps its store in a temporary directory removed at exit and cannot use data_dir (" +
                                  data_dir + "); for a store that persists, run without --dev (a key-file seal: see the README)");
    }
    seal_type = "dev";
    return OkStatus();
  }
  if (data_dir.empty()) return InvalidArgumentError("data_dir is required outside dev mode (or run with --dev)");
  if (seal_type == "dev") return InvalidArgumentError("seal.type dev is only allowed in dev mode");
  if (seal_type == "shamir") {
    if (!seal_key_file.empty()) return InvalidArgumentError("seal.key_file is for the key-file seal; the shamir seal takes none");
    return OkStatus();
  }
  if (seal_type == "kms") {
    if (!seal_key_file.empty()) return InvalidArgumentError("seal.key_file is for the key-file seal; the kms seal takes an endpoint");
    if (!seal_kms_endpoint.starts_with("unix:///")) {
      return InvalidArgumentError("seal.endpoint is required for the kms seal: the KMS v2 plugin's socket, unix:///path/to/socket");
    }
    return OkStatus();
  }
  if (!seal_kms_endpoint.empty()) return InvalidArgumentError("seal.endpoint is for the kms seal (seal.type: kms)");
  if (seal_type != "key-file") {
    return InvalidArgumentError("seal.type \"" + seal_type + "\" is not supported (shamir, key-file, kms)");
  }
  if (seal_key_file.empty()) {
    return InvalidArgumentError("seal.key_file is required for the key-file seal; create one with "
                                "`sigil operator generate-root-key --out PATH`");
  }
  return OkStatus();
}

Result<Config> ParseConfig(std::string_view yaml) {
  Config c;
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (root.IsNull()) return c;
    SIGIL_RETURN_IF_ERROR(Parse(root, &c));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string("config: ") + e.what());
  }
  return c;
}

Result<Config> LoadConfigFile(const std::string& path) {
  SIGIL_ASSIGN_OR_RETURN(std::string text, file::ReadFile(path, 1 << 20));
  auto c = ParseConfig(text);
  if (!c.ok()) return c.error().WithContext(path);
  return c;
}

}  // namespace sigil::server
