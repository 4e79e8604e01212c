#include "sigil/api/kubernetes/managed_fields.h"

#include <map>

namespace sigil::kube {
namespace {

bool IsMap(const FieldPath& p) {
  return p == FieldPath{"data"} || p == FieldPath{"metadata", "labels"} || p == FieldPath{"metadata", "annotations"};
}

const Json* ValueAt(const Json& obj, const FieldPath& p) {
  const Json* cur = &obj;
  for (const std::string& s : p) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(s);
    if (it == cur->end() || it->is_null()) return nullptr;
    cur = &*it;
  }
  return cur;
}

void SetAt(Json* obj, const FieldPath& p, const Json& value) {
  Json* cur = obj;
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    if (!(*cur)[p[i]].is_object()) (*cur)[p[i]] = Json::object();
    cur = &(*cur)[p[i]];
  }
  (*cur)[p.back()] = value;
}

void EraseAt(Json* obj, const FieldPath& p) {
  Json* cur = obj;
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    auto it = cur->find(p[i]);
    if (it == cur->end() || !it->is_object()) return;
    cur = &*it;
  }
  cur->erase(p.back());
}

// Drops maps a prune left empty: Go's omitempty would not serialise them either.
void DropEmptyMaps(Json* obj) {
  if (obj->contains("data") && (*obj)["data"].is_object() && (*obj)["data"].empty()) obj->erase("data");
  if (obj->contains("metadata")) {
    Json& m = (*obj)["metadata"];
    for (const char* f : {"labels", "annotations"}) {
      if (m.contains(f) && m[f].is_object() && m[f].empty()) m.erase(f);
    }
  }
}

// Whether the value at `p` differs between a and b (for a map: whether it appeared or went).
bool Differs(const Json* a, const Json* b, const FieldPath& p) {
  const Json* va = a == nullptr ? nullptr : ValueAt(*a, p);
  const Json* vb = b == nullptr ? nullptr : ValueAt(*b, p);
  if ((va == nullptr) != (vb == nullptr)) return true;
  if (va == nullptr || IsMap(p)) return false;
  return *va != *vb;
}

void ParseInto(const Json& node, const FieldPath& prefix, FieldSet* out) {
  if (!node.is_object()) return;
  for (const auto& [k, v] : node.items()) {
    if (k == ".") {
      if (!prefix.empty()) out->insert(prefix);
    } else if (k.rfind("f:", 0) == 0) {
      FieldPath p = prefix;
      p.push_back(k.substr(2));
      if (v.is_object() && !v.empty()) {
        ParseInto(v, p, out);
      } else {
        out->insert(p);
      }
    }
  }
}

struct Node {
  bool member = false;
  std::map<std::string, Node> children;
};

Json RenderNode(const Node& n) {
  Json out = Json::object();
  if (n.member && !n.children.empty()) out["."] = Json::object();
  for (const auto& [name, child] : n.children) out["f:" + name] = RenderNode(child);
  return out;
}

}  // namespace

FieldSet FieldSetFromV1(const Json& fields_v1) {
  FieldSet out;
  ParseInto(fields_v1, {}, &out);
  return out;
}

Json FieldSetToV1(const FieldSet& set) {
  Node root;
  for (const FieldPath& p : set) {
    Node* n = &root;
    for (const std::string& s : p) n = &n->children[s];
    n->member = true;
  }
  return RenderNode(root);
}

FieldSet ObjectFields(const Json& obj, bool with_maps) {
  FieldSet out;
  auto add_map = [&](const FieldPath& at) {
    const Json* m = ValueAt(obj, at);
    if (m == nullptr || !m->is_object() || m->empty()) return;
    if (with_maps) out.insert(at);
    for (const auto& [k, v] : m->items()) {
      FieldPath p = at;
      p.push_back(k);
      out.insert(p);
    }
  };
  add_map({"data"});
  add_map({"metadata", "labels"});
  add_map({"metadata", "annotations"});
  for (const FieldPath& p : {FieldPath{"metadata", "finalizers"}, FieldPath{"metadata", "ownerReferences"}}) {
    const Json* v = ValueAt(obj, p);
    if (v != nullptr && !(v->is_array() && v->empty())) out.insert(p);
  }
  // Secret fields; RBAC fields, each owned as a whole (kube-apiserver's rules and subjects are
  // atomic lists; sigil treats roleRef and aggregationRule as atomic too).
  for (const char* f : {"type", "immutable", "rules", "aggregationRule", "subjects", "roleRef"}) {
    if (ValueAt(obj, {f}) != nullptr) out.insert({f});
  }
  return out;
}

std::string ManagedEntry::Label() const {
  std::string quoted = Json(manager).dump();
  return operation == "Update" ? quoted + " using " + api_version : quoted;
}

std::vector<ManagedEntry> ParseManagedFields(const Json& managed_fields) {
  std::vector<ManagedEntry> out;
  if (!managed_fields.is_array()) return out;
  for (const Json& e : managed_fields) {
    if (!e.is_object()) continue;
    // Client-supplied entries: a field of the wrong type reads as absent, never throws.
    auto str = [&](const char* k, const char* fallback) {
      auto it = e.find(k);
      return it != e.end() && it->is_string() ? it->get<std::string>() : std::string(fallback);
    };
    ManagedEntry m;
    m.manager = str("manager", "");
    m.operation = str("operation", "Update");
    if (m.operation != "Apply") m.operation = "Update";
    m.api_version = str("apiVersion", "v1");
    m.time = str("time", "");
    if (auto it = e.find("fieldsV1"); it != e.end()) m.fields = FieldSetFromV1(*it);
    out.push_back(std::move(m));
  }
  return out;
}

