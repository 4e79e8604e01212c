// Fuzzes the audit Policy parser (an operator's YAML file) and evaluation of what it parsed.
#include <cstdint>
#include <string_view>

#include "sigil/audit/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto p = sigil::audit::Policy::Parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (p.ok()) {
    sigil::Identity who{"alice", "", {"dev", "system:authenticated"}, {}, ""};
    (void)p->Evaluate({&who, "get", true, "", "secrets", "versions", "default", "db", ""});
    (void)p->Evaluate({&who, "get", false, "", "", "", "", "", "/healthz/ready"});
  }
  return 0;
}
