#include "sigil/authz/password_policy.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <set>

#include "sigil/authz/hcl.h"
#include "sigil/crypto/random.h"

namespace sigil::authz {
namespace {

constexpr int kMinLength = 4, kMaxLength = 1024;
constexpr int kMaxDraws = 100000;
constexpr size_t kMaxRules = 100;
constexpr auto kBudget = std::chrono::seconds(1);  // per password, as Vault's generator

Status Bad(int line, const std::string& why) {
  return InvalidArgumentError(line > 0 ? "line " + std::to_string(line) + ": " + why : why);
}

Result<int> Integer(const hcl::Value& v, const std::string& field) {
  if (v.kind != hcl::Value::Kind::kNumber) return Bad(v.line, field + " must be a number");
  char* end = nullptr;
  double d = std::strtod(v.text.c_str(), &end);
  if (end == v.text.c_str() || *end != '\0' || !std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 1e9) {
    return Bad(v.line, field + " must be a whole number");
  }
  return static_cast<int>(d);
}

Status Rule(const hcl::Value& body, PasswordPolicy* p) {
  if (body.kind != hcl::Value::Kind::kObject) return Bad(body.line, "a charset rule is a block");
  PasswordRule r;
  bool has_charset = false;
  for (const hcl::Entry& e : body.entries) {
    if (e.key == "charset") {
      if (e.value.kind != hcl::Value::Kind::kString) return Bad(e.line, "charset must be a string");
      r.charset = e.value.text;
      has_charset = true;
    } else if (e.key == "min-chars" || e.key == "min_chars") {
      SIGIL_ASSIGN_OR_RETURN(r.min_chars, Integer(e.value, "min-chars"));
      if (r.min_chars < 0) return Bad(e.line, "min-chars must not be negative");
    } else {
      return Bad(e.line, "unknown field \"" + e.key.substr(0, 32) + "\" in a charset rule");
    }
  }
  if (!has_charset || r.charset.empty()) return Bad(body.line, "a charset rule needs a non-empty charset");
  if (!std::all_of(r.charset.begin(), r.charset.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return Bad(body.line, "charset must be printable ASCII without spaces");
  }
  p->rules.push_back(std::move(r));
  return OkStatus();
}

// `rule "charset" { ... }`: rule = {charset = {...}}; in JSON also a list of those.
Status Rules(const hcl::Value& v, PasswordPolicy* p) {
  if (v.kind == hcl::Value::Kind::kList) {
    for (const hcl::Value& item : v.items) SIGIL_RETURN_IF_ERROR(Rules(item, p));
    return OkStatus();
  }
  if (v.kind != hcl::Value::Kind::kObject) return Bad(v.line, "rule must be a block: rule \"charset\" { ... }");
  for (const hcl::Entry& e : v.entries) {
    if (e.key != "charset") return Bad(e.line, "unknown rule type \"" + e.key.substr(0, 32) + "\" (sigil knows \"charset\")");
    if (e.value.kind == hcl::Value::Kind::kList) {
      for (const hcl::Value& item : e.value.items) SIGIL_RETURN_IF_ERROR(Rule(item, p));
    } else {
      SIGIL_RETURN_IF_ERROR(Rule(e.value, p));
    }
  }
  return OkStatus();
}

}  // namespace

Result<PasswordPolicy> ParsePasswordPolicy(std::string_view text) {
  SIGIL_ASSIGN_OR_RETURN(std::vector<hcl::Entry> top, hcl::Parse(text));
  PasswordPolicy p;
  bool has_length = false;
  for (const hcl::Entry& e : top) {
    if (e.key == "length") {
      SIGIL_ASSIGN_OR_RETURN(p.length, Integer(e.value, "length"));
      has_length = true;
    } else if (e.key == "rule") {
      SIGIL_RETURN_IF_ERROR(Rules(e.value, &p));
    } else {
      return Bad(e.line, "unknown field \"" + e.key.substr(0, 32) + "\"");
    }
  }
  if (!has_length) return InvalidArgumentError("length is required");
  if (p.length < kMinLength || p.length > kMaxLength) return InvalidArgumentError("length must be from 4 to 1024");
  if (p.rules.empty()) return InvalidArgumentError("at least one charset rule is required");
  if (p.rules.size() > kMaxRules) return InvalidArgumentError("at most 100 charset rules");
  int min_total = 0;
  std::set<char> seen;
  for (const PasswordRule& r : p.rules) {
    min_total += r.min_chars;
    for (char c : r.charset) {
      if (seen.insert(c).second) p.alphabet += c;
    }
  }
  if (min_total > p.length) return InvalidArgumentError("the rules' min-chars add up to more than the length");
  return p;
}

Result<SecretBytes> GeneratePassword(const PasswordPolicy& p) {
  if (p.alphabet.empty() || p.length <= 0) return InvalidArgumentError("empty password policy");
  // Which rules each character counts for, so a draw is checked in one pass.
  std::vector<std::vector<uint8_t>> in_rule(p.rules.size(), std::vector<uint8_t>(256, 0));
  for (size_t i = 0; i < p.rules.size(); ++i) {
    for (char c : p.rules[i].charset) in_rule[i][static_cast<unsigned char>(c)] = 1;
  }
  auto deadline = std::chrono::steady_clock::now() + kBudget;
  std::vector<int> counts(p.rules.size());
  for (int draw = 0; draw < kMaxDraws; ++draw) {
    SecretBytes v = crypto::RandomString(static_cast<size_t>(p.length), p.alphabet);
    std::fill(counts.begin(), counts.end(), 0);
    for (char c : v.view()) {
      for (size_t i = 0; i < p.rules.size(); ++i) counts[i] += in_rule[i][static_cast<unsigned char>(c)];
    }
    bool ok = true;
    for (size_t i = 0; i < p.rules.size() && ok; ++i) ok = counts[i] >= p.rules[i].min_chars;
    if (ok) return v;
    if ((draw & 63) == 63 && std::chrono::steady_clock::now() > deadline) break;
  }
  return ResourceExhaustedError("no password met the policy's rules within 1 s; the rules are too unlikely together");
}

}  // namespace sigil::authz
