// The namespace operations of Registry (registry.h): create, update of labels and annotations,
// and the two-step delete that cannot leave orphans.
#include <charconv>

#include "sigil/base/secret_bytes.h"
#include "sigil/crypto/random.h"
#include "sigil/registry/registry.h"

namespace sigil::registry {
namespace {

bool IsDefaultNamespace(const std::string& ns) { return ns == "default" || ns == "kube-system" || ns == "kube-public"; }

std::string Key(const std::string& name) { return Namespaces().Key("", name); }

}  // namespace

// The service account every namespace has, as kube-controller-manager's service-account
// controller makes it.
Json Registry::DefaultServiceAccount(const std::string& ns) {
  return Json{{"kind", "ServiceAccount"}, {"apiVersion", "v1"},
              {"metadata", {{"name", "default"}, {"namespace", ns}, {"uid", crypto::RandomUuid()}, {"creationTimestamp", Now()}}}};
}

Json Registry::NewNamespace(const std::string& name, const Json& labels, const Json& annotations) {
  Json obj{{"kind", "Namespace"}, {"apiVersion", "v1"},
           {"metadata", {{"name", name}, {"uid", crypto::RandomUuid()}, {"creationTimestamp", Now()},
                         {"labels", {{"kubernetes.io/metadata.name", name}}}}},
           {"spec", {{"finalizers", {"kubernetes"}}}}, {"status", {{"phase", "Active"}}}};
  if (labels.is_object()) {
    for (const auto& [k, v] : labels.items()) obj["metadata"]["labels"][k] = v;
    obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
  }
  if (annotations.is_object()) obj["metadata"]["annotations"] = annotations;
  return obj;
}

FieldErrors Registry::ValidateNamespace(const Json& obj) {
  FieldErrors errs = Namespaces().strategy->Validate(obj);
  Json ann = obj["metadata"].value("annotations", Json::object());
  std::string v = ann.is_object() ? ann.value(kHistoryAnnotation, "") : "";
  int keep = -1;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), keep);
  if (!v.empty() && (ec != std::errc() || p != v.data() + v.size() || keep < 0 || keep > store::History::kMaxKeep)) {
    errs.push_back({FieldError::Type::kInvalid, std::string("metadata.annotations[") + kHistoryAnnotation + "]", v,
                    "must be an integer from 0 to " + std::to_string(store::History::kMaxKeep)});
  }
  return errs;
}

Outcome<Written> Registry::CreateNamespace(const Json& obj, bool dry_run) {
  std::string name = obj["metadata"].value("name", "");
  FieldErrors errs = ValidateNamespace(obj);
  if (!errs.empty()) return Invalid("Namespace", name, errs);
  if (dry_run) return Written{WithResourceVersion(obj, store_->CurrentRevision()), store_->CurrentRevision(), {}};
  // The namespace and its default service account in one commit.
  store::SideEffects also;
  also.puts.emplace_back(ServiceAccounts().Key(name, "default"), Serialize(DefaultServiceAccount(name)));
  auto rev = store_->Create(Key(name), Serialize(obj), also);
  if (!rev.ok()) {
    if (rev.error().code() == StatusCode::kAlreadyExists) return AlreadyExists("namespaces", name);
    return FromStatus(rev.error());
  }
  return Written{WithResourceVersion(obj, *rev), *rev, {}};
}

Outcome<Written> Registry::UpdateNamespace(const std::string& name, const Mutation& mutate, bool dry_run) {
  for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
    Outcome<Stored> cur = Namespace(name);
    if (!cur.ok()) return cur.error();
    Outcome<Json> next = mutate(*cur);
    if (!next.ok()) return next.error();
    Json& obj = *next;
    obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
    FieldErrors errs = ValidateNamespace(obj);
    if (!errs.empty()) return Invalid("Namespace", name, errs);
    obj["metadata"].erase("resourceVersion");
    if (dry_run) return Written{WithResourceVersion(std::move(obj), cur->revision), cur->revision, {}};
    auto rev = store_->Update(Key(name), Serialize(StoredForm(obj)), cur->revision);
    if (rev.ok()) return Written{WithResourceVersion(std::move(obj), *rev), *rev, {}};
    if (rev.error().code() == StatusCode::kNotFound) return NotFound("namespaces", name);
    if (rev.error().code() != StatusCode::kAborted) return FromStatus(rev.error());
  }
  return ModifiedConflict("namespaces", name);
}

