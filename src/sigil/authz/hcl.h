// authz/hcl.h: the syntax tree of the HCL 1 subset (and its JSON form) that Vault's policy
// languages use, as authz/acl_policy.cc parses it (the grammar, limits and error messages are
// described in acl_policy.h). HCL's `key "label" { ... }` is key = {label = {...}}, which is
// also how the JSON form spells it, so one semantic pass serves both. For the ACL policy parser
// and Vault's password policies (password_policy.h).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sigil/base/result.h"

namespace sigil::authz::hcl {

struct Entry;

struct Value {
  enum class Kind { kString, kNumber, kBool, kList, kObject };
  Kind kind = Kind::kString;
  int line = 0;                // 0 in JSON, where lines are not tracked
  std::string text;            // the string, the number's literal, or "true" / "false"
  std::vector<Value> items;    // kList
  std::vector<Entry> entries;  // kObject, in written order
};

struct Entry {
  std::string key;
  int line = 0;
  Value value;
};

// The top-level items of `text`: JSON when its first non-space character is '{', else HCL.
// kInvalidArgument ("line N: ...") for a syntax error or an input over the limits.
Result<std::vector<Entry>> Parse(std::string_view text);

}  // namespace sigil::authz::hcl
