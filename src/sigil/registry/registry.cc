#include "sigil/registry/registry.h"

#include <charconv>

#include "sigil/base/encoding.h"
#include "sigil/base/logging.h"
#include "sigil/base/status_http.h"
#include "sigil/base/secret_bytes.h"
#include "sigil/crypto/random.h"

namespace sigil::registry {
namespace {

// Orders an ObjectMeta's fields as Go's struct does, so output reads like kube-apiserver's.
Json OrderedMeta(const Json& m) {
  static const char* kOrder[] = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
                                 "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                                 "labels", "annotations", "ownerReferences", "finalizers", "managedFields"};
  Json out = Json::object();
  for (const char* k : kOrder) {
    if (!m.contains(k) || m[k].is_null()) continue;
    // Every ObjectMeta field is omitempty: an emptied map, list or string is left out, as
    // kube-apiserver leaves it out (`kubectl label s team-` leaves no "labels": {}).
    const Json& v = m[k];
    bool empty = ((v.is_object() || v.is_array()) && v.empty()) || (v.is_string() && v.get_ref<const std::string&>().empty());
    if (empty && std::string_view(k) != "name") continue;
    out[k] = v;
  }
  return out;
}

std::string GenerateNameSuffix() {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  for (int i = 0; i < 5; ++i) out += kAlphabet[crypto::RandomUint64() % (sizeof(kAlphabet) - 1)];
  return out;
}

std::map<std::string, std::string> StringMap(const Json& obj) {
  std::map<std::string, std::string> m;
  if (!obj.is_object()) return m;
  for (const auto& [k, v] : obj.items()) {
    if (v.is_string()) m[k] = v.get<std::string>();
  }
  return m;
}

ApiError ListTooOld() { return ApiError{410, "Expired", "The resourceVersion for the provided list is too old.", nullptr}; }

class StoreWatch : public WatchHandle {
 public:
  explicit StoreWatch(std::unique_ptr<storage::WatchHandle> h) : h_(std::move(h)) {}

