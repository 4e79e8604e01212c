// Fuzzes the Kubernetes protobuf body decoder (k8s\0 + runtime.Unknown + Secret/Namespace).
#include <cstdint>
#include <string_view>

#include "sigil/api/kubernetes/protobuf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)sigil::kube::DecodeProtobufObject(body, "Secret").ok();
  (void)sigil::kube::DecodeProtobufObject(body, "Namespace").ok();
  return 0;
}
