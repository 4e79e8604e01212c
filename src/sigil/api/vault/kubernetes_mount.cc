#include "sigil/api/vault/kubernetes_mount.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <vector>

#include "sigil/base/encoding.h"
#include "sigil/base/status_http.h"
#include "sigil/crypto/random.h"
#include "sigil/registry/validation.h"

namespace sigil::vault {
namespace {

using engines::Operation;
using engines::Response;
using Json = nlohmann::ordered_json;

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// What the Vault face answers for a Kubernetes error met while serving the mount.
Response FromApiError(const registry::ApiError& e) {
  if (e.code == 403) return Response::Error(403, "permission denied: " + e.message);
  if (e.code >= 500) return Response::Error(e.code, e.message);
  return Response::Error(400, e.message);
}

// The Kubernetes face's failure body (metav1.Status), for the audit event of the nested check.
class KubeErrors final : public core::ErrorRenderer {
 public:
  core::Reply Render(const Status& s, const core::RequestInfo&) const override {
    HttpError h = HttpErrorFor(s.code());
    core::Reply r;
    r.status = h.status;
    std::string body = registry::FromStatusMessage(h.status, std::string(h.reason), s.message()).ToJson().dump();
    r.body.assign(body.begin(), body.end());
    return r;
  }
};

// One KV version of a Secret: a history record that holds a Secret, or held one (destroyed).
struct KvVersion {
  int64_t n = 0;
  std::string created, deleted;  // RFC 3339; deleted "" when not
  bool destroyed = false;
  const registry::SecretVersion* record = nullptr;
};

// The KV view of a Secret's history (registry::Registry::Versions).
struct KvView {
  std::vector<KvVersion> versions;  // oldest first
  std::optional<int64_t> standing;  // the version the Secret stands at, when it exists
  std::string first, last;          // times of the oldest and newest records
  int keep = 0;

  explicit KvView(const registry::Registry::Versions& h) : standing(h.current), keep(h.keep) {
    const std::vector<registry::SecretVersion>& rs = h.versions;
    if (!rs.empty()) {
      first = rs.front().time;
      last = rs.back().time;
    }
    for (const registry::SecretVersion& r : rs) {
      if (r.deleted) continue;  // a tombstone
      versions.push_back(KvVersion{r.version, r.time, r.deleted_at, r.destroyed, &r});
    }
    // A Secret that is gone (its newest record a tombstone): its newest KV version reads as
    // deleted then. (Once the Secret is back, by a write or an undelete, that version is an
    // older version like any other.)
    if (!rs.empty() && rs.back().deleted && !versions.empty() && versions.back().deleted.empty()) {
      versions.back().deleted = rs.back().time;
    }
  }
  int64_t current() const { return versions.empty() ? 0 : versions.back().n; }
  const KvVersion* Find(int64_t n) const {
    for (const KvVersion& v : versions) {
      if (v.n == n) return &v;
    }
    return nullptr;
  }
};

Json VersionMetadata(const KvVersion& v) {
  return Json{{"created_time", v.created}, {"custom_metadata", nullptr}, {"deletion_time", v.deleted},
              {"destroyed", v.destroyed}, {"version", v.n}};
}

// A Secret's data (base64 values) as KV data (shown values).
Result<Json> ShownData(const Json& secret) {
  Json out = Json::object();
  auto it = secret.find("data");
  if (it == secret.end() || !it->is_object()) return out;
  for (auto& [k, v] : it->items()) {
    if (!v.is_string()) return DataLossError("a stored Secret's value is not a string");
    SIGIL_ASSIGN_OR_RETURN(std::string bytes, Base64Decode(v.get_ref<const std::string&>()));
    out[k] = ShowValue(bytes);
    internal::SecureZero(bytes.data(), bytes.size());
  }
  return out;
}

// The Secret <name> in <namespace> named by what follows an operation prefix.
struct SecretRef {
  std::string ns, name;
};
std::optional<SecretRef> ParseRef(std::string_view rest) {
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos || rest.find('/', slash + 1) != std::string_view::npos) return std::nullopt;
  SecretRef ref{std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1))};
  if (!registry::IsDns1123Label(ref.ns).empty() || !registry::IsDns1123Subdomain(ref.name).empty()) return std::nullopt;
  return ref;
}