 private:
  std::unique_ptr<storage::WatchHandle> h_;
};

}  // namespace

ApiError FromStatus(const Status& s) {
  HttpError e = HttpErrorFor(s.code());
  switch (s.code()) {
    case StatusCode::kDataLoss:
      log::Error("stored object failed authentication", {{"error", s.message()}});
      return InternalError("stored object is corrupt (see server log)");
    case StatusCode::kInternal:
    case StatusCode::kUnknown:
    case StatusCode::kCancelled: return InternalError(s.message());
    default: return FromStatusMessage(e.status, std::string(e.reason), s.message());
  }
}

Json WithResourceVersion(Json obj, int64_t revision) {
  obj["metadata"]["resourceVersion"] = std::to_string(revision);
  obj["metadata"] = OrderedMeta(obj["metadata"]);
  return obj;
}

SecretBytes Serialize(const Json& obj) {
  std::string text = obj.dump();
  SecretBytes out(text);
  internal::SecureZero(text.data(), text.size());
  return out;
}

Json StoredForm(Json obj) {
  obj["metadata"].erase("resourceVersion");
  obj["metadata"] = OrderedMeta(obj["metadata"]);
  // The omitempty collections of the served kinds: a Secret's data, a binding's subjects.
  for (const char* k : {"data", "subjects"}) {
    if (auto it = obj.find(k); it != obj.end() && (it->is_object() || it->is_array()) && it->empty()) obj.erase(it);
  }
  return obj;
}

Json Stored::Rendered() const { return WithResourceVersion(obj, revision); }

Registry::Registry(store::ObjectStore* store, Clock* clock, Options options)
    : store_(store), clock_(clock), history_(store), options_(options) {}

std::string Registry::Now() const { return FormatRfc3339(clock_->Now()); }

int64_t Registry::CurrentRevision() { return store_->CurrentRevision(); }

Outcome<Json> Registry::Parse(const store::Object& o) {
  Json j = Json::parse(o.doc.view(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("metadata") || !j["metadata"].is_object()) {
    // The barrier authenticated it, so sigil wrote it: a bug or a foreign writer, not the client.
    log::Error("stored object is not a valid document", {{"key", o.key}});
    return InternalError("stored object is corrupt (see server log)");
  }
  return j;
}

Outcome<Stored> Registry::Get(const Resource& r, const std::string& ns, const std::string& name) {
  auto o = store_->Get(r.Key(ns, name));
  if (!o.ok()) return FromStatus(o.error());
  if (!o->has_value()) return ForResource(NotFound(r.Qualified(), name), r);
  Outcome<Json> j = Parse(**o);
  if (!j.ok()) return j.error();
  return Stored{std::move(*j), (*o)->revision};
}

Outcome<Stored> Registry::Namespace(const std::string& ns) {
  auto o = store_->Get(Namespaces().Key("", ns));
  if (!o.ok()) return FromStatus(o.error());
  if (!o->has_value()) return NotFound("namespaces", ns);
  Outcome<Json> j = Parse(**o);
  if (!j.ok()) return j.error();
  return Stored{std::move(*j), (*o)->revision};
}

bool Matches(const Resource& r, const ListOptions& o, const Json& obj) {
  if (!o.labels.Matches(StringMap(obj["metadata"].value("labels", Json::object())))) return false;
  return o.fields.Matches([&](const std::string& f) { return r.strategy->FieldValue(obj, f); });
}

Outcome<ListPage> Registry::List(const Resource& r, const std::string& ns, const ListOptions& o) {
  std::string prefix = r.Prefix(ns);
  // continue token: base64 of {"v":"meta.k8s.io/v1","rv":R,"start":"<last key returned>"}.
  std::string start_after;
  int64_t list_rv = 0;
  if (!o.continue_token.empty()) {
    auto raw = Base64Decode(o.continue_token);
    Json tok = raw.ok() && Json::accept(*raw) ? Json::parse(*raw) : Json();
    if (!tok.is_object() || !tok.contains("start") || !tok["start"].is_string() || !tok["start"].get<std::string>().starts_with(prefix)) {
      return BadRequest("continue key is not valid: the token is malformed or belongs to another list");
    }
    start_after = tok["start"].get<std::string>();
    list_rv = tok.value("rv", int64_t{0});
  }
  ListPage out;
  std::string last_key;
  bool more = false;
  for (;;) {
    size_t chunk = o.limit == 0 ? 0 : std::max<size_t>(o.limit * 2, 64);
    auto page = store_->List(prefix, start_after, chunk);
    if (!page.ok()) return FromStatus(page.error());
    if (list_rv == 0) list_rv = page->revision;
    if (o.exact_revision != 0 && page->revision != o.exact_revision) return ListTooOld();
    bool stopped_early = false;
    for (size_t i = 0; i < page->items.size(); ++i) {
      store::Object& so = page->items[i];
      Outcome<Json> j = Parse(so);
      if (!j.ok()) return j.error();
      Json obj = WithResourceVersion(std::move(*j), so.revision);
      start_after = so.key;
      if (!Matches(r, o, obj)) continue;
      out.items.push_back(std::move(obj));
      last_key = so.key;
      if (o.limit > 0 && out.items.size() == o.limit) {
        more = i + 1 < page->items.size() || page->more;
        stopped_early = true;
        break;
      }
    }
    if (stopped_early || !page->more) break;
  }
  if (more) out.continue_token = Base64Encode(Json{{"v", "meta.k8s.io/v1"}, {"rv", list_rv}, {"start", last_key}}.dump());
  out.revision = list_rv;
  return out;
}

Result<int> Registry::HistoryVersions(const std::string& ns) {
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(Namespaces().Key("", ns)));
  if (o) {
    Json n = Json::parse(o->doc.view(), nullptr, false);
    if (n.is_object() && n.contains("metadata") && n["metadata"].is_object()) {
      Json ann = n["metadata"].value("annotations", Json::object());
      std::string v = ann.is_object() ? ann.value(kHistoryAnnotation, "") : "";
      int keep = -1;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), keep);
      if (!v.empty() && ec == std::errc() && p == v.data() + v.size() && keep >= 0 && keep <= store::History::kMaxKeep) {
        return keep;
      }
    }
  }
  return options_.history_versions;
}

Result<int64_t> Registry::RecordVersion(const std::string& ns, const std::string& name, const SecretBytes* doc,
                                        const std::string& operation, const std::string& manager, store::SideEffects* also) {
  SIGIL_ASSIGN_OR_RETURN(int keep, HistoryVersions(ns));
  return history_.Record(Secrets().Key(ns, name), doc, {operation, Now(), manager}, keep, also);
}

