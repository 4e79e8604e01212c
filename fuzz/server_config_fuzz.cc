// Fuzzes the server config parser and its validation.
#include <cstdint>
#include <string_view>

#include "sigil/server/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = sigil::server::ParseConfig(std::string_view(reinterpret_cast<const char*>(data), size));
  if (r.ok()) r->Validate().IgnoreError();
  return 0;
}
