// Fuzzes Vault's password policy language (authz/password_policy.h) as sys/policies/password
// receives it: parsed, and a valid policy generates a password (its length capped here).
#include <cstdint>
#include <string_view>

#include "sigil/authz/password_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto p = sigil::authz::ParsePasswordPolicy(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!p.ok()) return 0;
  if (p->length > 64) p->length = 64;
  int total = 0;
  for (const auto& r : p->rules) total += r.min_chars;
  if (total <= p->length) (void)sigil::authz::GeneratePassword(*p).ok();
  return 0;
}
