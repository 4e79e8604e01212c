// api/kubernetes/yaml_json.h: YAML request bodies (server-side apply sends
// application/apply-patch+yaml) to JSON, as sigs.k8s.io/yaml converts them for kube-apiserver.
//
// Plain scalars resolve as YAML's core schema does (null, true/false, integers, floats);
// quoted or !!str-tagged scalars stay strings. Map keys must be scalars and unique. Aliases
// are expanded, so the conversion counts every node it emits against a budget: a small
// document of nested aliases ("billion laughs") is refused rather than expanded. Error
// messages name the line, never the content. Thread-safe.
#pragma once

#include <string_view>

#include "sigil/api/kubernetes/validation.h"
#include "sigil/base/result.h"

namespace sigil::kube {

constexpr int kMaxYamlDepth = 100;

// One document (a second document in the stream is an error). kInvalidArgument with a
// message fit for a client on malformed input.
Result<Json> YamlToJson(std::string_view text);

}  // namespace sigil::kube
