// Fuzzes a Secret's rotation policy (registry/rotation.h) on arbitrary JSON as a Secret body's
// metadata.annotations reach it: the policy is parsed, and a valid one generates a value (its
// length capped here to keep runs fast) and computes the next rotation.
#include <cstdint>
#include <string_view>

#include "sigil/registry/rotation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = nlohmann::ordered_json::parse(std::string_view(reinterpret_cast<const char*>(data), size), nullptr, false);
  if (!j.is_object()) return 0;
  auto p = sigil::registry::RotationPolicyOf(j);
  if (!p.ok() || !*p) return 0;
  sigil::registry::RotationPolicy policy = **p;
  if (policy.length > 256) policy.length = 256;
  (void)sigil::registry::GenerateValue(policy).size();
  (void)sigil::registry::NextRotation(j, policy, sigil::Clock::TimePoint{});
  return 0;
}