class KubernetesMount final : public engines::SecretsEngine {
 public:
  explicit KubernetesMount(const KubernetesMountContext& c) : c_(c) {}

  Result<std::optional<bool>> Exists(const engines::Request& r) override {
    std::string_view p = r.path;
    if (!p.starts_with("data/")) return std::optional<bool>();
    std::optional<SecretRef> ref = ParseRef(p.substr(5));
    if (!ref) return std::optional<bool>();
    registry::Outcome<registry::Stored> s = c_.registry->Get(registry::Secrets(), ref->ns, ref->name);
    if (!s.ok() && s.error().code != 404) return InternalError(s.error().message);
    return std::optional<bool>(s.ok());
  }

  Result<Response> Handle(const engines::Request& r) override {
    std::string_view p = r.path;
    if (p == "config") {
      if (r.op == Operation::kRead) {
        return Response::Ok(Json{{"cas_required", false}, {"delete_version_after", "0s"}, {"max_versions", 0}});
      }
      return Response::Error(400, kSettingsRefused);
    }
    if (r.op == Operation::kList) {
      if (p == "metadata" || p == "metadata/") return ListNamespaces();
      if (p.starts_with("metadata/")) {
        std::string ns(p.substr(9));
        if (ns.ends_with("/")) ns.pop_back();
        if (ns.find('/') != std::string::npos || !registry::IsDns1123Label(ns).empty()) return Response::NotFound();
        return ListSecrets(ns);
      }
      return Response::Error(405, "unsupported operation");
    }
    for (std::string_view prefix : {"data/", "metadata/", "delete/", "undelete/", "destroy/", "subkeys/"}) {
      if (!p.starts_with(prefix)) continue;
      std::optional<SecretRef> ref = ParseRef(p.substr(prefix.size()));
      if (!ref) {
        if (r.op == Operation::kRead) return Response::NotFound();
        return Response::Error(400, "a Secret is kubernetes/" + std::string(prefix) +
                                        "<namespace>/<name>, with a valid namespace and Secret name");
      }
      if (prefix == "data/") return Data(r, *ref);
      if (prefix == "metadata/") return Metadata(r, *ref);
      if (prefix == "subkeys/") return Subkeys(r, *ref);
      if (r.op != Operation::kCreate && r.op != Operation::kUpdate) return Response::Error(405, "unsupported operation");
      return Versions(r, *ref, prefix);
    }
    return Response::Error(404, "no handler for route \"" + std::string(p.substr(0, 256)) + "\". route entry not found.");
  }

 private:
  static constexpr const char* kSettingsRefused =
      "the kubernetes/ mount keeps a Secret's versions as its namespace says (annotation sigil.dev/history-versions, "
      "else the server's history.versions); max_versions, cas_required, delete_version_after and custom_metadata "
      "cannot be set here";

  static authz::Attributes SecretAttributes(std::string verb, const SecretRef& ref, std::string subresource = "") {
    authz::Attributes a;
    a.verb = std::move(verb);
    a.resource = "secrets";
    a.subresource = std::move(subresource);
    a.namespace_ = ref.ns;
    a.name = ref.name;
    return a;
  }

  bool Allowed(const authz::Attributes& a) const { return c_.rbac != nullptr && c_.who != nullptr && c_.rbac->Allows(*c_.who, a); }

  Response Refusal(const authz::Attributes& a) const {
    return Response::Error(403, "permission denied: " + core::Pipeline::DenialMessage(a, c_.who ? c_.who->user : "system:anonymous"));
  }

