#include "sigil/audit/policy.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

namespace sigil::audit {
namespace {

bool Has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

Result<Level> ParseLevel(const std::string& s, const std::string& at) {
  if (s == "None") return Level::kNone;
  if (s == "Metadata") return Level::kMetadata;
  if (s == "Request") return Level::kRequest;
  if (s == "RequestResponse") return Level::kRequestResponse;
  return InvalidArgumentError(at + ": Unsupported value: \"" + s + "\": supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\"");
}

Result<Stage> ParseStage(const std::string& s, const std::string& at) {
  if (s == "RequestReceived") return Stage::kRequestReceived;
  if (s == "ResponseStarted") return Stage::kResponseStarted;
  if (s == "ResponseComplete") return Stage::kResponseComplete;
  if (s == "Panic") return Stage::kPanic;
  return InvalidArgumentError(at + ": Unsupported value: \"" + s +
                              "\": supported values: \"RequestReceived\", \"ResponseStarted\", \"ResponseComplete\", \"Panic\"");
}

Result<std::vector<std::string>> Strings(const YAML::Node& n, const std::string& at) {
  std::vector<std::string> out;
  if (!n || n.IsNull()) return out;
  if (!n.IsSequence()) return InvalidArgumentError(at + " must be a list of strings");
  for (const YAML::Node& v : n) {
    if (!v.IsScalar()) return InvalidArgumentError(at + " must be a list of strings");
    out.push_back(v.as<std::string>());
  }
  return out;
}

Result<std::set<Stage>> Stages(const YAML::Node& n, const std::string& at) {
  SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> names, Strings(n, at));
  std::set<Stage> out;
  for (size_t i = 0; i < names.size(); ++i) {
    SIGIL_ASSIGN_OR_RETURN(Stage s, ParseStage(names[i], at + "[" + std::to_string(i) + "]"));
    out.insert(s);
  }
  return out;
}

Status KnownKeys(const YAML::Node& n, std::initializer_list<const char*> keys, const std::string& at) {
  for (const auto& kv : n) {
    std::string k = kv.first.as<std::string>();
    if (std::none_of(keys.begin(), keys.end(), [&](const char* known) { return k == known; })) {
      return InvalidArgumentError(at + (at.empty() ? "" : ".") + k + ": unknown field");
    }
  }
  return OkStatus();
}

bool ResourceMatches(const std::vector<std::string>& patterns, const std::string& resource, const std::string& sub) {
  std::string combined = sub.empty() ? resource : resource + "/" + sub;
  for (const std::string& p : patterns) {
    if (p == "*" || p == combined) return true;
    if (!sub.empty() && (p == "*/" + sub || p == resource + "/*")) return true;
  }
  return false;
}

}  // namespace

const char* LevelName(Level l) {
  switch (l) {
    case Level::kNone: return "None";
    case Level::kMetadata: return "Metadata";
    case Level::kRequest: return "Request";
    case Level::kRequestResponse: return "RequestResponse";
  }
  return "None";
}

const char* StageName(Stage s) {
  switch (s) {
    case Stage::kRequestReceived: return "RequestReceived";
    case Stage::kResponseStarted: return "ResponseStarted";
    case Stage::kResponseComplete: return "ResponseComplete";
    case Stage::kPanic: return "Panic";
  }
  return "ResponseComplete";
}

