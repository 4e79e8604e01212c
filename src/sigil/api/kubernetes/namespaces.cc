// api/kubernetes/namespaces.cc: Namespaces: create, get, list, update (labels and annotations), delete.
#include "sigil/api/kubernetes/impl.h"
#include "sigil/api/kubernetes/managed_fields.h"

namespace sigil::kube {

http::Response KubernetesApi::Impl::CreateNamespace(const http::Request& req, const std::map<std::string, std::string>& q) {
  auto body = DecodeBody(req, "Namespace");
  if (!body.ok) return Fail(req, body.error);
  const Json& in = body.json;
  if (!in.is_object() || !in.value("metadata", Json::object()).is_object()) {
    return Fail(req, BadRequest("Namespace in version \"v1\" cannot be handled as a Namespace: the body is not an object"));
  }
  std::string name = in["metadata"].value("name", "");
  Json labels = in["metadata"].contains("labels") && in["metadata"]["labels"].is_object() ? in["metadata"]["labels"] : Json();
  Json annotations =
      in["metadata"].contains("annotations") && in["metadata"]["annotations"].is_object() ? in["metadata"]["annotations"] : Json();
  auto w = registry_->CreateNamespace(registry_->NewNamespace(name, labels, annotations), Param(q, "dryRun") == "All");
  if (!w.ok()) return Fail(req, w.error());
  return Reply(req, 201, w->obj);
}

http::Response KubernetesApi::Impl::GetNamespace(const http::Request& req, const std::string& ns) {
  auto o = registry_->Get(registry::Namespaces(), "", ns);
  if (!o.ok()) return Fail(req, o.error());
  Json obj = o->Rendered();
  if (WantsTable(req)) return Reply(req, 200, NamespaceTable({obj}, std::to_string(o->revision)), kTableContentType);
  return Reply(req, 200, obj);
}

http::Response KubernetesApi::Impl::ListNamespaces(const http::Request& req, const std::map<std::string, std::string>& q) {
  registry::ListOptions opts;
  if (auto e = CheckListVersion(q, &opts.exact_revision)) return Fail(req, *e);
  auto labels = LabelSelector::Parse(Param(q, "labelSelector"));
  if (!labels.ok()) return Fail(req, BadRequest(labels.error().message()));
  auto fields = FieldSelector::Parse(Param(q, "fieldSelector"), registry::Namespaces().strategy->FieldSelectors());
  if (!fields.ok()) return Fail(req, BadRequest(fields.error().message()));
  opts.labels = std::move(labels).value();
  opts.fields = std::move(fields).value();
  auto l = registry_->List(registry::Namespaces(), "", opts);
  if (!l.ok()) return Fail(req, l.error());
  std::string rv = std::to_string(l->revision);
  if (WantsTable(req)) return Reply(req, 200, NamespaceTable(l->items, rv), kTableContentType);
  Json list = {{"kind", "NamespaceList"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", rv}}}, {"items", Json::array()}};
  for (Json& i : l->items) {
    i.erase("kind");
    i.erase("apiVersion");
    list["items"].push_back(std::move(i));
  }
  return Reply(req, 200, list);
}

// PUT and PATCH (merge, strategic, JSON patch, server-side apply) of a Namespace. Only labels
// and annotations change: spec.finalizers and status belong to subresources sigil does not
// serve, and are kept. The kubernetes.io/metadata.name label always equals the name.
http::Response KubernetesApi::Impl::WriteNamespace(const http::Request& req, const std::map<std::string, std::string>& q, const std::string& name) {
  if (std::string e = CheckWriteOptions(q); !e.empty()) return Fail(req, BadRequest(e));
  auto it = req.find(boost::beast::http::field::content_type);
  std::string ct = it == req.end() ? "application/json" : std::string(it->value());
  std::string base = ct.substr(0, ct.find(';'));
  bool apply = base == "application/apply-patch+yaml";
  if (req.method() == http::Verb::patch && !apply && base != "application/merge-patch+json" &&
      base != "application/strategic-merge-patch+json" && base != "application/json-patch+json") {
    return Fail(req, UnsupportedMediaType(ct));
  }
  std::string manager = Manager(req, q);
  if (apply && Param(q, "fieldManager").empty()) {
    return Fail(req, ApiError{422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch", nullptr});
  }
  auto body = DecodeBody(req, "Namespace");
  if (!body.ok) return Fail(req, body.error);
  std::vector<std::string> warnings;
  if (auto e = CheckDuplicates(body, q, &warnings)) return Fail(req, *e);
  bool dry = Param(q, "dryRun") == "All";
  auto mutate = [&](const registry::Stored& cur) -> registry::Outcome<Json> {
    Json live = cur.obj;
    Json current = cur.Rendered();
    Json next;
    if (req.method() == http::Verb::put || apply) {
      next = body.json;
    } else if (auto e = ApplyPatch(base, body.json, current, &next)) {
      return *e;
    }
    if (!next.is_object() || !next.value("metadata", Json::object()).is_object()) {
      return BadRequest("Namespace in version \"v1\" cannot be handled as a Namespace: the body is not an object");
    }
    if (next.contains("kind") && next["kind"] != "Namespace") return BadRequest("the kind in the data does not match the expected kind (Namespace)");
    const Json meta = next.value("metadata", Json::object());
    if (meta.contains("name") && meta["name"] != name) {
      return BadRequest("the name of the object does not match the name on the URL (" + name + ")");
    }
    if (meta.contains("resourceVersion") && meta["resourceVersion"].is_string() && !meta["resourceVersion"].get<std::string>().empty() &&
        meta["resourceVersion"] != std::to_string(cur.revision)) {
      return ModifiedConflict("namespaces", name);
    }
    for (const char* f : {"labels", "annotations"}) {
      if (meta.contains(f) && !meta[f].is_null()) {
        if (!meta[f].is_object()) return BadRequest(std::string("metadata.") + f + " must be a map of strings");
        for (const auto& [k, v] : meta[f].items()) {
          if (!v.is_string()) return BadRequest(std::string("metadata.") + f + " must be a map of strings");
        }
      }
    }
    Json obj = live;
    std::vector<ManagedEntry> entries = ParseManagedFields(live["metadata"].value("managedFields", Json::array()));
    if (apply) {
      Json config = {{"metadata", {{"labels", meta.value("labels", Json::object())}, {"annotations", meta.value("annotations", Json::object())}}}};
      ApplyResult r = Apply(&live, entries, config, ObjectFields(config, false), manager, ParseBool(Param(q, "force")), Now());
      if (!r.conflicts.empty()) return ApplyConflictError(r.conflicts);
      obj = std::move(r.obj);
      entries = std::move(r.entries);
    } else {
      for (const char* f : {"labels", "annotations"}) {
        if (meta.contains(f) && meta[f].is_object() && !meta[f].empty()) {
          obj["metadata"][f] = meta[f];
        } else {
          obj["metadata"].erase(f);
        }
      }
    }
    obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
    if (!apply) {
      RecordUpdate(&entries, &live, obj, manager, Now());
    }
    obj["metadata"]["managedFields"] = RenderManagedFields(entries);
    if (entries.empty()) obj["metadata"].erase("managedFields");
    return obj;
  };
  auto w = registry_->UpdateNamespace(name, mutate, dry);
  if (!w.ok()) return Fail(req, w.error());
  http::Response res = Reply(req, 200, w->obj);
  AddWarnings(&res, warnings);
  return res;
}

http::Response KubernetesApi::Impl::DeleteNamespace(const http::Request& req, const std::string& ns) {
  auto w = registry_->DeleteNamespace(ns);
  if (!w.ok()) return Fail(req, w.error());
  // The roles and bindings that went with it stop granting now, not when the watch catches up.
  if (authorizer_ != nullptr) {
    for (const std::string& key : w->deleted_keys) authorizer_->Observe(key, nullptr, w->revision);
  }
  return Reply(req, 200, w->obj);
}

}  // namespace sigil::kube