Outcome<Written> Registry::CreateStored(const Resource& r, const std::string& ns, Json obj, const WriteOptions& o) {
  std::string name = obj["metadata"].value("name", "");
  obj = StoredForm(std::move(obj));
  if (o.dry_run) {
    if (r.namespaced) {
      Outcome<Stored> n = Namespace(ns);
      if (!n.ok()) return n.error();
    }
    return Written{WithResourceVersion(std::move(obj), store_->CurrentRevision()), store_->CurrentRevision(), {}};
  }
  SecretBytes doc = Serialize(obj);
  for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
    store::SideEffects also;
    if (r.namespaced) {
      // The namespace must exist, not be terminating, and still be at the revision read when
      // this commits: a namespace deleted meanwhile makes the create fail, not an orphan.
      Outcome<Stored> n = Namespace(ns);
      if (!n.ok()) return n.error();
      if (n->obj.value("status", Json::object()).value("phase", "") == "Terminating") {
        ApiError e{403, "Forbidden",
                   r.Qualified() + " " + Json(name).dump() + " is forbidden: unable to create new content in namespace " + ns +
                       " because it is being terminated",
                   Json{{"name", name}, {"kind", r.plural},
                        {"causes", Json::array({{{"reason", "NamespaceTerminating"},
                                                 {"message", "namespace " + ns + " is terminating"},
                                                 {"field", "metadata.namespace"}}})}}};
        return ForResource(std::move(e), r);
      }
      also.compares.push_back({Namespaces().Key("", ns), n->revision});
    }
    int64_t version = 0;
    if (r.strategy->KeepsHistory()) {
      Result<int64_t> v = RecordVersion(ns, name, &doc, o.operation, o.manager, &also);
      if (!v.ok()) return FromStatus(v.error());
      version = *v;
    }
    auto rev = store_->Create(r.Key(ns, name), doc, also);
    if (rev.ok()) return Written{WithResourceVersion(std::move(obj), *rev), *rev, {}, {}, version};
    if (rev.error().code() == StatusCode::kAlreadyExists) return ForResource(AlreadyExists(r.Qualified(), name), r);
    if (rev.error().code() != StatusCode::kAborted) return FromStatus(rev.error());
    // A side compare failed (the namespace changed, or a concurrent delete's tombstone): again.
  }
  return ForResource(ModifiedConflict(r.Qualified(), name), r);
}

Outcome<Written> Registry::Create(const Resource& r, const std::string& ns, const Json& in, const WriteOptions& o) {
  if (r.namespaced) {
    Outcome<Stored> n = Namespace(ns);
    if (!n.ok()) return n.error();
  }
  Prepared p = r.strategy->PrepareForWrite(in, ns, o.field_validation);
  if (!p.obj) return p.error;
  Json& obj = *p.obj;
  Json& meta = obj["metadata"];
  if (meta.value("name", "").empty() && !meta.value("generateName", "").empty()) {
    meta["name"] = meta["generateName"].get<std::string>() + GenerateNameSuffix();
  }
  meta.erase("resourceVersion");
  meta["uid"] = crypto::RandomUuid();
  meta["creationTimestamp"] = Now();
  meta.erase("managedFields");
  std::string name = meta.value("name", "");
  FieldErrors errs = r.strategy->Validate(obj);
  if (!errs.empty()) return InvalidFor(r, name, errs);
  if (o.admit) {
    if (auto e = o.admit(obj)) return *e;
  }
  if (o.track) o.track(nullptr, &obj);
  Outcome<Written> w = CreateStored(r, ns, std::move(obj), o);
  if (w.ok()) w->warnings = std::move(p.warnings);
  return w;
}

