// Fuzzes the Kubernetes protobuf body decoder (k8s\0 + runtime.Unknown + each served kind).
#include <cstdint>
#include <string_view>

#include "sigil/api/kubernetes/protobuf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  for (const char* kind : {"Secret", "Namespace", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
                           "SelfSubjectAccessReview", "SelfSubjectRulesReview"}) {
    (void)sigil::kube::DecodeProtobufObject(body, kind).ok();
  }
  return 0;
}
