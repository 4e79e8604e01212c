// Fuzzes the EncryptionConfiguration parser (operator-supplied YAML/JSON with key material).
#include <cstdint>
#include <string_view>

#include "sigil/barrier/encryption_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = sigil::barrier::EncryptionConfig::Parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (r.ok()) {
    (void)(*r)->RuleForKey("/registry/secrets/default/x");
    (void)(*r)->IdentityWriteResources();
  }
  return 0;
}