std::optional<Outcome<Written>> Registry::Replace(const Resource& r, const std::string& ns, const std::string& name,
                                                  const Json& next, const Stored& current, const WriteOptions& o) {
  Prepared p = r.strategy->PrepareForWrite(next, ns, o.field_validation);
  if (!p.obj) return Outcome<Written>(p.error);
  const Json& old = current.obj;
  Json& obj = *p.obj;
  std::string body_name = obj["metadata"].value("name", "");
  if (!body_name.empty() && body_name != name) {
    return Outcome<Written>(BadRequest("the name of the object (" + body_name + ") does not match the name on the URL (" + name + ")"));
  }
  std::string rv = obj["metadata"].value("resourceVersion", "");
  if (!rv.empty() && rv != std::to_string(current.revision)) {
    return Outcome<Written>(ForResource(ModifiedConflict(r.Qualified(), name), r));
  }
  // A uid in the body is a precondition, as in kube-apiserver: a copy of a deleted object must
  // not overwrite the object re-created under its name.
  std::string old_uid = old["metadata"].value("uid", "");
  if (std::string uid = obj["metadata"].value("uid", ""); !uid.empty() && uid != old_uid) {
    return Outcome<Written>(ForResource(
        Conflict(r.Qualified(), name, "Precondition failed: UID in precondition: " + uid + ", UID in object meta: " + old_uid), r));
  }
  obj["metadata"]["name"] = name;
  obj["metadata"]["uid"] = old["metadata"].value("uid", "");
  obj["metadata"]["creationTimestamp"] = old["metadata"].value("creationTimestamp", "");
  FieldErrors errs = r.strategy->ValidateUpdate(old, obj);
  for (FieldError& e : r.strategy->Validate(obj)) errs.push_back(std::move(e));
  if (!errs.empty()) return Outcome<Written>(InvalidFor(r, name, errs));
  if (o.admit) {
    if (auto e = o.admit(obj)) return Outcome<Written>(*e);
  }
  if (o.track) o.track(&old, &obj);
  obj = StoredForm(std::move(obj));
  if (o.dry_run) return Outcome<Written>(Written{WithResourceVersion(std::move(obj), current.revision), current.revision, p.warnings});
  SecretBytes doc = Serialize(obj);
  store::SideEffects also;
  int64_t version = 0;
  if (r.strategy->KeepsHistory()) {
    Result<int64_t> v = RecordVersion(ns, name, &doc, o.operation, o.manager, &also);
    if (!v.ok()) return Outcome<Written>(FromStatus(v.error()));
    version = *v;
  }
  auto rev = store_->Update(r.Key(ns, name), doc, current.revision, also);
  if (!rev.ok()) {
    if (rev.error().code() == StatusCode::kNotFound) return Outcome<Written>(ForResource(NotFound(r.Qualified(), name), r));
    if (rev.error().code() == StatusCode::kAborted) {
      if (!rv.empty()) return Outcome<Written>(ForResource(ModifiedConflict(r.Qualified(), name), r));
      return std::nullopt;  // unconditional: the caller retries on the new version
    }
    return Outcome<Written>(FromStatus(rev.error()));
  }
  return Outcome<Written>(Written{WithResourceVersion(std::move(obj), *rev), *rev, p.warnings, {}, version});
}

Outcome<Written> Registry::Update(const Resource& r, const std::string& ns, const std::string& name, const Mutation& mutate,
                                  const WriteOptions& o, const std::function<Outcome<Json>()>& on_missing) {
  for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
    auto so = store_->Get(r.Key(ns, name));
    if (!so.ok()) return FromStatus(so.error());
    if (!so->has_value()) {
      if (!on_missing) return ForResource(NotFound(r.Qualified(), name), r);
      Outcome<Json> fresh = on_missing();
      if (!fresh.ok()) return fresh.error();
      if (r.namespaced) {
        Outcome<Stored> n = Namespace(ns);
        if (!n.ok()) return n.error();
      }
      Json& obj = *fresh;
      FieldErrors errs = r.strategy->Validate(obj);
      if (!errs.empty()) return InvalidFor(r, name, errs);
      if (o.admit) {
        if (auto e = o.admit(obj)) return *e;
      }
      Outcome<Written> w = CreateStored(r, ns, std::move(obj), o);
      if (!w.ok() && w.error().reason == "AlreadyExists") continue;  // raced with a create: update it
      return w;
    }
    Outcome<Json> j = Parse(**so);
    if (!j.ok()) return j.error();
    Stored current{std::move(*j), (*so)->revision};
    Outcome<Json> next = mutate(current);
    if (!next.ok()) return next.error();
    if (auto w = Replace(r, ns, name, *next, current, o)) return std::move(*w);
  }
  return ForResource(ModifiedConflict(r.Qualified(), name), r);
}

