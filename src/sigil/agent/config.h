// agent/config.h: the configuration file of `sigil-agent` (YAML), parsed and checked in full
// before the agent starts, so a mistake is reported once, with the field's path, and nothing
// runs half-configured. docs/agent.md documents every field. Thread safety: value types.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "sigil/base/result.h"

namespace sigil::agent {

// One file of a rendered Secret: its key and the path it takes in the directory (as a
// kubelet secret volume's `items`).
struct Item {
  std::string key;
  std::string path;         // relative; may hold '/' (subdirectories); never "..", never absolute
  std::optional<int> mode;  // the source's `mode` when absent
};

// A Secret rendered into a directory, as the kubelet lays out a secret volume.
struct SecretSource {
  std::string namespace_;
  std::string name;
  std::string
      directory;  // absolute after parsing (relative paths resolve against the file's directory)
  std::vector<Item> items;        // empty: every key, each file named as its key
  int mode = 0644;                // kubelet's defaultMode
  std::optional<uint32_t> owner;  // uid of the files (needs the privilege to chown)
  std::optional<uint32_t> group;  // gid of the files
  bool optional = false;          // --once: a missing Secret is not an error
  bool remove_on_delete = false;  // on_delete: remove (default keep: the last values stay)
};

// Environment variables for `sigil-agent run` (as a container's env / envFrom): one variable
// from one key, or every key of a Secret (those that are valid variable names) with a prefix.
struct EnvVar {
  std::string name;    // empty: every key, each as prefix + key
  std::string prefix;  // with an empty name
  std::string namespace_;
  std::string secret;
  std::string credential;  // instead of secret: a Vault path of `credentials` (added if not listed)
  std::string key;         // with a name
  bool optional = false;   // a missing Secret or key leaves the variable unset instead of waiting
};

// What `sigil-agent run` does to its program when a followed Secret changes.
struct Exec {
  enum class OnChange { kRestart, kSignal, kNone };
  OnChange on_change = OnChange::kRestart;
  int signal = 1;        // SIGHUP: with on_change signal
  int stop_signal = 15;  // SIGTERM: asks the program to stop (restart, or the agent stopping)
  std::chrono::seconds stop_timeout{10};  // then SIGKILL
};

// A Vault-face path whose answer carries a lease (dynamic credentials: database/creds/<role>),
// read with the agent's Vault token, rendered like a Secret (each field of `data` a file), the
// lease renewed before it ends and, when it cannot be renewed further, new credentials read
// and rendered before the old ones expire.
struct CredentialSource {
  std::string path;       // without /v1/: database/creds/readonly
  std::string directory;  // empty: only env variables use it
  std::vector<Item> items;
  int mode = 0644;
  std::optional<uint32_t> owner, group;
};

// How the agent gets a Vault token for `credentials`: by logging in with `auth.token_file`'s
// service-account JWT (method kubernetes), or, without `vault.login`, by using the token file's
// token as it is. Either way the token is renewed before it expires.
struct VaultLogin {
  std::string role;
  std::string mount = "kubernetes";
};

struct Auth {
  std::string token_file;  // a sigil token or a service-account JWT; read again at each connection
  std::string cert_file;   // a client certificate (PEM) and its key
  std::string key_file;
};

struct Config {
  // Where the server is: `server` and `ca_file`, or a kubeconfig (its server, CA and user).
  std::string server;
  std::string ca_file;  // empty: the system's trust store
  std::string kubeconfig;
  std::string context;
  Auth auth;
  std::vector<SecretSource> secrets;
  std::vector<EnvVar> env;  // only with `sigil-agent run`
  std::vector<CredentialSource> credentials;
  std::optional<VaultLogin> vault_login;
  Exec exec;
  // Backoff between reconnection attempts: doubles from `min` to `max`, with jitter.
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{30000};
  // Each watch asks the server to end it after this long (it is then resumed at once).
  std::chrono::seconds watch_timeout{300};
};

// `base_dir` is the directory relative paths in the file resolve against.
Result<Config> ParseConfig(const std::string& yaml_text, const std::string& base_dir);

// [A-Za-z_][A-Za-z0-9_]*: a variable name every shell accepts.
bool IsEnvName(std::string_view s);

// A signal by name ("SIGHUP", "HUP") or number; only those a program can be asked to act on.
Result<int> ParseSignal(const std::string& text);

// A file mode as YAML writers give it: 0644 / 0o644 (octal) or 420 (decimal), at most 0777.
Result<int> ParseMode(const std::string& text);

// The rules of a kubelet volume item path: not empty, relative, no ".." element, not starting
// with "..", no empty element.
Status CheckItemPath(const std::string& path);

}  // namespace sigil::agent
