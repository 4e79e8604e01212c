// api/kubernetes/yaml_json.h: YAML request bodies (server-side apply sends
// application/apply-patch+yaml) to JSON, as sigs.k8s.io/yaml converts them for kube-apiserver.
//
// Plain scalars resolve as YAML's core schema does (null, true/false, integers, floats);
// quoted or !!str-tagged scalars stay strings. Map keys must be scalars and unique. The JSON
// is built from yaml-cpp's parse events, not its node graph: an alias copies the anchored
// value, every copied node counts against a budget (a "billion laughs" document is refused
// rather than expanded), and an alias inside the node it names is refused (yaml-cpp's graph
// would hold it as a reference cycle and leak it). Error messages name the line, never the
// content. Thread-safe.
#pragma once

#include <string_view>

#include "sigil/api/kubernetes/common.h"
#include "sigil/base/result.h"

namespace sigil::kube {

constexpr int kMaxYamlDepth = 100;

// One document (a second document in the stream is an error). kInvalidArgument with a
// message fit for a client on malformed input.
Result<Json> YamlToJson(std::string_view text);

}  // namespace sigil::kube