  // Runs `body` as the Kubernetes face would run a request with attributes `a`: RBAC decides,
  // the access is audited as a Kubernetes request (no bodies: the Vault face's own event holds
  // the request's, with its values hashed), then `body` runs.
  Result<Response> Checked(const authz::Attributes& a, bool mutating, const std::function<Result<Response>()>& body) {
    if (c_.kube_pipeline == nullptr || c_.who == nullptr) return Refusal(a);
    core::RequestInfo info;
    info.face = core::Face::kKubernetes;
    info.method = "";
    info.uri = c_.uri;
    info.user_agent = c_.user_agent;
    info.remote = c_.remote;
    info.caller = c_.who;
    info.subject = c_.who;
    info.kube = a;
    info.mutating = mutating;
    info.sensitive_body = true;
    KubeErrors errors;
    bool ran = false;
    int sent = 0;
    std::optional<Result<Response>> result;
    std::optional<core::Reply> answer;
    c_.kube_pipeline->Run(
        info, errors,
        [&](core::ReplyFn reply) {
          ran = true;
          result = body();
          core::Reply out;
          if (!result->ok()) {
            out = errors.Render(result->error(), info);
          } else {
            out.status = (*result)->status;
            if (out.status >= 400) {
              std::string b = registry::FromStatusMessage(out.status, "", (*result)->error).ToJson().dump();
              out.body.assign(b.begin(), b.end());
            }
          }
          sent = out.status;
          reply(std::move(out));
        },
        [&](std::optional<core::Reply> r) { answer = std::move(r); });
    if (!ran) {  // refused by RBAC, or the trail could not record the change before it was made
      if (answer && answer->status == 403) return Refusal(a);
      return UnavailableError("the audit log cannot be written; the request was refused");
    }
    // A read whose answer the trail could not record does not leave (the pipeline answered 503
    // instead); a change was made after its RequestReceived was recorded, and stands.
    if (!mutating && (!answer || answer->status != sent)) {
      return UnavailableError("the audit log cannot be written; the request was refused");
    }
    return std::move(*result);
  }

  registry::WriteOptions Options(std::string operation) const {
    registry::WriteOptions o;
    o.manager = "sigil-vault";
    o.operation = std::move(operation);
    return o;
  }

  // ---- data/ ----

  Result<Response> Data(const engines::Request& r, const SecretRef& ref) {
    switch (r.op) {
      case Operation::kRead: {
        std::optional<int64_t> version;
        if (auto it = r.query.find("version"); it != r.query.end() && !it->second.empty() && it->second != "0") {
          if (it->second.size() > 17 || it->second.find_first_not_of("0123456789") != std::string::npos) {
            return Response::Error(400, "invalid version");
          }
          version = std::stoll(it->second);
        }
        return Checked(version ? SecretAttributes("get", ref, "versions") : SecretAttributes("get", ref), false,
                       [&] { return Read(ref, version); });
      }
      case Operation::kCreate:
      case Operation::kUpdate:
      case Operation::kPatch:
        return Write(r, ref);
      case Operation::kDelete:
        return Checked(SecretAttributes("delete", ref), true, [&]() -> Result<Response> {
          registry::Outcome<registry::Stored> gone =
              c_.registry->Delete(registry::Secrets(), ref.ns, ref.name, registry::Preconditions{}, Options("delete"));
          if (!gone.ok() && gone.error().code != 404) return FromApiError(gone.error());
          return Response::NoContent();
        });
      default:
        return Response::Error(405, "unsupported operation");
    }
  }

  // The KV view of the Secret's history; nullopt when it has none and does not exist. Versions'
  // objects are loaded only `with_objects`.
  Result<std::optional<KvView>> Load(const SecretRef& ref, std::optional<registry::Registry::Versions>* raw, bool with_objects = false) {
    registry::Outcome<std::optional<registry::Registry::Versions>> h = c_.registry->ListVersions(ref.ns, ref.name, with_objects);
    if (!h.ok()) return InternalError(h.error().message);
    if (!h->has_value()) return std::optional<KvView>();
    *raw = std::move(*h);
    return std::optional<KvView>(KvView(**raw));
  }