Outcome<Stored> Registry::Delete(const Resource& r, const std::string& ns, const std::string& name, const Preconditions& p,
                                 const WriteOptions& o) {
  for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
    Outcome<Stored> cur = Get(r, ns, name);
    if (!cur.ok()) return cur.error();
    std::string uid = cur->obj["metadata"].value("uid", "");
    if (p.uid && *p.uid != uid) {
      return Conflict(r.Qualified(), name, "Precondition failed: UID in precondition: " + *p.uid + ", UID in object meta: " + uid);
    }
    if (p.resource_version && *p.resource_version != std::to_string(cur->revision)) {
      return Conflict(r.Qualified(), name, "Precondition failed: ResourceVersion in precondition: " + *p.resource_version +
                                               ", ResourceVersion in object meta: " + std::to_string(cur->revision));
    }
    if (o.dry_run) return cur;
    store::SideEffects also;
    if (r.strategy->KeepsHistory()) {
      if (Status st = RecordVersion(ns, name, nullptr, "delete", o.manager, &also).status(); !st.ok()) return FromStatus(st);
    }
    auto rev = store_->Delete(r.Key(ns, name), cur->revision, also);
    if (rev.ok()) {
      cur->revision = *rev;
      return cur;
    }
    if (rev.error().code() == StatusCode::kNotFound) return ForResource(NotFound(r.Qualified(), name), r);
    if (rev.error().code() != StatusCode::kAborted) return FromStatus(rev.error());
  }
  return ForResource(ModifiedConflict(r.Qualified(), name), r);
}

Outcome<ListPage> Registry::DeleteCollection(const Resource& r, const std::string& ns, const ListOptions& sel, const WriteOptions& o) {
  auto l = store_->List(r.Prefix(ns), "", 0);
  if (!l.ok()) return FromStatus(l.error());
  ListPage out;
  out.revision = l->revision;
  for (store::Object& so : l->items) {
    Outcome<Json> j = Parse(so);
    if (!j.ok()) return j.error();
    Json obj = WithResourceVersion(std::move(*j), so.revision);
    if (!Matches(r, sel, obj)) continue;
    std::string name = obj["metadata"].value("name", "");
    int64_t deleted_at = 0;
    if (!o.dry_run) {
      int64_t rev = so.revision;
      bool gone = false;
      for (int attempt = 0;; ++attempt) {
        store::SideEffects also;
        if (r.strategy->KeepsHistory()) {
          if (Status st = RecordVersion(ns.empty() ? obj["metadata"].value("namespace", "") : ns, name, nullptr, "delete", o.manager,
                                        &also).status();
              !st.ok()) {
            return FromStatus(st);
          }
        }
        auto d = store_->Delete(so.key, rev, also);
        if (d.ok()) {
          deleted_at = *d;
          break;
        }
        if (d.error().code() == StatusCode::kNotFound) {
          gone = true;  // deleted meanwhile by someone else
          break;
        }
        if (d.error().code() != StatusCode::kAborted || attempt + 1 >= kMaxUpdateRetries) return FromStatus(d.error());
        auto now = store_->Get(so.key);  // changed meanwhile: delete what is there now
        if (!now.ok()) return FromStatus(now.error());
        if (!now->has_value()) {
          gone = true;
          break;
        }
        rev = (*now)->revision;
      }
      if (gone) continue;
    }
    out.items.push_back(std::move(obj));
    out.deletion_revisions.push_back(deleted_at);
  }
  return out;
}

Result<std::unique_ptr<WatchHandle>> Registry::Watch(const Resource& r, const std::string& ns, int64_t after_revision,
                                                     WatchCallback cb) {
  auto h = store_->Watch(r.Prefix(ns), after_revision,
                         [cb = std::move(cb)](const std::vector<store::ObjectEvent>& events, const Status& error) {
                           std::vector<WatchEvent> out;
                           out.reserve(events.size());
                           Status err = error;
                           for (const store::ObjectEvent& e : events) {
                             WatchEvent w;
                             w.revision = e.revision;
                             auto decode = [&](const store::Object& o) -> std::optional<Json> {
                               Outcome<Json> j = Parse(o);
                               if (!j.ok()) {
                                 err = DataLossError("a stored object is corrupt");
                                 return std::nullopt;
                               }
                               return WithResourceVersion(std::move(*j), e.revision);
                             };
                             if (e.object) w.now = decode(*e.object);
                             if (e.prev) w.before = decode(*e.prev);
                             if (!err.ok()) break;
                             out.push_back(std::move(w));
                           }
                           cb(out, err);
                         });
  if (!h.ok()) return h.error();
  return std::unique_ptr<WatchHandle>(std::make_unique<StoreWatch>(std::move(h).value()));
}

}  // namespace sigil::registry
