// api/kubernetes/managed_fields.h: field ownership (metadata.managedFields) and server-side
// apply for Secrets, with the semantics of kubernetes-sigs/structured-merge-diff.
//
// A Secret's fields are few and flat, so a field path is a short list of names:
//   {"type"}, {"immutable"}, {"data", <key>}, {"metadata", "labels", <key>},
//   {"metadata", "annotations", <key>}, and the atomic lists {"metadata", "finalizers"} and
//   {"metadata", "ownerReferences"}. A map itself ({"data"}, {"metadata", "labels"}) is a path
//   too; it renders as "." inside the map's entry, as kube-apiserver does when a write adds or
//   removes the whole map.
//
// Update (POST, PUT, non-apply PATCH): the writer gains the fields it added or changed; other
// managers lose them; removed fields leave every manager. Apply: the applier owns exactly the
// fields of its configuration; changing a field another manager owns is a conflict unless
// forced (then the other manager loses it); fields the applier owned before and no longer
// mentions are removed from the object unless another manager still owns them.
//
// Ownership lists field names, never values. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sigil/api/kubernetes/common.h"

namespace sigil::kube {

using FieldPath = std::vector<std::string>;
using FieldSet = std::set<FieldPath>;

// fieldsV1 <-> FieldSet. Elements sigil does not model (list keys "k:", "v:", "i:") are
// dropped on parse.
FieldSet FieldSetFromV1(const Json& fields_v1);
Json FieldSetToV1(const FieldSet& set);

// The paths an object sets (its leaves); with `with_maps`, also each present map. Secrets'
// data, labels and annotations are maps of owned keys; RBAC's rules, subjects, roleRef and
// aggregationRule are owned whole.
FieldSet ObjectFields(const Json& obj, bool with_maps);

struct ManagedEntry {
  std::string manager;
  std::string operation;  // "Apply" or "Update"
  std::string api_version = "v1";
  std::string time;
  FieldSet fields;
  // How kube-apiserver names the manager in conflict messages: "kubectl" for an applier,
  // "\"kubectl-edit\" using v1" for an updater (the quotes are part of it).
  std::string Label() const;
};

std::vector<ManagedEntry> ParseManagedFields(const Json& managed_fields);
Json RenderManagedFields(const std::vector<ManagedEntry>& entries);

// Records a non-apply write by `manager` that turned `old_obj` (nullptr on create) into
// `new_obj`.
void RecordUpdate(std::vector<ManagedEntry>* entries, const Json* old_obj, const Json& new_obj,
                  const std::string& manager, const std::string& now);

struct ApplyConflict {
  std::string manager_label;
  FieldPath path;
};

struct ApplyResult {
  Json obj;                            // live object with the configuration applied
  std::vector<ManagedEntry> entries;   // the new managedFields
  std::vector<ApplyConflict> conflicts;  // non-empty: refused (nothing else is meaningful)
};

// Applies `config` (a prepared Secret: stringData already merged into data) by `manager` to
// `live` (nullptr when the object does not exist yet). `config_fields` are the fields the
// configuration sets (ObjectFields(config, false), minus any defaulted by preparation).
ApplyResult Apply(const Json* live, const std::vector<ManagedEntry>& entries, const Json& config,
                  const FieldSet& config_fields, const std::string& manager, bool force, const std::string& now);

// The 409 kube-apiserver returns for conflicts ("Apply failed with 1 conflict: ...").
ApiError ApplyConflictError(const std::vector<ApplyConflict>& conflicts);

// ".data.password"
std::string FieldPathString(const FieldPath& path);

}  // namespace sigil::kube