Result<Policy> Policy::Parse(std::string_view text) {
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError("the audit policy is not valid YAML (line " + std::to_string(e.mark.line + 1) + ")");
  }
  try {
    if (!doc.IsMap()) return InvalidArgumentError("the audit policy must be a Policy object");
    SIGIL_RETURN_IF_ERROR(KnownKeys(doc, {"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"}, ""));
    std::string api = doc["apiVersion"] ? doc["apiVersion"].as<std::string>() : "";
    std::string kind = doc["kind"] ? doc["kind"].as<std::string>() : "";
    if (api != "audit.k8s.io/v1" || kind != "Policy") {
      return InvalidArgumentError("the audit policy must have apiVersion audit.k8s.io/v1 and kind Policy (got \"" + api + "\", \"" + kind + "\")");
    }
    Policy p;
    SIGIL_ASSIGN_OR_RETURN(p.omit_stages_, Stages(doc["omitStages"], "omitStages"));
    if (doc["omitManagedFields"]) p.omit_managed_fields_ = doc["omitManagedFields"].as<bool>();
    const YAML::Node rules = doc["rules"];
    if (!rules || !rules.IsSequence() || rules.size() == 0) return InvalidArgumentError("rules: Required value: at least one rule is required");
    for (size_t i = 0; i < rules.size(); ++i) {
      const YAML::Node r = rules[i];
      std::string at = "rules[" + std::to_string(i) + "]";
      if (!r.IsMap()) return InvalidArgumentError(at + " must be an object");
      SIGIL_RETURN_IF_ERROR(KnownKeys(r, {"level", "users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs",
                                          "omitStages", "omitManagedFields"}, at));
      Rule rule;
      if (!r["level"]) return InvalidArgumentError(at + ".level: Required value");
      SIGIL_ASSIGN_OR_RETURN(rule.level, ParseLevel(r["level"].as<std::string>(), at + ".level"));
      SIGIL_ASSIGN_OR_RETURN(rule.users, Strings(r["users"], at + ".users"));
      SIGIL_ASSIGN_OR_RETURN(rule.user_groups, Strings(r["userGroups"], at + ".userGroups"));
      SIGIL_ASSIGN_OR_RETURN(rule.verbs, Strings(r["verbs"], at + ".verbs"));
      SIGIL_ASSIGN_OR_RETURN(rule.namespaces, Strings(r["namespaces"], at + ".namespaces"));
      SIGIL_ASSIGN_OR_RETURN(rule.non_resource_urls, Strings(r["nonResourceURLs"], at + ".nonResourceURLs"));
      if (r["resources"] && !r["resources"].IsNull()) {
        if (!r["resources"].IsSequence()) return InvalidArgumentError(at + ".resources must be a list");
        for (size_t j = 0; j < r["resources"].size(); ++j) {
          const YAML::Node g = r["resources"][j];
          std::string gat = at + ".resources[" + std::to_string(j) + "]";
          if (!g.IsMap()) return InvalidArgumentError(gat + " must be an object");
          SIGIL_RETURN_IF_ERROR(KnownKeys(g, {"group", "resources", "resourceNames"}, gat));
          GroupResources gr;
          gr.group = g["group"] ? g["group"].as<std::string>() : "";
          SIGIL_ASSIGN_OR_RETURN(gr.resources, Strings(g["resources"], gat + ".resources"));
          SIGIL_ASSIGN_OR_RETURN(gr.resource_names, Strings(g["resourceNames"], gat + ".resourceNames"));
          rule.resources.push_back(std::move(gr));
        }
      }
      if ((!rule.resources.empty() || !rule.namespaces.empty()) && !rule.non_resource_urls.empty()) {
        return InvalidArgumentError(at + ".nonResourceURLs: Invalid value: rules cannot apply to both regular resources and non-resource URLs");
      }
      if (r["omitStages"]) {
        SIGIL_ASSIGN_OR_RETURN(std::set<Stage> s, Stages(r["omitStages"], at + ".omitStages"));
        rule.omit_stages = s;
      }
      if (r["omitManagedFields"]) rule.omit_managed_fields = r["omitManagedFields"].as<bool>();
      p.rules_.push_back(std::move(rule));
    }
    return p;
  } catch (const YAML::Exception&) {
    return InvalidArgumentError("the audit policy has a field of the wrong type");
  }
}

Policy Policy::Everything(Level level, std::set<Stage> omit_stages) {
  Policy p;
  Rule r;
  r.level = level;
  p.rules_.push_back(r);
  p.omit_stages_ = std::move(omit_stages);
  return p;
}

bool Policy::Rule::Matches(const Request& r) const {
  if (!users.empty() && (r.user == nullptr || !Has(users, r.user->user))) return false;
  if (!user_groups.empty()) {
    if (r.user == nullptr) return false;
    if (std::none_of(r.user->groups.begin(), r.user->groups.end(), [&](const std::string& g) { return Has(user_groups, g); })) {
      return false;
    }
  }
  if (!verbs.empty() && !Has(verbs, r.verb)) return false;
  if (!non_resource_urls.empty()) {
    if (r.resource_request) return false;
    return std::any_of(non_resource_urls.begin(), non_resource_urls.end(), [&](const std::string& u) {
      return u == "*" || u == r.path || (!u.empty() && u.back() == '*' && r.path.starts_with(u.substr(0, u.size() - 1)));
    });
  }
  if (resources.empty() && namespaces.empty()) return true;
  if (!r.resource_request) return false;
  if (!namespaces.empty() && !Has(namespaces, r.namespace_)) return false;
  if (resources.empty()) return true;
  for (const GroupResources& g : resources) {
    if (g.group != r.api_group && g.group != "*") continue;
    if (!g.resources.empty() && !ResourceMatches(g.resources, r.resource, r.subresource)) continue;
    if (!g.resource_names.empty() && !Has(g.resource_names, r.name)) continue;
    return true;
  }
  return false;
}

Decision Policy::Evaluate(const Request& r) const {
  for (const Rule& rule : rules_) {
    if (!rule.Matches(r)) continue;
    Decision d;
    d.level = rule.level;
    d.omit_stages = omit_stages_;
    if (rule.omit_stages) d.omit_stages.insert(rule.omit_stages->begin(), rule.omit_stages->end());
    d.omit_managed_fields = rule.omit_managed_fields.value_or(omit_managed_fields_);
    return d;
  }
  return Decision{};
}

}  // namespace sigil::audit