  // A version (the newest when `version` is absent), as Vault answers a read: 200 with data and
  // metadata, 404 with metadata only for a deleted or destroyed one, 404 when there is none.
  Result<Response> Read(const SecretRef& ref, std::optional<int64_t> version) {
    std::optional<registry::Registry::Versions> raw;
    if (!version) {
      // The Secret as it stands, read first; the history read after it holds its record (the
      // record of its resourceVersion), whatever was written in between.
      registry::Outcome<registry::Stored> live = c_.registry->Get(registry::Secrets(), ref.ns, ref.name);
      if (!live.ok() && live.error().code != 404) return FromApiError(live.error());
      if (live.ok()) {
        SIGIL_ASSIGN_OR_RETURN(std::optional<KvView> view, Load(ref, &raw));
        // Without a record of its state (written before history was kept), version 0.
        KvVersion shown{0, live->obj["metadata"].value("creationTimestamp", ""), "", false, nullptr};
        for (const KvVersion& v : view ? view->versions : std::vector<KvVersion>{}) {
          if (v.record->revision == live->revision) shown = KvVersion{v.n, v.created, "", false, nullptr};
        }
        SIGIL_ASSIGN_OR_RETURN(Json data, ShownData(live->obj));
        return Response::Ok(Json{{"data", std::move(data)}, {"metadata", VersionMetadata(shown)}});
      }
    }
    SIGIL_ASSIGN_OR_RETURN(std::optional<KvView> view, Load(ref, &raw, /*with_objects=*/version.has_value()));
    if (!view) return Response::NotFound();
    const KvVersion* v = view->Find(version.value_or(view->current()));
    if (v == nullptr) return Response::NotFound();
    if (!v->deleted.empty() || v->destroyed || !v->record->obj) {
      Response gone = Response::NotFound();
      gone.data = Json{{"data", nullptr}, {"metadata", VersionMetadata(*v)}};
      return gone;
    }
    SIGIL_ASSIGN_OR_RETURN(Json data, ShownData(*v->record->obj));
    return Response::Ok(Json{{"data", std::move(data)}, {"metadata", VersionMetadata(*v)}});
  }

