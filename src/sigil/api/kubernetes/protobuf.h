// api/kubernetes/protobuf.h: decodes Kubernetes protobuf bodies ("k8s\0" + runtime.Unknown)
// into the JSON form the rest of the adapter works on. Only the kinds sigil serves are known;
// anything else is kInvalidArgument. Thread-safe, pure.
#pragma once

#include <string_view>

#include "sigil/api/kubernetes/common.h"
#include "sigil/base/result.h"

namespace sigil::kube {

inline constexpr std::string_view kProtobufContentType = "application/vnd.kubernetes.protobuf";

// `expected_kind` is the kind the URL serves ("Secret", "Namespace").
Result<Json> DecodeProtobufObject(std::string_view body, std::string_view expected_kind);

}  // namespace sigil::kube
