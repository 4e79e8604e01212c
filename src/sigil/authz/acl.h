// authz/acl.h: the ACL compiled from the Vault policies a token holds (Vault's ACL,
// vault/acl.go): which capabilities it has on a request path. The Vault HTTP face asks it
// before every request and for sys/capabilities. Policies are parsed by acl_policy.h.
//
// Matching, exactly as Vault's AllowOperation and CheckAllowedFromNonExactPaths:
//   1. A rule without wildcards whose path equals the request path wins outright.
//   2. Otherwise every glob ("secret/foo*", the longest matching one) and segment-wildcard
//      rule ("secret/+/db", "secret/+/db*") that matches competes, and only the
//      highest-priority one counts. P1 is lower priority than P2 when, in turn:
//        a. its first '+' (for a glob: its '*') comes earlier; Vault takes the first '+'
//           character of the written path, even a literal one such as the "+y" in "x/+y/+";
//        b. it ends in '*' and P2 does not;
//        c. it has more "+" segments;
//        d. it is shorter (without the '*');
//        e. it is lexicographically smaller.
//      "+" matches exactly one segment, which may be empty ("a/+/c" matches "a//c"); a glob
//      is a plain string prefix ("secret/foo*" matches "secret/food/x").
//   3. Nothing matches: no capabilities.
// The chosen rule's capabilities are final: a lower-priority grant never adds to it, and a
// chosen rule that lists no capabilities grants nothing. The same pattern in several policies
// (or twice in one) is one rule holding the union of their capabilities, or kCapDeny alone if
// any of them denies. A request path has its leading '/'s stripped first.
//
// A list request ("secret/metadata/app/") also tries the path without its trailing '/': exact
// rules first (with, then without the '/'), then the wildcard rules for the path as given,
// then for the path without the '/'. That order is OpenBao's (internal/vault/policy/acl.go);
// HashiCorp Vault tries the wildcard rules without the '/' first, so its list of
// "secret/metadata/private/" is allowed by `secret/metadata/*` (list) despite
// `secret/metadata/private/*` (deny). sigil takes the more specific rule, as OpenBao does.
//
// Thread safety: an Acl is immutable after Compile; const methods may be called from any
// number of threads. Queries do not allocate (SysCapabilities returns strings).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sigil/authz/acl_policy.h"

namespace sigil::authz {

class Acl {
 public:
  Acl() = default;  // grants nothing

  // `policies` may hold nulls, which are skipped; they are copied, not retained. `root`: the
  // token holds the root policy, which grants every capability (kCapAllGrants, sudo included)
  // on every path, whatever else is passed. A policy named "root" is not special here.
  static Acl Compile(const std::vector<const AclPolicy*>& policies, bool root = false);

  // The capabilities of the rule that governs a request on `path` (e.g. "secret/data/app"):
  // kCapDeny alone when that rule denies, 0 when no rule matches, kCapAllGrants for root.
  uint32_t Capabilities(std::string_view path) const;
  // The same for a list request, with the trailing-'/' fallbacks described above.
  uint32_t ListCapabilities(std::string_view path) const;

  // Whether a request needing `needed` (one capability; a list request when it is kCapList)
  // and, for root-protected paths, sudo, is allowed on `path`. Root is always allowed.
  bool Allows(std::string_view path, Capability needed, bool needs_sudo) const;

  // The answer of sys/capabilities(-self) for `path`: {"root"} for root, else the names of
  // ListCapabilities(path) (Vault models that endpoint as a list request) in Vault's order,
  // {"deny"} when there are none.
  std::vector<std::string> SysCapabilities(std::string_view path) const;

  bool root() const { return root_; }

 private:
  // A segment-wildcard rule, pre-split for matching.
  struct SegmentRule {
    std::string wc_path;             // without the trailing '*'
    std::vector<std::string> parts;  // wc_path split on '/'
    bool prefix = false;
    size_t first_plus = 0;  // index of the first '+' in the written path (Vault's firstWCOrGlob)
    int wildcards = 0;      // number of "+" parts
    uint32_t caps = 0;
  };

  std::optional<uint32_t> Exact(std::string_view path) const;
  std::optional<uint32_t> NonExact(std::string_view path) const;

  bool root_ = false;
  std::map<std::string, uint32_t, std::less<>> exact_;
  std::map<std::string, uint32_t, std::less<>> prefix_;  // glob rules, keyed without the '*'
  std::vector<size_t> prefix_lengths_;                   // distinct key lengths in prefix_, longest first
  std::vector<SegmentRule> segment_;
};

}  // namespace sigil::authz
