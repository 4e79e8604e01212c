// authz/acl_policy.h: parser for HashiCorp Vault's ACL policy language, the text an operator
// writes to sys/policies/acl/<name>. Acl (acl.h) compiles parsed policies into answers.
//
// Two syntaxes, as Vault accepts them (vault/policy.go, via HCL 1):
//   HCL:  path "secret/data/*" { capabilities = ["read", "list"] }
//   JSON: {"path": {"secret/data/*": {"capabilities": ["read", "list"]}}}
// The text is JSON when its first non-space character is '{' (HCL 1's own rule; an HCL policy
// cannot start with '{'). The HCL subset is the part of HCL 1 a policy uses: `key = value`,
// `key "label" { ... }` blocks, strings with escapes, numbers, true/false, lists (trailing and
// stray commas allowed) and nested objects, with `#`, `//` and `/* */` comments. Not supported:
// heredocs and `${...}` interpolation (kept literally), which policies do not use.
//
// What a policy means, as Vault's parser decides it:
//   - top-level keys are `name` (ignored; the policy's name is the argument) and `path`;
//     anything else is an error, as are unknown keys inside a path block;
//   - one leading '/' is stripped from a path; a trailing '*' makes it a prefix (glob); a '+'
//     segment makes it a segment-wildcard path; "+*" anywhere is an error;
//   - `capabilities` lists names (deny create read update patch delete list sudo subscribe
//     recover); an unknown name is an error, except that Vault stops reading the list at the
//     first "deny", so ["deny", "anything"] loads, as deny;
//   - a path with "deny" holds kCapDeny alone;
//   - the legacy `policy = "deny|read|write|sudo"` adds read,list / create,read,update,delete,
//     list / the same plus sudo to `capabilities`, or replaces them with deny;
//   - the same path written twice stays two rules; Acl::Compile merges them (union, deny wins),
//     as Vault's NewACL does.
// allowed_parameters, denied_parameters, required_parameters, min_wrapping_ttl,
// max_wrapping_ttl, mfa_methods, control_group and subscribe_event_types are checked for shape
// and accepted so that valid Vault policies load, but sigil does not enforce them: each one on
// a non-deny path adds a line to AclPolicy::warnings, which the API should show the operator.
// Note that this makes such a rule grant more than Vault would (Vault refuses requests that
// break the constraint). Templated paths ("{{identity.entity.id}}") are rejected: taken
// literally they would grant one shared path instead of one per entity. OpenBao's extensions
// (the "scan" capability, pagination_limit, expiration, list_scan_response_keys_filter_path)
// are invalid, as in HashiCorp Vault.
//
// Errors are kInvalidArgument with a message that starts "line N: " (HCL; JSON syntax errors
// too) and quotes at most a short, escaped token of the input. Inputs over 1 MiB, nested more
// than 16 levels or holding more than 100000 values are rejected. Thread safety: free functions
// on values; safe to call from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sigil/base/result.h"

namespace sigil::authz {

// Capability bits. kCapSubscribe and kCapRecover exist so that Vault policies naming them load;
// no sigil operation needs them yet.
enum Capability : uint32_t {
  kCapCreate = 1,
  kCapRead = 2,
  kCapUpdate = 4,
  kCapPatch = 8,
  kCapDelete = 16,
  kCapList = 32,
  kCapSudo = 64,
  kCapDeny = 128,
  kCapSubscribe = 256,
  kCapRecover = 512,
};
// Every capability a grant can hold (everything but kCapDeny): what the root policy holds.
inline constexpr uint32_t kCapAllGrants =
    kCapCreate | kCapRead | kCapUpdate | kCapPatch | kCapDelete | kCapList | kCapSudo | kCapSubscribe | kCapRecover;

// One `path "..." { ... }` block.
struct AclRule {
  std::string path;       // as written, minus one leading '/' and the trailing '*' of a prefix
  bool prefix = false;    // written with a trailing '*'
  bool has_plus = false;  // a segment-wildcard path: "+", "+/...", or containing "/+" (Vault's test)
  uint32_t capabilities = 0;  // kCapDeny alone, or grants; 0 when the block lists none

  friend bool operator==(const AclRule&, const AclRule&) = default;
};

struct AclPolicy {
  std::string name;
  std::vector<AclRule> rules;          // in written order, duplicates kept
  std::vector<std::string> warnings;   // accepted but unenforced fields, one line each

  friend bool operator==(const AclPolicy&, const AclPolicy&) = default;
};

inline constexpr size_t kMaxAclPolicyBytes = 1 << 20;
inline constexpr int kMaxAclPolicyDepth = 16;

// Parses `text` (HCL or JSON, see above) into the policy named `name`. Errors:
// kInvalidArgument for a syntax error, an invalid key, capability, legacy policy, wildcard use,
// duration or parameter shape, or an input over the limits.
Result<AclPolicy> ParseAclPolicy(std::string_view name, std::string_view text);

// Capability names in the order Vault's sys/capabilities answers them (sudo, read, list,
// update, delete, create, patch, subscribe, recover); {"deny"} when `caps` holds kCapDeny or
// nothing. The root token's answer, {"root"}, is Acl::SysCapabilities's business.
std::vector<std::string> CapabilityList(uint32_t caps);
// CapabilityList joined with ", ", for messages.
std::string CapabilityNames(uint32_t caps);

}  // namespace sigil::authz
