// audit/policy.h: the Kubernetes audit Policy (audit.k8s.io/v1, kind Policy), read from the
// same YAML file kube-apiserver's --audit-policy-file takes, and evaluated with its rules
// (k8s.io/apiserver pkg/audit/policy/checker.go): the first rule that matches a request gives
// its level and omitted stages; no match means level None.
//
// A rule matches when every list it sets matches (an empty list matches anything):
//   users (user name), userGroups (any of the user's groups), verbs;
//   resources [{group, resources, resourceNames}] and namespaces: resource requests only
//     ("" in namespaces is the cluster scope; a resource may be "secrets", "secrets/versions",
//     "*/versions" or "secrets/*");
//   nonResourceURLs: non-resource requests only (exact, or a prefix ending in "*").
// Immutable after Parse; thread-safe.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sigil/base/identity.h"
#include "sigil/base/result.h"

namespace sigil::audit {

enum class Level { kNone = 0, kMetadata = 1, kRequest = 2, kRequestResponse = 3 };
enum class Stage { kRequestReceived, kResponseStarted, kResponseComplete, kPanic };

const char* LevelName(Level l);
const char* StageName(Stage s);

// What the policy looks at in a request (kube-apiserver's authorizer.Attributes).
struct Request {
  const Identity* user = nullptr;
  std::string verb;
  bool resource_request = true;
  std::string api_group, resource, subresource, namespace_, name;  // resource requests
  std::string path;                                                   // non-resource requests
};

struct Decision {
  Level level = Level::kNone;
  std::set<Stage> omit_stages;
  bool omit_managed_fields = false;
};

class Policy {
 public:
  // Parses a Policy document (YAML or JSON). InvalidArgument names the field at fault.
  static Result<Policy> Parse(std::string_view text);
  // A policy of one rule: every request at `level` (what sigil uses when no file is given).
  static Policy Everything(Level level, std::set<Stage> omit_stages);

  Decision Evaluate(const Request& r) const;

 private:
  struct GroupResources {
    std::string group;
    std::vector<std::string> resources, resource_names;
  };
  struct Rule {
    Level level = Level::kNone;
    std::vector<std::string> users, user_groups, verbs, namespaces, non_resource_urls;
    std::vector<GroupResources> resources;
    std::optional<std::set<Stage>> omit_stages;
    std::optional<bool> omit_managed_fields;
    bool Matches(const Request& r) const;
  };
  std::vector<Rule> rules_;
  std::set<Stage> omit_stages_;
  bool omit_managed_fields_ = false;
};

}  // namespace sigil::audit
