// Fuzzes the RBAC object checks (shape, then kube-apiserver's validation) on arbitrary JSON, as
// a create or update body reaches them: an object whose metadata is an object with a string
// name (what decoding guarantees before validation).
#include <cstdint>
#include <string_view>

#include "sigil/registry/validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = sigil::registry::Json::parse(std::string_view(reinterpret_cast<const char*>(data), size), nullptr, false);
  if (!j.is_object()) return 0;
  if (!j.contains("metadata") || !j["metadata"].is_object()) j["metadata"] = sigil::registry::Json::object();
  if (!j["metadata"].contains("name") || !j["metadata"]["name"].is_string()) j["metadata"]["name"] = "x";
  for (const char* f : {"labels", "annotations"}) j["metadata"].erase(f);
  for (const char* kind : {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}) {
    if (!sigil::registry::ShapeOfRbac(kind, j).empty()) continue;
    (void)sigil::registry::ValidateRbac(kind, j).size();
  }
  return 0;
}