  // A write (create, update, or merge patch) of the Secret's values; its type, labels and
  // annotations stay. A new Secret is Opaque.
  Result<Response> Write(const engines::Request& r, const SecretRef& ref) {
    auto data_it = r.data.find("data");
    if (data_it == r.data.end() || !data_it->is_object()) return Response::Error(400, "no data provided");
    Result<std::optional<int64_t>> cas = engines::CasOption(r.data);
    if (!cas.ok()) return Response::Error(400, cas.error().message());
    bool patch = r.op == Operation::kPatch;
    // The values as bytes (base64, as a Secret holds them); a patch's null removes a key.
    Json incoming = Json::object();
    for (auto& [k, v] : data_it->items()) {
      if (patch && v.is_null()) {
        incoming[k] = nullptr;
        continue;
      }
      if (!v.is_string()) {
        return Response::Error(400, "the values of a Kubernetes Secret are strings: the value of \"" + k.substr(0, 253) +
                                        "\" is not (binary values are written as \"" + std::string(kBase64Marker) +
                                        "\" followed by their base64)");
      }
      Result<std::string> bytes = TakeValue(v.get_ref<const std::string&>());
      if (!bytes.ok()) return Response::Error(400, "the value of \"" + k.substr(0, 253) + "\": " + bytes.error().message());
      incoming[k] = Base64Encode(*bytes);
      internal::SecureZero(bytes->data(), bytes->size());
    }
    // Authorized before the Secret is looked up, so a refusal says nothing about whether it
    // exists: a caller who may neither create nor update it is refused as for an update (as the
    // Kubernetes face refuses a PUT), whatever is there.
    if (!patch && !Allowed(SecretAttributes("update", ref)) && !Allowed(SecretAttributes("create", ref))) {
      return Checked(SecretAttributes("update", ref), true, [] {  // refused, unless RBAC changed just now
        return Result<Response>(Response::Error(409, "the caller's permissions changed during the request; try again"));
      });
    }
    registry::Outcome<registry::Stored> before = c_.registry->Get(registry::Secrets(), ref.ns, ref.name);
    if (!before.ok() && before.error().code != 404) return FromApiError(before.error());
    std::string verb = patch ? "patch" : before.ok() ? "update" : "create";
    return Checked(SecretAttributes(verb, ref), true, [&]() -> Result<Response> {
      std::optional<Response> refused;
      // The version the Secret stands at (`revision` its resourceVersion; 0: absent), or the
      // newest KV version when it is absent: what options.cas is compared with.
      auto cas_fails = [&](int64_t revision) -> registry::Outcome<bool> {
        if (!*cas) return false;
        registry::Outcome<std::optional<registry::Registry::Versions>> h = c_.registry->ListVersions(ref.ns, ref.name);
        if (!h.ok()) return h.error();
        int64_t at = 0;
        if (h->has_value()) {
          KvView view(**h);
          at = revision == 0 ? view.current() : 0;
          for (const registry::SecretVersion& v : (*h)->versions) {
            if (revision != 0 && v.revision == revision && !v.deleted) at = v.version;
          }
        }
        return **cas != at;
      };
      auto cas_refusal = registry::ApiError{400, "BadRequest", "check-and-set parameter did not match the current version", nullptr};
      registry::Registry::Mutation mutate = [&](const registry::Stored& current) -> registry::Outcome<Json> {
        if (r.create_only) return registry::ApiError{403, "Forbidden", "the policy allows creating this secret, not updating it", nullptr};
        if (verb == "create" && !Allowed(SecretAttributes("update", ref))) {  // it was created meanwhile
          refused = Refusal(SecretAttributes("update", ref));
          return registry::ApiError{403, "Forbidden", "refused", nullptr};
        }
        registry::Outcome<bool> stale = cas_fails(current.revision);
        if (!stale.ok()) return stale.error();
        if (*stale) return cas_refusal;
        Json next = current.obj;
        Json data = incoming;
        if (patch) {
          data = next.value("data", Json::object());
          data.merge_patch(incoming);
        }
        if (data.empty()) {
          next.erase("data");
        } else {
          next["data"] = std::move(data);
        }
        return next;
      };
      std::function<registry::Outcome<Json>()> create;
      if (!patch) {
        create = [&]() -> registry::Outcome<Json> {
          if (verb != "create" && !Allowed(SecretAttributes("create", ref))) {  // it was deleted meanwhile
            refused = Refusal(SecretAttributes("create", ref));
            return registry::ApiError{403, "Forbidden", "refused", nullptr};
          }
          registry::Outcome<bool> stale = cas_fails(0);
          if (!stale.ok()) return stale.error();
          if (*stale) return cas_refusal;
          Json obj = {{"kind", "Secret"},
                      {"apiVersion", "v1"},
                      {"metadata",
                       {{"name", ref.name},
                        {"namespace", ref.ns},
                        {"uid", crypto::RandomUuid()},
                        {"creationTimestamp", FormatRfc3339(c_.clock->Now())}}},
                      {"type", "Opaque"}};
          if (!incoming.empty()) obj["data"] = incoming;
          return obj;
        };
      }
      registry::Outcome<registry::Written> w =
          c_.registry->Update(registry::Secrets(), ref.ns, ref.name, mutate, Options(before.ok() ? "update" : "create"), create);
      if (refused) return std::move(*refused);
      if (!w.ok()) {
        if (patch && w.error().code == 404 && w.error().reason == "NotFound") return Response::NotFound();
        if (w.error().code == 409) return Response::Error(400, "check-and-set parameter did not match the current version");
        return FromApiError(w.error());
      }
      KvVersion made{w->version, FormatRfc3339(c_.clock->Now()), "", false, nullptr};
      registry::Outcome<std::optional<registry::SecretVersion>> rec = c_.registry->GetVersion(ref.ns, ref.name, w->version);
      if (rec.ok() && rec->has_value()) made.created = (*rec)->time;
      return Response::Ok(VersionMetadata(made));
    });
  }

