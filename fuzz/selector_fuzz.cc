// Fuzzes the label and field selector parsers (the labelSelector / fieldSelector query
// parameters), and matching with whatever parses.
#include <cstdint>
#include <string>

#include "sigil/registry/selectors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (auto l = sigil::registry::LabelSelector::Parse(text); l.ok()) {
    l->Matches({{"app", "demo"}, {"tier", "web"}});
  }
  if (auto f = sigil::registry::FieldSelector::Parse(text, {"metadata.name", "type"}); f.ok()) {
    f->Matches([](const std::string& field) { return field == "type" ? std::string("Opaque") : std::string("x"); });
  }
  return 0;
}
