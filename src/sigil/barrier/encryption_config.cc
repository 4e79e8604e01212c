#include "sigil/barrier/encryption_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <optional>
#include <set>

#include "sigil/base/encoding.h"
#include "sigil/base/file.h"
#include "sigil/base/logging.h"

namespace sigil::barrier {
namespace {

// Storage resource -> API group, for the resources sigil stores under /registry/.
std::string GroupOf(std::string_view resource) {
  static const char* kRbac[] = {"roles", "rolebindings", "clusterroles", "clusterrolebindings"};
  for (const char* r : kRbac) {
    if (resource == r) return "rbac.authorization.k8s.io";
  }
  return "";
}

class Errors {
 public:
  void Add(std::string path, std::string msg) { list_.push_back(std::move(path) + ": " + std::move(msg)); }
  bool empty() const { return list_.empty(); }
  size_t size() const { return list_.size(); }
  Status ToStatus() const {
    std::string m = "invalid EncryptionConfiguration: ";
    for (size_t i = 0; i < list_.size(); ++i) {
      if (i > 0) m += "; ";
      m += list_[i];
    }
    return InvalidArgumentError(std::move(m));
  }

 private:
  std::vector<std::string> list_;
};

void AddKeyedProvider(const YAML::Node& node, const std::string& path, const std::string& provider,
                      EncryptionConfig::Rule* rule, Errors* errors) {
  YAML::Node keys = node["keys"];
  if (!keys || !keys.IsSequence() || keys.size() == 0) {
    errors->Add(path + ".keys", "Required value");
    return;
  }
  std::set<std::string> names;
  for (size_t k = 0; k < keys.size(); ++k) {
    std::string kpath = path + ".keys[" + std::to_string(k) + "]";
    const YAML::Node& key = keys[k];
    if (!key.IsMap()) {
      errors->Add(kpath, "Invalid value: must be a mapping with name and secret");
      continue;
    }
    std::string name = key["name"] && key["name"].IsScalar() ? key["name"].as<std::string>() : "";
    std::string secret = key["secret"] && key["secret"].IsScalar() ? key["secret"].as<std::string>() : "";
    if (name.empty()) errors->Add(kpath + ".name", "Required value");
    if (name.find(':') != std::string::npos) errors->Add(kpath + ".name", "Invalid value: \"" + name + "\": must not contain ':'");
    if (!names.insert(name).second) errors->Add(kpath + ".name", "Duplicate value: \"" + name + "\"");
    if (secret.empty()) {
      errors->Add(kpath + ".secret", "Required value");
      continue;
    }
    auto decoded = Base64DecodeSecret(secret);
    internal::SecureZero(secret.data(), secret.size());
    if (!decoded.ok()) {
      errors->Add(kpath + ".secret", "Invalid value: \"REDACTED\": secrets must be base64 encoded");
      continue;
    }
    SecretBytes bytes = std::move(decoded).value();
    bool aes = provider != "secretbox";
    bool ok_len = aes ? (bytes.size() == 16 || bytes.size() == 24 || bytes.size() == 32) : bytes.size() == 32;
    if (!ok_len) {
      errors->Add(kpath + ".secret", "Invalid value: \"REDACTED\": secret is not of the expected length, got " +
                                         std::to_string(bytes.size()) + ", expected one of " +
                                         (aes ? "[16 24 32]" : "[32]"));
      continue;
    }
    Result<std::unique_ptr<Transformer>> t =
        provider == "aescbc"   ? NewAesCbcTransformer(name, std::move(bytes))
        : provider == "aesgcm" ? NewAesGcmTransformer(name, std::move(bytes))
                               : NewSecretboxTransformer(name, std::move(bytes));
    if (!t.ok()) {
      errors->Add(kpath + ".secret", t.error().message());
      continue;
    }
    rule->transformers.push_back(std::move(t).value());
  }
}

// A Go duration ("3s", "1.5s", "2s500ms", "100ms", "1m"; "0" alone) in milliseconds, or nullopt.
std::optional<double> GoDurationMillis(std::string_view s) {
  if (s == "0") return 0.0;
  if (s.empty() || s.size() > 64) return std::nullopt;
  double total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    std::string_view num = s.substr(start, i - start);
    if (num.empty() || num == "." || std::count(num.begin(), num.end(), '.') > 1) return std::nullopt;
    size_t ustart = i;
    while (i < s.size() && !((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    std::string_view unit = s.substr(ustart, i - ustart);
    double scale;
    if (unit == "ns") scale = 1e-6;
    else if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs") scale = 1e-3;
    else if (unit == "ms") scale = 1;
    else if (unit == "s") scale = 1e3;
    else if (unit == "m") scale = 60e3;
    else if (unit == "h") scale = 3600e3;
    else return std::nullopt;
    total += std::stod(std::string(num)) * scale;
  }
  return total;
}

std::string Scalar(const YAML::Node& n, const char* field) {
  return n[field] && n[field].IsScalar() ? n[field].as<std::string>() : "";
}

// One `kms` element (kube-apiserver's KMSConfiguration): apiVersion v2, name, endpoint
// unix://<path>, timeout (a Go duration, default 3s). cachesize belongs to v1 only.
void AddKmsProvider(const YAML::Node& node, const std::string& path, const KmsFactory& factory,
                    std::set<std::string>* names, EncryptionConfig::Rule* rule,
                    std::vector<std::pair<std::string, Transformer*>>* kms, Errors* errors) {
  if (!node.IsMap()) {
    errors->Add(path, "Invalid value: must be a mapping");
    return;
  }
  size_t before = errors->size();
  std::string api = Scalar(node, "apiVersion");
  if (api.empty()) {
    // kube-apiserver defaults to v1, which it refuses since 1.29 unless the deprecated KMSv1
    // feature gate is on; sigil speaks v2 only, so a provider written without apiVersion (as
    // many guides show it) is taken as v2 rather than refused.
    api = "v2";
    log::Warn("EncryptionConfiguration: a kms provider has no apiVersion; kube-apiserver would take v1 (deprecated), "
              "sigil uses v2: its plugin must serve the KMS v2 API",
              {{"provider", Scalar(node, "name")}});
  }
  if (api == "v1") {
    errors->Add(path + ".apiVersion", "Unsupported value: \"v1\": KMS v1 is deprecated upstream and not supported by sigil; use apiVersion: v2");
  } else if (api != "v2") {
    errors->Add(path + ".apiVersion", "Invalid value: \"" + api + "\": unsupported apiVersion " + api + " for KMS provider, only v1 and v2 are supported");
  }
  KmsProviderConfig c;
  c.name = Scalar(node, "name");
  if (c.name.empty()) {
    errors->Add(path + ".name", "Required value: name is a mandatory field for a provider");
  } else if (c.name.find(':') != std::string::npos) {
    errors->Add(path + ".name", "Invalid value: \"" + c.name + "\": invalid KMS provider name " + c.name + ", must not contain ':'");
  } else if (!names->insert(c.name).second) {
    errors->Add(path + ".name", "Duplicate value: \"" + c.name + "\": duplicate KMS provider name " + c.name + ", names must be unique");
  }
  c.endpoint = Scalar(node, "endpoint");
  if (c.endpoint.empty()) {
    errors->Add(path + ".endpoint", "Required value: endpoint is a mandatory field for a kms");
  } else if (!c.endpoint.starts_with("unix://")) {
    size_t colon = c.endpoint.find("://");
    std::string scheme = colon == std::string::npos ? "" : c.endpoint.substr(0, colon);
    errors->Add(path + ".endpoint", "Invalid value: \"" + c.endpoint + "\": unsupported scheme \"" + scheme + "\" for KMS provider, only unix is supported");
  } else {
    c.socket = c.endpoint.substr(std::string_view("unix://").size());
    if (c.socket.empty() || c.socket.front() != '/') {
      errors->Add(path + ".endpoint", "Invalid value: \"" + c.endpoint + "\": the socket must be an absolute path, unix:///path/to/socket");
    }
  }
  if (node["timeout"]) {
    std::string t = Scalar(node, "timeout");
    std::optional<double> ms = GoDurationMillis(t);
    if (!ms) {
      errors->Add(path + ".timeout", "Invalid value: \"" + t + "\": must be a duration such as 3s or 500ms");
    } else if (*ms < 1) {
      errors->Add(path + ".timeout", "Invalid value: \"" + t + "\": timeout should be a positive value");
    } else if (*ms > 300000) {
      errors->Add(path + ".timeout", "Invalid value: \"" + t + "\": sigil takes at most 5m (a longer wait only holds requests up)");
    } else {
      c.timeout = std::chrono::milliseconds(static_cast<int64_t>(*ms));
    }
  }
  if (node["cachesize"] && api == "v2") {
    errors->Add(path + ".cachesize", "Invalid value: \"" + Scalar(node, "cachesize") + "\": cachesize is not supported in v2");
  }
  if (errors->size() != before) return;
  if (!factory) {
    errors->Add(path, "Unsupported value: kms providers are not available in this program");
    return;
  }
  Result<std::unique_ptr<Transformer>> t = factory(c);
  if (!t.ok()) {
    errors->Add(path, t.error().message());
    return;
  }
  kms->emplace_back(c.name, t->get());
  rule->transformers.push_back(std::move(t).value());
}

void ValidateResource(const std::string& r, const std::string& path, Errors* errors) {
  if (r.empty()) {
    errors->Add(path, "Required value");
  } else if (r == "*") {
    errors->Add(path, "Invalid value: \"*\": use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources");
  } else if (std::any_of(r.begin(), r.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    errors->Add(path, "Invalid value: \"" + r + "\": resource name should not contain capital letters");
  } else if (r.find('*') != std::string::npos && !r.starts_with("*.")) {
    errors->Add(path, "Invalid value: \"" + r + "\": wildcard is only allowed as '*.' or '*.<group>'");
  }
}

Status ParseInto(const YAML::Node& root, const KmsFactory& factory, std::vector<EncryptionConfig::Rule>* rules,
                 std::vector<std::pair<std::string, Transformer*>>* kms) {
  std::set<std::string> kms_names;
  Errors errors;
  if (!root.IsMap()) return InvalidArgumentError("invalid EncryptionConfiguration: not a YAML mapping");
  std::string api = root["apiVersion"] && root["apiVersion"].IsScalar() ? root["apiVersion"].as<std::string>() : "";
  std::string kind = root["kind"] && root["kind"].IsScalar() ? root["kind"].as<std::string>() : "";
  bool current = api == "apiserver.config.k8s.io/v1" && kind == "EncryptionConfiguration";
  bool legacy = api == "v1" && kind == "EncryptionConfig";
  if (!current && !legacy) {
    return InvalidArgumentError("invalid EncryptionConfiguration: apiVersion/kind must be apiserver.config.k8s.io/v1 "
                                "EncryptionConfiguration (or v1 EncryptionConfig), got \"" + api + "\" \"" + kind + "\"");
  }
  YAML::Node resources = root["resources"];
  if (!resources || !resources.IsSequence() || resources.size() == 0) {
    errors.Add("resources", "Required value: EncryptionConfiguration.Resources must contain at least one resource");
    return errors.ToStatus();
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < resources.size(); ++i) {
    std::string rpath = "resources[" + std::to_string(i) + "]";
    const YAML::Node& entry = resources[i];
    EncryptionConfig::Rule rule;
    YAML::Node names = entry["resources"];
    if (!names || !names.IsSequence() || names.size() == 0) {
      errors.Add(rpath + ".resources", "Required value");
    } else {
      for (size_t j = 0; j < names.size(); ++j) {
        std::string p = rpath + ".resources[" + std::to_string(j) + "]";
        std::string r = names[j].IsScalar() ? names[j].as<std::string>() : "";
        ValidateResource(r, p, &errors);
        if (!seen.insert(r).second) errors.Add(p, "Duplicate value: \"" + r + "\": the same resource cannot be specified multiple times");
        rule.resources.push_back(r);
      }
      for (const std::string& r : rule.resources) {
        bool star_core = std::find(rule.resources.begin(), rule.resources.end(), "*.") != rule.resources.end();
        bool star_all = std::find(rule.resources.begin(), rule.resources.end(), "*.*") != rule.resources.end();
        bool core = r.find('.') == std::string::npos;
        if ((star_all && r != "*.*") || (star_core && core && r != "*.")) {
          errors.Add(rpath + ".resources", "Invalid value: \"" + r + "\": using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked");
          break;
        }
      }
    }
    YAML::Node providers = entry["providers"];
    if (!providers || !providers.IsSequence() || providers.size() == 0) {
      errors.Add(rpath + ".providers", "Required value");
      continue;
    }
    for (size_t j = 0; j < providers.size(); ++j) {
      std::string ppath = rpath + ".providers[" + std::to_string(j) + "]";
      const YAML::Node& p = providers[j];
      if (!p.IsMap()) {
        errors.Add(ppath, "Invalid value: must be a mapping");
        continue;
      }
      std::vector<std::string> present;
      for (const char* name : {"aesgcm", "aescbc", "secretbox", "identity", "kms"}) {
        if (p[name]) present.push_back(name);
      }
      if (present.size() > 1) {
        errors.Add(ppath, "Invalid value: more than one provider specified in a single element, should split into different list elements");
        continue;
      }
      if (present.empty()) {
        errors.Add(ppath, "Invalid value: provider does not contain any of the expected providers: KMS, secretbox, aesgcm, aescbc, identity");
        continue;
      }
      const std::string& name = present[0];
      if (name == "identity") {
        rule.transformers.push_back(NewIdentityTransformer());
        rule.has_identity = true;
      } else if (name == "kms") {
        AddKmsProvider(p[name], ppath + ".kms", factory, &kms_names, &rule, kms, &errors);
      } else {
        AddKeyedProvider(p[name], ppath + "." + name, name, &rule, &errors);
      }
    }
    rules->push_back(std::move(rule));
  }
  if (!errors.empty()) return errors.ToStatus();
  return OkStatus();
}

}  // namespace

std::string GroupResourceForKey(std::string_view key) {
  constexpr std::string_view kRegistry = "/registry/";
  if (!key.starts_with(kRegistry)) return "";
  std::string_view rest = key.substr(kRegistry.size());
  std::string resource(rest.substr(0, rest.find('/')));
  std::string group = GroupOf(resource);
  return group.empty() ? resource : resource + "." + group;
}

Result<std::unique_ptr<EncryptionConfig>> EncryptionConfig::Parse(std::string_view text, const KmsFactory& kms) {
  auto config = std::make_unique<EncryptionConfig>();
  // The document holds key material: wipe our copy of it however parsing ends. (yaml-cpp's own
  // node strings are freed unwiped; see docs/threat-model.md.)
  std::string doc(text);
  struct Wipe {
    std::string* s;
    ~Wipe() { internal::SecureZero(s->data(), s->size()); }
  } wipe{&doc};
  try {
    YAML::Node root = YAML::Load(doc);
    SIGIL_RETURN_IF_ERROR(ParseInto(root, kms, &config->rules_, &config->kms_));
  } catch (const YAML::Exception& e) {
    // yaml-cpp messages carry a position and a reason, not the document's contents.
    return InvalidArgumentError(std::string("invalid EncryptionConfiguration: ") + e.what());
  }
  return config;
}

Result<std::unique_ptr<EncryptionConfig>> EncryptionConfig::LoadFile(const std::string& path, const KmsFactory& kms) {
  SIGIL_ASSIGN_OR_RETURN(SecretBytes text, file::ReadPrivateFile(path));
  auto r = Parse(text.view(), kms);
  if (!r.ok()) return r.error().WithContext(path);
  return r;
}

const EncryptionConfig::Rule* EncryptionConfig::RuleForKey(std::string_view storage_key) const {
  std::string gr = GroupResourceForKey(storage_key);
  if (gr.empty()) return nullptr;
  size_t dot = gr.find('.');
  std::string group = dot == std::string::npos ? "" : gr.substr(dot + 1);
  std::string group_wildcard = "*." + group;
  for (const std::string* want : {&gr, &group_wildcard}) {
    for (const Rule& rule : rules_) {
      if (std::find(rule.resources.begin(), rule.resources.end(), *want) != rule.resources.end()) return &rule;
    }
  }
  for (const Rule& rule : rules_) {
    if (std::find(rule.resources.begin(), rule.resources.end(), "*.*") != rule.resources.end()) return &rule;
  }
  return nullptr;
}

std::vector<std::string> EncryptionConfig::IdentityWriteResources() const {
  std::vector<std::string> out;
  for (const Rule& rule : rules_) {
    if (!rule.transformers.empty() && rule.transformers.front()->prefix().empty()) {
      out.insert(out.end(), rule.resources.begin(), rule.resources.end());
    }
  }
  return out;
}

}  // namespace sigil::barrier