Json RenderManagedFields(const std::vector<ManagedEntry>& entries) {
  Json out = Json::array();
  for (const ManagedEntry& e : entries) {
    Json j = {{"manager", e.manager}, {"operation", e.operation}, {"apiVersion", e.api_version}};
    if (!e.time.empty()) j["time"] = e.time;
    j["fieldsType"] = "FieldsV1";
    j["fieldsV1"] = FieldSetToV1(e.fields);
    out.push_back(std::move(j));
  }
  return out;
}

namespace {

ManagedEntry* Find(std::vector<ManagedEntry>* entries, const std::string& manager, const std::string& operation) {
  for (ManagedEntry& e : *entries) {
    if (e.manager == manager && e.operation == operation) return &e;
  }
  return nullptr;
}

void DropEmpty(std::vector<ManagedEntry>* entries) {
  std::erase_if(*entries, [](const ManagedEntry& e) { return e.fields.empty(); });
}

}  // namespace

void RecordUpdate(std::vector<ManagedEntry>* entries, const Json* old_obj, const Json& new_obj, const std::string& manager,
                  const std::string& now) {
  FieldSet before = old_obj == nullptr ? FieldSet{} : ObjectFields(*old_obj, true);
  FieldSet after = ObjectFields(new_obj, true);
  FieldSet changed, removed;
  for (const FieldPath& p : after) {
    if (!before.count(p) || Differs(old_obj, &new_obj, p)) changed.insert(p);
  }
  for (const FieldPath& p : before) {
    if (!after.count(p)) removed.insert(p);
  }
  for (ManagedEntry& e : *entries) {
    if (e.manager == manager && e.operation == "Update") continue;
    for (const FieldPath& p : changed) e.fields.erase(p);
    for (const FieldPath& p : removed) e.fields.erase(p);
  }
  ManagedEntry* mine = Find(entries, manager, "Update");
  if (mine == nullptr && !changed.empty()) {
    entries->push_back(ManagedEntry{manager, "Update", new_obj.value("apiVersion", "v1"), now, {}});
    mine = &entries->back();
  }
  if (mine != nullptr) {
    for (const FieldPath& p : changed) mine->fields.insert(p);
    for (const FieldPath& p : removed) mine->fields.erase(p);
    if (!changed.empty()) mine->time = now;
  }
  DropEmpty(entries);
}

ApplyResult Apply(const Json* live, const std::vector<ManagedEntry>& entries, const Json& config,
                  const FieldSet& config_fields, const std::string& manager, bool force, const std::string& now) {
  ApplyResult r;
  r.entries = entries;
  r.obj = live == nullptr ? config : *live;
  // Conflicts: a field this apply changes that another manager owns.
  std::map<size_t, FieldSet> lost;  // entry index -> fields it loses when forced
  for (const FieldPath& p : config_fields) {
    if (live != nullptr && !Differs(live, &config, p)) continue;  // same value: shared ownership
    for (size_t i = 0; i < r.entries.size(); ++i) {
      const ManagedEntry& e = r.entries[i];
      if (e.manager == manager && e.operation == "Apply") continue;
      if (!e.fields.count(p)) continue;
      if (force) {
        lost[i].insert(p);
      } else {
        r.conflicts.push_back({e.Label(), p});
      }
    }
  }
  if (!r.conflicts.empty()) return r;
  for (const auto& [i, fields] : lost) {
    for (const FieldPath& p : fields) r.entries[i].fields.erase(p);
  }
  if (live != nullptr) {
    for (const FieldPath& p : config_fields) {
      if (const Json* v = ValueAt(config, p)) SetAt(&r.obj, p, *v);
    }
  }
  // Prune what this applier set before and no longer mentions, unless someone else owns it.
  ManagedEntry* mine = Find(&r.entries, manager, "Apply");
  if (mine != nullptr) {
    for (const FieldPath& p : mine->fields) {
      if (config_fields.count(p) || IsMap(p)) continue;
      bool owned_elsewhere = false;
      for (const ManagedEntry& e : r.entries) {
        if (&e != mine && e.fields.count(p)) owned_elsewhere = true;
      }
      if (!owned_elsewhere) EraseAt(&r.obj, p);
    }
    DropEmptyMaps(&r.obj);
    mine->fields = config_fields;
    mine->time = now;
  } else {
    r.entries.push_back(ManagedEntry{manager, "Apply", config.value("apiVersion", "v1"), now, config_fields});
  }
  DropEmpty(&r.entries);
  return r;
}

std::string FieldPathString(const FieldPath& path) {
  std::string s;
  for (const std::string& e : path) s += "." + e;
  return s;
}

ApiError ApplyConflictError(const std::vector<ApplyConflict>& conflicts) {
  Json causes = Json::array();
  for (const ApplyConflict& c : conflicts) {
    causes.push_back({{"reason", "FieldManagerConflict"}, {"message", "conflict with " + c.manager_label},
                      {"field", FieldPathString(c.path)}});
  }
  std::string message;
  if (conflicts.size() == 1) {
    message = "Apply failed with 1 conflict: conflict with " + conflicts[0].manager_label + ": " +
              FieldPathString(conflicts[0].path);
  } else {
    std::map<std::string, std::vector<std::string>> by_manager;
    for (const ApplyConflict& c : conflicts) by_manager[c.manager_label].push_back(FieldPathString(c.path));
    message = "Apply failed with " + std::to_string(conflicts.size()) + " conflicts: ";
    bool first = true;
    for (const auto& [label, paths] : by_manager) {
      message += (first ? "" : "\n") + std::string("conflicts with ") + label + ":";
      for (const std::string& p : paths) message += "\n- " + p;
      first = false;
    }
  }
  return ApiError{409, "Conflict", message, Json{{"causes", causes}}};
}

}  // namespace sigil::kube