  // ---- delete/, undelete/, destroy/ ----

  Result<Response> Versions(const engines::Request& r, const SecretRef& ref, std::string_view action) {
    Result<std::vector<int64_t>> versions = engines::VersionsField(r.data);
    if (!versions.ok()) return Response::Error(400, versions.error().message());
    bool undelete = action == "undelete/";
    authz::Attributes primary = SecretAttributes(undelete ? "update" : "delete", ref, "versions");
    return Checked(primary, true, [&]() -> Result<Response> {
      std::optional<registry::Registry::Versions> raw;
      SIGIL_ASSIGN_OR_RETURN(std::optional<KvView> view, Load(ref, &raw));
      if (!view) return Response::NoContent();
      auto listed = [&](int64_t n) { return std::find(versions->begin(), versions->end(), n) != versions->end(); };
      bool recreate = false;
      if (undelete) {
        // The newest version of a Secret that is gone comes back as the Secret.
        const KvVersion* newest = view->versions.empty() ? nullptr : &view->versions.back();
        recreate = newest != nullptr && !view->standing && listed(newest->n) && !newest->destroyed;
        if (recreate) {
          registry::Outcome<registry::Stored> live = c_.registry->Get(registry::Secrets(), ref.ns, ref.name);
          if (live.ok()) recreate = false;  // exists, unrecorded: nothing to re-create
        }
        if (recreate && !Allowed(SecretAttributes("create", ref, "rollback"))) return Refusal(SecretAttributes("create", ref, "rollback"));
      }
      using C = registry::Registry::VersionChange;
      C change = action == "delete/" ? C::kSoftDelete : undelete ? C::kUndelete : C::kDestroy;
      // Whether the change takes the Secret with it is decided by the registry on the state it
      // commits against (a write racing this request can make a listed version the current
      // one), so the RBAC check for deleting the Secret is made there, not on what was read here.
      std::optional<Response> refused;
      auto admit_removal = [&]() -> std::optional<registry::ApiError> {
        if (Allowed(SecretAttributes("delete", ref))) return std::nullopt;
        refused = Refusal(SecretAttributes("delete", ref));
        return registry::ApiError{403, "Forbidden", "refused", nullptr};
      };
      registry::Outcome<int> changed = c_.registry->ChangeVersions(ref.ns, ref.name, *versions, change, Options("delete"), admit_removal);
      if (refused) return std::move(*refused);
      if (!changed.ok()) return FromApiError(changed.error());
      if (recreate) {
        bool created = false;
        registry::Outcome<registry::Written> w =
            c_.registry->Rollback(ref.ns, ref.name, view->versions.back().n, Options("undelete"), &created);
        if (!w.ok() && w.error().code != 409) return FromApiError(w.error());
      }
      return Response::NoContent();
    });
  }

  // ---- metadata/ ----

