// authz/password_policy.h: Vault's password policies (sys/policies/password/<name>), the rules
// generated passwords follow: a length and charset rules, in HCL or JSON:
//
//   length = 20
//   rule "charset" {
//     charset = "abcdefghijklmnopqrstuvwxyz"
//     min-chars = 1
//   }
//   rule "charset" { charset = "0123456789" min-chars = 1 }
//
// A password is `length` characters drawn uniformly (libsodium) from the union of the rules'
// charsets, drawn again until every rule has its min-chars (as Vault). The length is 4 to 1024;
// each charset is printable ASCII (Vault allows any UTF-8; sigil keeps passwords safe to paste
// into configuration and SQL literals' neighbours), and the min-chars add up to at most the
// length. Errors are kInvalidArgument naming the field. Thread-safe (pure functions).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::authz {

struct PasswordRule {
  std::string charset;
  int min_chars = 0;
};

struct PasswordPolicy {
  int length = 0;
  std::vector<PasswordRule> rules;
  std::string alphabet;  // the union of the charsets, each character once
};

Result<PasswordPolicy> ParsePasswordPolicy(std::string_view text);
// A password under `p`. kResourceExhausted when 100000 draws never met the rules (a policy whose
// min-chars are very unlikely together).
Result<SecretBytes> GeneratePassword(const PasswordPolicy& p);

}  // namespace sigil::authz
