// api/kubernetes/openapi.h: the schemas of every kind sigil serves, from one declarative table
// (openapi.cc), rendered as OpenAPI v3 (`/openapi/v3/<group-version>`, components.schemas) and
// as Swagger 2.0 (`/openapi/v2`, definitions), as kube-apiserver publishes them: the same
// schema names (io.k8s.api.core.v1.Secret, ...), field names, types and formats, required
// fields, `x-kubernetes-group-version-kind`, and the list and map extensions
// (x-kubernetes-list-type, -list-map-keys, -map-type, -patch-strategy, -patch-merge-key) that
// kubectl's explain, apply and strategic merge patches read. The descriptions are sigil's own
// words. Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sigil::kube::openapi {

using Json = nlohmann::ordered_json;

// The group-versions with schemas: "api/v1", "apis/rbac.authorization.k8s.io/v1",
// "apis/authentication.k8s.io/v1", "apis/authorization.k8s.io/v1".
const std::vector<std::string>& GroupVersions();

// components.schemas for one group-version's kinds and every schema they refer to.
Json SchemasV3(const std::string& group_version);

// Swagger 2.0 definitions for every kind sigil serves.
Json DefinitionsV2();

}  // namespace sigil::kube::openapi
