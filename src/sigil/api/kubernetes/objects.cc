// api/kubernetes/objects.cc: the object handlers shared by Secrets and the RBAC kinds (create,
// get, update, patch, apply, delete). They decode the request, hand the registry what to write
// with two hooks of the face's own: admission (RBAC escalation prevention, which needs the
// authorizer) and field management (managedFields), and render the result.
#include "sigil/api/kubernetes/impl.h"
#include "sigil/api/kubernetes/managed_fields.h"
#include "sigil/crypto/random.h"

namespace sigil::kube {
namespace {

std::string FieldValidation(const std::map<std::string, std::string>& q) {
  std::string fv = Param(q, "fieldValidation");
  return fv.empty() ? "Warn" : fv;
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

registry::WriteOptions KubernetesApi::Impl::WriteOptionsFor(const registry::Resource& t, const http::Request& req,
                                                            const std::map<std::string, std::string>& q, const Identity* who,
                                                            const std::string& ns) {
  registry::WriteOptions o;
  o.field_validation = FieldValidation(q);
  o.dry_run = Param(q, "dryRun") == "All";
  o.manager = Manager(req, q);
  o.admit = [this, &t, who, ns](const Json& obj) { return CheckEscalation(t, who, ns, obj["metadata"].value("name", ""), obj); };
  // An update is recorded for the request's field manager. managedFields sent with the object
  // replace the recorded ones (so a client can migrate ownership); [{}] clears them; absent or
  // empty keeps the recorded ones.
  o.track = [this, manager = o.manager](const Json* old_obj, Json* obj) {
    std::vector<ManagedEntry> entries;
    if (old_obj != nullptr) {
      Json base_fields = (*old_obj)["metadata"].value("managedFields", Json::array());
      if (Json sent = (*obj)["metadata"].value("managedFields", Json::array()); sent.is_array() && !sent.empty()) {
        base_fields = sent.size() == 1 && sent[0].is_object() && sent[0].empty() ? Json::array() : sent;
      }
      entries = ParseManagedFields(base_fields);
    }
    RecordUpdate(&entries, old_obj, *obj, manager, Now());
    (*obj)["metadata"]["managedFields"] = RenderManagedFields(entries);
  };
  return o;
}

http::Response KubernetesApi::Impl::CreateObject(const registry::Resource& t, const http::Request& req,
                                                 const std::map<std::string, std::string>& q, const std::string& ns,
                                                 const Identity* who) {
  if (std::string e = CheckWriteOptions(q); !e.empty()) return Fail(req, BadRequest(e));
  auto body = DecodeBody(req, t.kind);
  if (!body.ok) return Fail(req, body.error);
  std::vector<std::string> duplicates;
  if (auto e = CheckDuplicates(body, q, &duplicates)) return Fail(req, *e);
  registry::WriteOptions o = WriteOptionsFor(t, req, q, who, ns);
  o.operation = "create";
  auto w = registry_->Create(t, ns, body.json, o);
  if (!w.ok()) return Fail(req, w.error());
  if (!o.dry_run) ObserveRbac(t, ns, w->obj["metadata"].value("name", ""), &w->obj, w->revision);
  return Reply(req, 201, w->obj, "application/json", Concat(w->warnings, duplicates));
}

http::Response KubernetesApi::Impl::GetObject(const registry::Resource& t, const http::Request& req, const std::string& ns,
                                              const std::string& name) {
  auto o = registry_->Get(t, ns, name);
  if (!o.ok()) return Fail(req, o.error());
  Json obj = o->Rendered();
  ShowAggregated(t, &obj);
  if (WantsTable(req)) return Reply(req, 200, TableFor(t, {obj}, std::to_string(o->revision), ""), kTableContentType);
  return Reply(req, 200, obj);
}

// An aggregated ClusterRole is read with the rules it grants (the union of the ClusterRoles
// its selectors match), as kube-apiserver's aggregation controller would have written them;
// the stored object keeps what its writer gave.
void KubernetesApi::Impl::ShowAggregated(const registry::Resource& t, Json* obj) const {
  if (!(t == registry::ClusterRoles()) || authorizer_ == nullptr || !obj->contains("aggregationRule")) return;
  auto rules = authorizer_->RulesOfRole("ClusterRole", (*obj)["metadata"].value("name", ""), "");
  if (!rules) return;
  Json out = Json::array();
  for (const authz::PolicyRule& r : *rules) out.push_back(Json::parse(r.ToJson().dump()));
  (*obj)["rules"] = out;
}

// RBAC escalation prevention (k/k pkg/registry/rbac): a caller may create or change a role only
// with rules it holds itself, unless it may "escalate" on that role; it may bind a role only
// when it holds the role's rules where the binding applies, unless it may "bind" that role.
// system:masters may do both, as in kube-apiserver.
std::optional<ApiError> KubernetesApi::Impl::CheckEscalation(const registry::Resource& t, const Identity* who, const std::string& ns,
                                        const std::string& name, const Json& obj) {
  if (!IsRbac(t) || authorizer_ == nullptr) return std::nullopt;
  if (who == nullptr) return Forbidden(authz::Attributes{"create", true, t.group, t.plural, "", ns, name, ""}, who);
  if (std::find(who->groups.begin(), who->groups.end(), "system:masters") != who->groups.end()) return std::nullopt;
  std::string scope = t.namespaced ? ns : "";
  std::vector<authz::PolicyRule> wanted;
  if (IsRole(t)) {
    if (authorizer_->Allows(*who, authz::Attributes{"escalate", true, t.group, t.plural, "", scope, name, ""})) return std::nullopt;
    for (const Json& r : obj.value("rules", Json::array())) wanted.push_back(authz::PolicyRule::FromJson(r));
    if (obj.contains("aggregationRule") && obj["aggregationRule"].is_object()) {
      // An aggregated role gains whatever matching roles hold: only full authority may make one.
      wanted = {authz::PolicyRule{{"*"}, {"*"}, {"*"}, {}, {}}, authz::PolicyRule{{"*"}, {}, {}, {}, {"*"}}};
    }
  } else {
    Json ref = obj.value("roleRef", Json::object());
    std::string ref_kind = ref.value("kind", ""), ref_name = ref.value("name", "");
    std::string ref_plural = ref_kind == "Role" ? "roles" : "clusterroles";
    if (authorizer_->Allows(*who, authz::Attributes{"bind", true, t.group, ref_plural, "", scope, ref_name, ""})) return std::nullopt;
    auto rules = authorizer_->RulesOfRole(ref_kind, ref_name, scope);
    if (!rules) return registry::ForResource(NotFound(ref_plural + "." + std::string(kRbacGroup), ref_name), ref_kind == "Role" ? registry::Roles() : registry::ClusterRoles());
    wanted = std::move(*rules);
  }
  std::vector<authz::PolicyRule> missing = authz::Uncovered(authorizer_->RulesFor(*who, scope), wanted);
  if (missing.empty()) return std::nullopt;
  std::string groups;
  for (const std::string& g : who->groups) groups += (groups.empty() ? "" : " ") + Json(g).dump();
  std::string m = t.Qualified() + " " + Json(name).dump() + " is forbidden: user " + Json(who->user).dump() + " (groups=[" + groups +
                  "]) is attempting to grant RBAC permissions not currently held:";
  for (const authz::PolicyRule& r : missing) m += "\n" + r.Describe();
  Json details = {{"name", name}, {"kind", t.plural}, {"group", t.group}};
  return ApiError{403, "Forbidden", m, details};
}

// After an RBAC write, waits (briefly) until the authorizer has seen it, so that the next
// request of the same client is decided on the new rules.
// After an RBAC write, the authorizer applies it at once (Authorizer::Observe), so the same
// client's next request is decided on the new rules; nothing waits for the store watch.
void KubernetesApi::Impl::ObserveRbac(const registry::Resource& t, const std::string& ns, const std::string& name,
                                      const Json* obj, int64_t revision) {
  if (!IsRbac(t) || authorizer_ == nullptr) return;
  if (obj == nullptr) return authorizer_->Observe(t.Key(ns, name), nullptr, revision);
  nlohmann::json plain = nlohmann::json::parse(obj->dump());
  plain["metadata"].erase("resourceVersion");
  authorizer_->Observe(t.Key(ns, name), &plain, revision);
}

http::Response KubernetesApi::Impl::UpdateObject(const registry::Resource& t, const Identity* who, const http::Request& req,
                                                 const std::map<std::string, std::string>& q, const std::string& ns,
                                                 const std::string& name) {
  if (std::string e = CheckWriteOptions(q); !e.empty()) return Fail(req, BadRequest(e));
  auto body = DecodeBody(req, t.kind);
  if (!body.ok) return Fail(req, body.error);
  std::vector<std::string> warnings;
  if (auto e = CheckDuplicates(body, q, &warnings)) return Fail(req, *e);
  registry::WriteOptions o = WriteOptionsFor(t, req, q, who, ns);
  auto w = registry_->Update(t, ns, name, [&](const registry::Stored&) -> registry::Outcome<Json> { return body.json; }, o);
  if (!w.ok()) return Fail(req, w.error());
  if (!o.dry_run) ObserveRbac(t, ns, w->obj["metadata"].value("name", ""), &w->obj, w->revision);
  return Reply(req, 200, w->obj, "application/json", Concat(w->warnings, warnings));
}

http::Response KubernetesApi::Impl::PatchObject(const registry::Resource& t, const Identity* who, const http::Request& req,
                                                const std::map<std::string, std::string>& q, const std::string& ns,
                                                const std::string& name) {
  if (std::string e = CheckWriteOptions(q); !e.empty()) return Fail(req, BadRequest(e));
  auto it = req.find(boost::beast::http::field::content_type);
  std::string ct = it == req.end() ? "" : std::string(it->value());
  std::string base = ct.substr(0, ct.find(';'));
  if (base == "application/apply-patch+yaml") return ApplyObject(t, who, req, q, ns, name);
  if (base != "application/merge-patch+json" && base != "application/strategic-merge-patch+json" &&
      base != "application/json-patch+json") {
    return Fail(req, UnsupportedMediaType(ct));
  }
  if (!Param(q, "force").empty()) {
    return Fail(req, ApiError{422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
                              Json{{"kind", "PatchOptions"}, {"group", "meta.k8s.io"},
                                   {"causes", Json::array({{{"reason", "FieldValueForbidden"}, {"message", "Forbidden: may not be specified for non-apply patch"}, {"field", "force"}}})}}});
  }
  auto body = DecodeBody(req);
  if (!body.ok) return Fail(req, body.error);
  std::vector<std::string> warnings;
  if (auto e = CheckDuplicates(body, q, &warnings)) return Fail(req, *e);
  registry::WriteOptions o = WriteOptionsFor(t, req, q, who, ns);
  auto patch = [&](const registry::Stored& current) -> registry::Outcome<Json> {
    Json next;
    if (auto e = ApplyPatch(base, body.json, current.Rendered(), &next)) return *e;
    return next;
  };
  auto w = registry_->Update(t, ns, name, patch, o);
  if (!w.ok()) return Fail(req, w.error());
  if (!o.dry_run) ObserveRbac(t, ns, w->obj["metadata"].value("name", ""), &w->obj, w->revision);
  return Reply(req, 200, w->obj, "application/json", Concat(w->warnings, warnings));
}

// Server-side apply (PATCH application/apply-patch+yaml): creates the object when absent,
// otherwise merges the configuration into it with field ownership (managed_fields.h).
http::Response KubernetesApi::Impl::ApplyObject(const registry::Resource& t, const Identity* who, const http::Request& req,
                                                const std::map<std::string, std::string>& q, const std::string& ns,
                                                const std::string& name) {
  std::string manager = Param(q, "fieldManager");
  if (manager.empty()) {
    return Fail(req, ApiError{422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                              Json{{"kind", "PatchOptions"}, {"group", "meta.k8s.io"},
                                   {"causes", Json::array({{{"reason", "FieldValueRequired"}, {"message", "Required value: is required for apply patch"}, {"field", "fieldManager"}}})}}});
  }
  bool force = ParseBool(Param(q, "force"));
  auto body = DecodeBody(req, t.kind);
  if (!body.ok) return Fail(req, body.error);
  const Json& in = body.json;
  if (!in.is_object()) return Fail(req, BadRequest("the apply configuration must be a YAML or JSON object"));
  if (!in.contains("apiVersion") || !in.contains("kind")) {
    return Fail(req, BadRequest("the apply configuration must set apiVersion (" + t.ApiVersion() + ") and kind (" + t.kind + ")"));
  }
  registry::Prepared p = t.strategy->PrepareForWrite(in, ns, FieldValidation(q));
  if (!p.obj) return Fail(req, p.error);
  Json& config = *p.obj;
  std::string body_name = config["metadata"].value("name", "");
  if (!body_name.empty() && body_name != name) {
    return Fail(req, BadRequest("the name of the object (" + body_name + ") does not match the name on the URL (" + name + ")"));
  }
  config["metadata"]["name"] = name;
  FieldSet fields = ObjectFields(config, false);
  if (IsSecret(t) && (!in.contains("type") || !in["type"].is_string() || in["type"].get<std::string>().empty())) {
    fields.erase({"type"});  // defaulted, not configured: the applier does not own it
  }
  std::string rv = config["metadata"].value("resourceVersion", "");
  registry::WriteOptions o = WriteOptionsFor(t, req, q, who, ns);
  o.manager = manager;
  bool created = false;
  std::vector<ManagedEntry> applied;
  o.track = [&applied](const Json*, Json* obj) { (*obj)["metadata"]["managedFields"] = RenderManagedFields(applied); };
  auto merge = [&](const registry::Stored& cur) -> registry::Outcome<Json> {
    created = false;
    if (!rv.empty() && rv != std::to_string(cur.revision)) {
      return registry::ForResource(ModifiedConflict(t.Qualified(), name), t);
    }
    Json live = cur.obj;
    ApplyResult r = Apply(&live, ParseManagedFields(live["metadata"].value("managedFields", Json::array())), config, fields,
                          manager, force, Now());
    if (!r.conflicts.empty()) return ApplyConflictError(r.conflicts);
    r.obj["metadata"].erase("managedFields");
    applied = std::move(r.entries);
    return std::move(r.obj);
  };
  auto create = [&]() -> registry::Outcome<Json> {
    if (!rv.empty()) return registry::ForResource(NotFound(t.Qualified(), name), t);
    Json obj = config;
    obj["metadata"].erase("resourceVersion");
    obj["metadata"]["uid"] = crypto::RandomUuid();
    obj["metadata"]["creationTimestamp"] = Now();
    ApplyResult r = Apply(nullptr, {}, obj, fields, manager, force, Now());
    r.obj["metadata"]["managedFields"] = RenderManagedFields(r.entries);
    created = true;
    return std::move(r.obj);
  };
  o.operation = "update";
  auto w = registry_->Update(t, ns, name, merge, o, create);
  if (!w.ok()) return Fail(req, w.error());
  if (!o.dry_run) ObserveRbac(t, ns, w->obj["metadata"].value("name", ""), &w->obj, w->revision);
  if (created) return Reply(req, 201, w->obj, "application/json", p.warnings);
  return Reply(req, 200, w->obj, "application/json", Concat(w->warnings, p.warnings));
}

http::Response KubernetesApi::Impl::DeleteObject(const registry::Resource& t, const http::Request& req,
                                                 const std::map<std::string, std::string>& q, const std::string& ns,
                                                 const std::string& name) {
  Json opts = Json::object();
  if (!req.body().empty()) {
    auto body = DecodeBody(req);
    if (!body.ok) return Fail(req, body.error);
    if (!body.json.is_object()) return Fail(req, BadRequest("DeleteOptions must be a JSON object"));
    opts = body.json;
  }
  registry::WriteOptions o;
  o.dry_run = Param(q, "dryRun") == "All" ||
              (opts.contains("dryRun") && opts["dryRun"].is_array() && !opts["dryRun"].empty() && opts["dryRun"][0] == "All");
  o.manager = Manager(req, q);
  registry::Preconditions pre;
  Json p = opts.value("preconditions", Json::object());
  if (p.is_object() && p.contains("uid") && p["uid"].is_string()) pre.uid = p["uid"].get<std::string>();
  if (p.is_object() && p.contains("resourceVersion") && p["resourceVersion"].is_string()) {
    pre.resource_version = p["resourceVersion"].get<std::string>();
  }
  auto d = registry_->Delete(t, ns, name, pre, o);
  if (!d.ok()) return Fail(req, d.error());
  if (!o.dry_run) ObserveRbac(t, ns, name, nullptr, d->revision);
  Json ok = {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", Json::object()}, {"status", "Success"},
             {"details", {{"name", name}, {"kind", t.plural}, {"uid", d->obj["metadata"].value("uid", "")}}}};
  if (!t.group.empty()) ok["details"]["group"] = t.group;
  return Reply(req, 200, ok);
}

}  // namespace sigil::kube
