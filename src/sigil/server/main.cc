// The sigil binary: `sigil server`, `sigil operator ...`, `sigil kubeconfig`,
// `sigil secret history|rollback|rotate`, `sigil version`.
#include <CLI/CLI.hpp>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>

#include "sigil/audit/log.h"
#include "sigil/barrier/seal.h"
#include "sigil/base/logging.h"
#include "sigil/client/commands.h"
#include "sigil/client/operator.h"
#include "sigil/crypto/random.h"
#include "sigil/server/server.h"

namespace {

using sigil::Status;
using sigil::server::Config;

struct Flags {
  std::string config_file, listen, data_dir, log_level, log_format, encryption_config, seal_key_file;
  bool dev = false;
};

void AddConfigFlags(CLI::App* cmd, Flags* f) {
  cmd->add_option("--config,-c", f->config_file, "YAML config file (docs/configuration.md)");
  cmd->add_option("--data-dir", f->data_dir, "data directory (overrides data_dir)");
  cmd->add_option("--seal-key-file", f->seal_key_file, "root key file for the key-file seal (overrides seal.key_file)");
  cmd->add_option("--encryption-provider-config", f->encryption_config,
                  "Kubernetes EncryptionConfiguration file (overrides encryption_config)");
  cmd->add_option("--log-level", f->log_level, "trace|debug|info|warn|error|off");
  cmd->add_option("--log-format", f->log_format, "text|json");
}

sigil::Result<Config> BuildConfig(const Flags& f) {
  Config c;
  if (!f.config_file.empty()) {
    SIGIL_ASSIGN_OR_RETURN(c, sigil::server::LoadConfigFile(f.config_file));
  }
  c.dev = c.dev || f.dev;
  if (!f.listen.empty()) c.listen = f.listen;
  if (!f.data_dir.empty()) c.data_dir = f.data_dir;
  if (!f.log_level.empty()) c.log_level = f.log_level;
  if (!f.log_format.empty()) c.log_format = f.log_format;
  if (!f.encryption_config.empty()) c.encryption_config_file = f.encryption_config;
  if (!f.seal_key_file.empty()) c.seal_key_file = f.seal_key_file;
  sigil::log::Level level = sigil::log::Level::kInfo;
  sigil::log::ParseLevel(c.log_level, &level);
  sigil::log::Init(level, c.log_format == "json");
  return c;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

// "90", "90s", "15m", "24h", "30d" -> seconds; 0 when malformed.
static int64_t ParseTtl(const std::string& s) {
  if (s.empty()) return 0;
  int64_t unit = 1;
  std::string digits = s;
  switch (s.back()) {
    case 's': unit = 1; digits.pop_back(); break;
    case 'm': unit = 60; digits.pop_back(); break;
    case 'h': unit = 3600; digits.pop_back(); break;
    case 'd': unit = 86400; digits.pop_back(); break;
    default: break;
  }
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoll(digits) * unit;
}

int main(int argc, char** argv) {
  sigil::crypto::Init();
  CLI::App app{"sigil: a secrets manager that serves the Kubernetes Secret API and the Vault API"};
  app.require_subcommand(1);
  Flags flags;

  CLI::App* server = app.add_subcommand("server", "run the server");
  AddConfigFlags(server, &flags);
  server->add_flag("--dev", flags.dev, "dev mode: temporary storage, in-memory root key, generated TLS");
  server->add_option("--listen", flags.listen, "ADDRESS:PORT to serve on (default 127.0.0.1:8443)");

  CLI::App* op = app.add_subcommand("operator", "initialise, unseal and seal a server; operate on a stopped server's store");
  op->require_subcommand(1);
  CLI::App* rotate = op->add_subcommand("rotate", "add a keyring term (server must be stopped)");
  AddConfigFlags(rotate, &flags);
  std::string key_out;
  CLI::App* genkey = op->add_subcommand("generate-root-key", "write a new random root key file (mode 0600)");
  genkey->add_option("--out", key_out, "path of the new key file")->required();

  // Against a running server's Vault API (client/operator.h).
  std::string vault_addr, vault_ca, vault_token, unseal_key;
  int init_shares = 5, init_threshold = 3;
  bool op_json = false, unseal_reset = false;
  CLI::App* op_init = op->add_subcommand("init", "initialise a server with the shamir seal: prints the unseal key shares and root token");
  CLI::App* op_unseal = op->add_subcommand("unseal", "hand one unseal key share to a sealed server (prompts for it when not given)");
  CLI::App* op_seal = op->add_subcommand("seal", "seal a running server (needs a token with sudo on sys/seal)");
  CLI::App* op_status = op->add_subcommand("status", "print a server's seal status (exit code 2 when sealed)");
  for (CLI::App* c : {op_init, op_unseal, op_seal, op_status}) {
    c->add_option("--address", vault_addr, "the server's URL (default: $VAULT_ADDR, then https://127.0.0.1:8443)");
    c->add_option("--ca-cert", vault_ca, "CA certificate file to trust (default: $VAULT_CACERT)");
    if (c != op_seal) c->add_flag("--json", op_json, "print the server's answer as JSON");
  }
  op_seal->add_option("--token", vault_token, "token (default: $VAULT_TOKEN)");
  op_init->add_option("--key-shares", init_shares, "number of key shares")->capture_default_str()->check(CLI::Range(1, 255));
  op_init->add_option("--key-threshold", init_threshold, "shares needed to unseal")->capture_default_str()->check(CLI::Range(1, 255));
  op_unseal->add_option("key", unseal_key, "the key share (hex or base64); - reads standard input");
  op_unseal->add_flag("--reset", unseal_reset, "discard the shares handed in so far");

  CLI::App* kubeconfig = app.add_subcommand("kubeconfig", "print a kubeconfig for a running server (on the server's host)");
  AddConfigFlags(kubeconfig, &flags);
  sigil::server::KubeconfigRequest kreq;
  bool no_check = false;
  kubeconfig->add_option("--listen", flags.listen, "the server's listen address, if not in --config");
  kubeconfig->add_option("--server", kreq.server_url, "server URL to write (default: from the listen address)");
  kubeconfig->add_option("--user", kreq.user, "user name (the client certificate's CN)")
      ->required()
      ->check([](const std::string& v) { return v.empty() ? std::string("the user name may not be empty") : std::string(); });
  kubeconfig->add_option("--group", kreq.groups, "groups (the certificate's O), repeatable; none unless given");
  kubeconfig->add_option("--days", kreq.days, "certificate lifetime in days")->capture_default_str()->check(CLI::Range(1, 3650));
  kubeconfig->add_flag("--no-check", no_check, "do not check that the server answers with this kubeconfig");

  CLI::App* secret = app.add_subcommand("secret", "work with a running server's secrets (uses your kubeconfig)");
  secret->require_subcommand(1);
  std::string kubeconfig_path, context, ref_text, output;
  int64_t to_version = 0;
  bool dry_run = false;
  for (CLI::App* c : {secret->add_subcommand("history", "list the versions of a secret"),
                      secret->add_subcommand("rollback", "write a new version equal to an earlier one"),
                      secret->add_subcommand("rotate", "write new values now, by the secret's rotation policy (sigil.dev/rotation-* annotations)")}) {
    c->add_option("secret", ref_text, "NAMESPACE/NAME, or NAME in the kubeconfig's namespace")->required();
    c->add_option("--kubeconfig", kubeconfig_path, "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)");
    c->add_option("--context", context, "kubeconfig context (default: the current one)");
  }
  CLI::App* history = secret->get_subcommand("history");
  CLI::App* rollback = secret->get_subcommand("rollback");
  CLI::App* rotate_secret = secret->get_subcommand("rotate");
  history->add_option("-o,--output", output, "json for the raw list")->check(CLI::IsMember({"json"}));
  rollback->add_option("--to", to_version, "the version to roll back to")->required()->check(CLI::PositiveNumber);
  rollback->add_flag("--dry-run", dry_run, "let the server validate without writing");

  CLI::App* token = app.add_subcommand("token", "sigil bearer tokens");
  token->require_subcommand(1);
  CLI::App* token_create = token->add_subcommand("create", "issue a bearer token for a user (asks the running server)");
  std::string token_user, token_ttl = "24h";
  std::vector<std::string> token_groups;
  bool token_json = false;
  token_create->add_option("--user", token_user, "the user the token authenticates as")->required();
  token_create->add_option("--group", token_groups, "a group of the user (repeatable)");
  token_create->add_option("--ttl", token_ttl, "lifetime: N, Ns, Nm, Nh or Nd (default 24h, at most 365d)");
  token_create->add_flag("--json", token_json, "print the server's whole answer (with the expiry)");
  token_create->add_option("--kubeconfig", kubeconfig_path, "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)");
  token_create->add_option("--context", context, "kubeconfig context (default: the current one)");

  CLI::App* audit = app.add_subcommand("audit", "work with the audit trail");
  audit->require_subcommand(1);
  CLI::App* audit_hash = audit->add_subcommand("hash", "print what the audit trail shows for a value (asks the running server)");
  std::string hash_value;
  audit_hash->add_option("value", hash_value, "the value; - reads it from standard input")->required();
  audit_hash->add_option("--kubeconfig", kubeconfig_path, "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)");
  audit_hash->add_option("--context", context, "kubeconfig context (default: the current one)");
  CLI::App* audit_verify = audit->add_subcommand("verify", "check the hash chain of audit files (oldest first)");
  std::vector<std::string> audit_files;
  audit_verify->add_option("files", audit_files, "audit files, oldest first")->required();
  bool from_genesis = false;
  audit_verify->add_flag("--from-genesis", from_genesis,
                         "fail unless the first file starts the trail (not when older files were removed, e.g. by retention)");

  app.add_subcommand("version", "print the version");

  CLI11_PARSE(app, argc, argv);

  if (app.got_subcommand("version")) {
    std::printf("%s\n", sigil::server::VersionJson().c_str());
    return 0;
  }
  if (server->parsed()) {
    sigil::server::BlockShutdownSignals();
    sigil::server::HardenProcess();
    sigil::server::LimitMallocArenas();
    auto config = BuildConfig(flags);
    if (!config.ok()) return Fail(config.error());
    auto s = sigil::server::SigilServer::Create(std::move(config).value());
    if (!s.ok()) return Fail(s.error());
    return (*s)->Run();
  }
  if (op_init->parsed() || op_unseal->parsed() || op_seal->parsed() || op_status->parsed()) {
    auto ep = sigil::client::VaultEndpoint(vault_addr, vault_ca, vault_token);
    if (!ep.ok()) return Fail(ep.error());
    if (op_init->parsed()) {
      auto out = sigil::client::OperatorInit(*ep, init_shares, init_threshold, op_json);
      if (!out.ok()) return Fail(out.error());
      std::fwrite(out->view().data(), 1, out->view().size(), stdout);
      return 0;
    }
    if (op_seal->parsed()) {
      auto out = sigil::client::OperatorSeal(*ep);
      if (!out.ok()) return Fail(out.error());
      std::fputs(out->c_str(), stdout);
      return 0;
    }
    if (op_status->parsed()) {
      bool sealed = true;
      auto out = sigil::client::OperatorStatus(*ep, op_json, &sealed);
      if (!out.ok()) return Fail(out.error());
      std::fputs(out->c_str(), stdout);
      return sealed ? 2 : 0;
    }
    sigil::SecretBytes share;
    if (!unseal_reset) {
      if (unseal_key.empty() || unseal_key == "-") {
        // Read the share without echoing it when standard input is a terminal.
        bool tty = ::isatty(STDIN_FILENO) && unseal_key.empty();
        termios saved{};
        if (tty) {
          std::fprintf(stderr, "Unseal Key (will be hidden): ");
          ::tcgetattr(STDIN_FILENO, &saved);
          termios quiet = saved;
          quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
          ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        }
        std::getline(std::cin, unseal_key);
        if (tty) {
          ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
          std::fputc('\n', stderr);
        }
      }
      while (!unseal_key.empty() && (unseal_key.back() == '\r' || unseal_key.back() == ' ')) unseal_key.pop_back();
      share = sigil::SecretBytes(unseal_key);
      sigil::internal::SecureZero(unseal_key.data(), unseal_key.size());
      if (share.empty()) return Fail(sigil::InvalidArgumentError("no unseal key given"));
    }
    auto out = sigil::client::OperatorUnseal(*ep, share, unseal_reset, op_json);
    if (!out.ok()) return Fail(out.error());
    std::fputs(out->c_str(), stdout);
    return 0;
  }
  if (rotate->parsed()) {
    sigil::server::HardenProcess();
    auto config = BuildConfig(flags);
    if (!config.ok()) return Fail(config.error());
    Status s = sigil::server::RotateOffline(*config);
    return s.ok() ? 0 : Fail(s);
  }
  if (kubeconfig->parsed()) {
    auto config = BuildConfig(flags);
    if (!config.ok()) return Fail(config.error());
    if (std::find(kreq.groups.begin(), kreq.groups.end(), "system:masters") != kreq.groups.end()) {
      std::fprintf(stderr,
                   "warning: group system:masters passes every RBAC check, and a client certificate cannot be revoked: "
                   "this kubeconfig is cluster-admin for %ld days. Prefer a group bound to the roles the user needs.\n",
                   kreq.days);
    }
    auto issued = sigil::server::KubeconfigFor(*config, kreq);
    if (!issued.ok()) return Fail(issued.error());
    if (!no_check) {
      auto reply = sigil::client::Request(issued->endpoint, "GET", "/version", {}, "application/json", std::chrono::seconds(10));
      if (!reply.ok()) {
        return Fail(sigil::UnavailableError(reply.error().message() + " (is the server running? --server sets the URL, --no-check skips this)"));
      }
    }
    std::fwrite(issued->text.data(), 1, issued->text.size(), stdout);
    sigil::internal::SecureZero(issued->text.data(), issued->text.size());
    return 0;
  }
  if (history->parsed() || rollback->parsed() || rotate_secret->parsed()) {
    auto ep = sigil::client::LoadKubeconfig(kubeconfig_path, context);
    if (!ep.ok()) return Fail(ep.error());
    auto ref = sigil::client::ParseSecretRef(ref_text, ep->namespace_);
    if (!ref.ok()) return Fail(ref.error());
    auto out = history->parsed()  ? sigil::client::SecretHistory(*ep, *ref, output == "json")
               : rollback->parsed() ? sigil::client::SecretRollback(*ep, *ref, to_version, dry_run)
                                    : sigil::client::SecretRotate(*ep, *ref);
    if (!out.ok()) {
      std::fprintf(stderr, "%s\n", out.error().message().c_str());
      return 1;
    }
    std::fwrite(out->data(), 1, out->size(), stdout);
    return 0;
  }
  if (token_create->parsed()) {
    int64_t ttl = ParseTtl(token_ttl);
    if (ttl <= 0) return Fail(sigil::InvalidArgumentError("--ttl: expected N, Ns, Nm, Nh or Nd, got \"" + token_ttl + "\""));
    auto ep = sigil::client::LoadKubeconfig(kubeconfig_path, context);
    if (!ep.ok()) return Fail(ep.error());
    auto out = sigil::client::CreateToken(*ep, token_user, token_groups, ttl, token_json);
    if (!out.ok()) {
      std::fprintf(stderr, "%s\n", out.error().message().c_str());
      return 1;
    }
    std::fwrite(out->view().data(), 1, out->view().size(), stdout);
    std::fputc('\n', stdout);
    return 0;
  }
  if (audit_verify->parsed()) {
    sigil::audit::VerifyResult v = sigil::audit::VerifyChain(audit_files);
    if (!v.ok) {
      std::printf("%s:%zu: %s\n", v.file.c_str(), v.line_number, v.problem.c_str());
      return 1;
    }
    if (from_genesis && v.lines > 0 && v.starts != "genesis") {
      std::printf("%s:1: the trail does not start here: the first line %s (--from-genesis)\n", audit_files.front().c_str(),
                  v.starts.c_str());
      return 1;
    }
    if (v.lines == 0) {
      std::printf("ok: no lines\n");
    } else if (v.starts == "genesis") {
      std::printf("ok: %zu lines, chain intact from the start of the trail, last hash %s\n", v.lines, v.last_hash.c_str());
    } else if (!v.starts.starts_with("continues ")) {
      std::printf("ok: %zu lines, chain intact from where the first file %s (what came before cannot be checked), last hash %s\n",
                  v.lines, v.starts.c_str(), v.last_hash.c_str());
    } else {
      std::printf("ok: %zu lines, chain intact; the first file %s (its last hash %s, not checked here), last hash %s\n",
                  v.lines, v.starts.c_str(), v.continues_hash.c_str(), v.last_hash.c_str());
    }
    return 0;
  }
  if (audit_hash->parsed()) {
    auto ep = sigil::client::LoadKubeconfig(kubeconfig_path, context);
    if (!ep.ok()) return Fail(ep.error());
    if (hash_value == "-") {
      hash_value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
      if (!hash_value.empty() && hash_value.back() == '\n') hash_value.pop_back();
    }
    auto out = sigil::client::AuditHash(*ep, hash_value);
    sigil::internal::SecureZero(hash_value.data(), hash_value.size());
    if (!out.ok()) {
      std::fprintf(stderr, "%s\n", out.error().message().c_str());
      return 1;
    }
    std::printf("%s\n", out->c_str());
    return 0;
  }
  if (genkey->parsed()) {
    Status s = sigil::barrier::GenerateKeyFile(key_out);
    if (!s.ok()) return Fail(s);
    std::printf("wrote a new root key to %s (mode 0600). Keep a copy somewhere safe: without it the data cannot be read.\n",
                key_out.c_str());
    return 0;
  }
  return 0;
}
