#include "sigil/client/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>

#include "sigil/base/encoding.h"
#include "sigil/base/file.h"

namespace sigil::client {
namespace {

constexpr size_t kMaxFile = 4 << 20;

std::string Str(const YAML::Node& n, const char* key) {
  const YAML::Node v = n[key];
  return v && v.IsScalar() ? v.as<std::string>() : "";
}

// A named entry of clusters/users/contexts.
YAML::Node Named(const YAML::Node& list, const std::string& name, const char* field) {
  if (list && list.IsSequence()) {
    for (const YAML::Node& e : list) {
      if (e.IsMap() && Str(e, "name") == name && e[field]) return e[field];
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string Resolve(const std::string& dir, const std::string& p) {
  return p.empty() || p.front() == '/' ? p : (std::filesystem::path(dir) / p).string();
}

}  // namespace

Result<Endpoint> LoadKubeconfig(const std::string& path_in, const std::string& context_in) {
  std::string path = path_in;
  if (path.empty()) {
    if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
      path = env;
      path = path.substr(0, path.find(':'));
    } else if (const char* home = std::getenv("HOME")) {
      path = std::string(home) + "/.kube/config";
    }
  }
  if (path.empty()) return InvalidArgumentError("no kubeconfig: set KUBECONFIG or pass --kubeconfig");
  SIGIL_ASSIGN_OR_RETURN(SecretBytes text, file::ReadPrivateFile(path));
  std::string dir = std::filesystem::path(path).parent_path().string();
  Endpoint ep;
  try {
    YAML::Node root = YAML::Load(std::string(text.view()));
    if (!root.IsMap()) return InvalidArgumentError(path + ": not a kubeconfig");
    std::string context = context_in.empty() ? Str(root, "current-context") : context_in;
    if (context.empty()) return InvalidArgumentError(path + ": no current-context (pass --context)");
    YAML::Node ctx = Named(root["contexts"], context, "context");
    if (!ctx) return InvalidArgumentError(path + ": context \"" + context + "\" not found");
    if (std::string ns = Str(ctx, "namespace"); !ns.empty()) ep.namespace_ = ns;
    YAML::Node cluster = Named(root["clusters"], Str(ctx, "cluster"), "cluster");
    if (!cluster) return InvalidArgumentError(path + ": cluster \"" + Str(ctx, "cluster") + "\" not found");
    ep.server = Str(cluster, "server");
    if (ep.server.rfind("https://", 0) != 0) {
      return InvalidArgumentError(path + ": the server must be an https:// URL (sigil refuses plain HTTP)");
    }
    if (Str(cluster, "insecure-skip-tls-verify") == "true") {
      return InvalidArgumentError(path + ": insecure-skip-tls-verify is not supported; give the CA instead");
    }
    if (std::string d = Str(cluster, "certificate-authority-data"); !d.empty()) {
      SIGIL_ASSIGN_OR_RETURN(ep.ca_pem, Base64Decode(d));
    } else if (std::string f = Str(cluster, "certificate-authority"); !f.empty()) {
      SIGIL_ASSIGN_OR_RETURN(ep.ca_pem, file::ReadFile(Resolve(dir, f), kMaxFile));
    }
    YAML::Node user = Named(root["users"], Str(ctx, "user"), "user");
    if (user) {
      if (std::string d = Str(user, "client-certificate-data"); !d.empty()) {
        SIGIL_ASSIGN_OR_RETURN(ep.cert_pem, Base64Decode(d));
      } else if (std::string f = Str(user, "client-certificate"); !f.empty()) {
        SIGIL_ASSIGN_OR_RETURN(ep.cert_pem, file::ReadFile(Resolve(dir, f), kMaxFile));
      }
      if (std::string d = Str(user, "client-key-data"); !d.empty()) {
        SIGIL_ASSIGN_OR_RETURN(ep.key_pem, Base64DecodeSecret(d));
        internal::SecureZero(d.data(), d.size());
      } else if (std::string f = Str(user, "client-key"); !f.empty()) {
        SIGIL_ASSIGN_OR_RETURN(ep.key_pem, file::ReadPrivateFile(Resolve(dir, f)));
      }
      if (std::string t = Str(user, "token"); !t.empty()) {
        ep.token = SecretBytes(t);
        internal::SecureZero(t.data(), t.size());
      } else if (std::string f = Str(user, "tokenFile"); !f.empty()) {
        SIGIL_ASSIGN_OR_RETURN(ep.token, file::ReadPrivateFile(Resolve(dir, f)));
        while (!ep.token.empty() && (ep.token.view().back() == '\n' || ep.token.view().back() == '\r')) {
          ep.token.resize(ep.token.size() - 1);
        }
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(path + ": " + e.what());
  }
  if (ep.cert_pem.empty() != ep.key_pem.empty()) {
    return InvalidArgumentError(path + ": a client certificate and its key go together");
  }
  return ep;
}

std::string RenderKubeconfig(const std::string& name, const std::string& server, const std::string& ca_pem,
                             const std::string& user, const std::string& cert_pem, const SecretBytes& key_pem) {
  std::string out = "apiVersion: v1\nkind: Config\nclusters:\n- name: " + name + "\n  cluster:\n    server: " + server + "\n";
  if (!ca_pem.empty()) out += "    certificate-authority-data: " + Base64Encode(ca_pem) + "\n";
  out += "contexts:\n- name: " + name + "\n  context:\n    cluster: " + name + "\n    user: " + user +
         "\n    namespace: default\ncurrent-context: " + name + "\nusers:\n- name: " + user + "\n  user:\n";
  if (!cert_pem.empty()) {
    out += "    client-certificate-data: " + Base64Encode(cert_pem) + "\n    client-key-data: " + Base64Encode(key_pem.view()) + "\n";
  } else {
    out += "    {}\n";
  }
  return out;
}

}  // namespace sigil::client
