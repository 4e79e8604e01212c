// Fuzzes the YAML body parser of server-side apply (application/apply-patch+yaml), and the
// managedFields parser on whatever JSON it yields.
#include <cstdint>
#include <string_view>

#include "sigil/api/kubernetes/managed_fields.h"
#include "sigil/api/kubernetes/yaml_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = sigil::kube::YamlToJson(std::string_view(reinterpret_cast<const char*>(data), size));
  if (j.ok()) {
    auto entries = sigil::kube::ParseManagedFields(*j);
    sigil::kube::RenderManagedFields(entries);
    sigil::kube::FieldSetToV1(sigil::kube::FieldSetFromV1(*j));
  }
  return 0;
}