  Result<Response> Metadata(const engines::Request& r, const SecretRef& ref) {
    switch (r.op) {
      case Operation::kRead:
        return Checked(SecretAttributes("get", ref, "versions"), false, [&]() -> Result<Response> {
          std::optional<registry::Registry::Versions> raw;
          SIGIL_ASSIGN_OR_RETURN(std::optional<KvView> view, Load(ref, &raw));
          if (!view) return Response::NotFound();
          Json versions = Json::object();
          for (const KvVersion& v : view->versions) {
            versions[std::to_string(v.n)] = Json{{"created_time", v.created}, {"deletion_time", v.deleted}, {"destroyed", v.destroyed}};
          }
          return Response::Ok(Json{{"cas_required", false},
                                   {"created_time", view->first},
                                   {"current_version", view->current()},
                                   {"custom_metadata", nullptr},
                                   {"delete_version_after", "0s"},
                                   {"max_versions", view->keep + 1},
                                   {"oldest_version", view->versions.empty() ? 0 : view->versions.front().n},
                                   {"updated_time", view->last},
                                   {"versions", std::move(versions)}});
        });
      case Operation::kCreate:
      case Operation::kUpdate:
      case Operation::kPatch:
        return Response::Error(400, kSettingsRefused);
      case Operation::kDelete:
        return Checked(SecretAttributes("delete", ref, "versions"), true, [&]() -> Result<Response> {
          if (!Allowed(SecretAttributes("delete", ref))) return Refusal(SecretAttributes("delete", ref));
          registry::Outcome<bool> gone = c_.registry->DeleteWithHistory(ref.ns, ref.name);
          if (!gone.ok()) return FromApiError(gone.error());
          return Response::NoContent();
        });
      default:
        return Response::Error(405, "unsupported operation");
    }
  }

  // ---- subkeys/ ----

  Result<Response> Subkeys(const engines::Request& r, const SecretRef& ref) {
    if (r.op != Operation::kRead) return Response::Error(405, "unsupported operation");
    SIGIL_ASSIGN_OR_RETURN(Response version, Data(r, ref));
    if (version.status != 200) return version;
    Json keys = Json::object();
    for (auto& [k, v] : version.data["data"].items()) keys[k] = nullptr;  // a Secret's values are flat
    return Response::Ok(Json{{"subkeys", std::move(keys)}, {"metadata", version.data["metadata"]}});
  }

  // ---- LIST metadata/ ----

  Result<Response> ListNamespaces() {
    authz::Attributes a;
    a.verb = "list";
    a.resource = "namespaces";
    return Checked(a, false, [&]() -> Result<Response> {
      registry::Outcome<std::vector<std::string>> names = c_.registry->NamespaceNames();
      if (!names.ok()) return FromApiError(names.error());
      if (names->empty()) return Response::NotFound();
      Json keys = Json::array();
      for (const std::string& n : *names) keys.push_back(n + "/");
      return Response::Ok(Json{{"keys", std::move(keys)}});
    });
  }

  Result<Response> ListSecrets(const std::string& ns) {
    authz::Attributes a;
    a.verb = "list";
    a.resource = "secrets";
    a.namespace_ = ns;
    return Checked(a, false, [&]() -> Result<Response> {
      registry::Outcome<std::vector<std::string>> names = c_.registry->SecretNames(ns);
      if (!names.ok()) return FromApiError(names.error());
      if (names->empty()) return Response::NotFound();
      return Response::Ok(Json{{"keys", *names}});
    });
  }

  KubernetesMountContext c_;
};

}  // namespace

std::string ShowValue(std::string_view bytes) {
  if (ValidUtf8(bytes) && !bytes.starts_with(kBase64Marker)) return std::string(bytes);
  return std::string(kBase64Marker) + Base64Encode(bytes);
}

Result<std::string> TakeValue(std::string_view shown) {
  if (!shown.starts_with(kBase64Marker)) return std::string(shown);
  Result<std::string> bytes = Base64Decode(shown.substr(kBase64Marker.size()));
  if (!bytes.ok()) return InvalidArgumentError("a value marked \"" + std::string(kBase64Marker) + "\" must be base64");
  return bytes;
}

std::unique_ptr<engines::SecretsEngine> NewKubernetesMount(const KubernetesMountContext& c) {
  return std::make_unique<KubernetesMount>(c);
}

}  // namespace sigil::vault