Outcome<Written> Registry::DeleteNamespace(const std::string& name) {
  if (IsDefaultNamespace(name)) {
    return ApiError{403, "Forbidden", "namespaces \"" + name + "\" is forbidden: this namespace may not be deleted",
                    Json{{"name", name}, {"kind", "namespaces"}}};
  }
  for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
    Outcome<Stored> cur = Namespace(name);
    if (!cur.ok()) return cur.error();
    Json obj = cur->obj;
    int64_t revision = cur->revision;
    // Step 1: Terminating. From this revision on no create in the namespace can commit: a
    // create compares the namespace's revision, and one that reads it now is refused.
    if (obj.value("status", Json::object()).value("phase", "") != "Terminating") {
      obj["status"]["phase"] = "Terminating";
      obj["metadata"]["deletionTimestamp"] = Now();
      auto rev = store_->Update(Key(name), Serialize(StoredForm(obj)), revision);
      if (!rev.ok()) {
        if (rev.error().code() == StatusCode::kNotFound) return NotFound("namespaces", name);
        if (rev.error().code() == StatusCode::kAborted) continue;
        return FromStatus(rev.error());
      }
      revision = *rev;
    }
    // Step 2: the namespace and everything in it, in one transaction that compares each object
    // it deletes, so a write that slipped in between (an update adding a history version, a
    // delete) makes it start over rather than leave something behind.
    store::SideEffects cascade;
    for (const Resource* r : NamespacedResources()) {
      auto items = store_->List(r->Prefix(name), "", 0);
      if (!items.ok()) return FromStatus(items.error());
      for (const store::Object& o : items->items) {
        cascade.compares.push_back({o.key, o.revision});
        cascade.deletes.push_back(o.key);
      }
    }
    if (Status st = history_.PurgeUnder(Secrets().Prefix(name), &cascade); !st.ok()) return FromStatus(st);
    auto r = store_->Delete(Key(name), revision, cascade);
    if (r.ok()) {
      Written w{WithResourceVersion(std::move(obj), *r), *r, {}, {}};
      for (const std::string& k : cascade.deletes) {
        if (k.starts_with("/registry/")) w.deleted_keys.push_back(k);
      }
      return w;
    }
    if (r.error().code() == StatusCode::kNotFound) return NotFound("namespaces", name);
    if (r.error().code() != StatusCode::kAborted) return FromStatus(r.error());
  }
  return ModifiedConflict("namespaces", name);
}

Status Registry::EnsureDefaultNamespaces() {
  for (const char* ns : {"default", "kube-system", "kube-public"}) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> existing, store_->Get(Key(ns)));
    if (existing) continue;
    auto r = store_->Create(Key(ns), Serialize(NewNamespace(ns, nullptr, nullptr)));
    if (!r.ok() && r.error().code() != StatusCode::kAlreadyExists) return r.error();
  }
  // Every namespace has its default service account (stores from before service accounts
  // existed, and one deleted by hand, get it back at start, as the controller would restore it).
  Outcome<std::vector<std::string>> names = NamespaceNames();
  if (!names.ok()) return sigil::InternalError(names.error().message);
  for (const std::string& ns : *names) {
    std::string key = ServiceAccounts().Key(ns, "default");
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> sa, store_->Get(key));
    if (sa) continue;
    auto r = store_->Create(key, Serialize(DefaultServiceAccount(ns)));
    if (!r.ok() && r.error().code() != StatusCode::kAlreadyExists) return r.error();
  }
  return OkStatus();
}

}  // namespace sigil::registry
