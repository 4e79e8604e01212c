#include "sigil/engines/kv_v2.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <set>

namespace sigil::engines {
namespace {

constexpr int64_t kDefaultMaxVersions = 10;
constexpr size_t kMaxCustomMetadata = 64;
constexpr int64_t kMaxDuration = int64_t{100} * 365 * 24 * 3600;
constexpr std::string_view kConfigKey = "config";
constexpr std::string_view kSecretPrefix = "s/";

// RFC 3339 with nanoseconds, as Vault writes its times.
std::string TimeText(Clock::TimePoint t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%09lldZ", static_cast<long long>(ns % 1000000000));
  return buf;
}

int64_t Nanos(Clock::TimePoint t) { return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count(); }

// Go's time.Duration.String() for whole seconds: "0s", "45s", "30m0s", "3h0m0s".
std::string GoDuration(int64_t s) {
  if (s == 0) return "0s";
  std::string out;
  if (s >= 3600) out += std::to_string(s / 3600) + "h";
  if (s >= 60) out += std::to_string((s % 3600) / 60) + "m";
  return out + std::to_string(s % 60) + "s";
}

// One secret: its metadata and every kept version, one document.
struct Secret {
  Json meta = Json::object();
  Json versions = Json::object();  // "<n>" -> {created_ns, deletion_ns (0: none), destroyed, data?}
  int64_t revision = 0;            // of the stored document; 0: new

  int64_t current() const { return meta.value("current_version", int64_t{0}); }
  Json* Version(int64_t n) {
    auto it = versions.find(std::to_string(n));
    return it == versions.end() ? nullptr : &*it;
  }
};

class KvV2 final : public SecretsEngine {
 public:
  KvV2(Storage storage, Clock* clock) : storage_(std::move(storage)), clock_(clock) {}

  Result<std::optional<bool>> Exists(const Request& r) override {
    std::string_view p = r.path;
    for (std::string_view prefix : {"data/", "metadata/"}) {
      if (p.starts_with(prefix) && ValidEntryPath(p.substr(prefix.size()))) {
        SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, storage_.Get(SecretKey(p.substr(prefix.size()))));
        return std::optional<bool>(o.has_value());
      }
    }
    return std::optional<bool>();
  }

  Result<Response> Handle(const Request& r) override {
    std::string_view p = r.path;
    if (p == kConfigKey) return Config(r);
    if (r.op == Operation::kList) {
      if (p == "metadata" || p.starts_with("metadata/")) return List(p.size() > 9 ? p.substr(9) : std::string_view());
      return Response::Error(405, "unsupported operation");
    }
    for (std::string_view prefix : {"data/", "metadata/", "delete/", "undelete/", "destroy/", "subkeys/"}) {
      if (!p.starts_with(prefix)) continue;
      std::string_view key = p.substr(prefix.size());
      if (!ValidEntryPath(key) || key.ends_with("/")) {
        return r.op == Operation::kRead ? Response::NotFound() : Response::Error(400, "invalid path");
      }
      if (prefix == "data/") return Data(r, key);
      if (prefix == "metadata/") return Metadata(r, key);
      if (prefix == "subkeys/") return Subkeys(r, key);
      if (r.op != Operation::kCreate && r.op != Operation::kUpdate) return Response::Error(405, "unsupported operation");
      return Versions(r, key, prefix);
    }
    return Response::Error(404, "no handler for route \"" + std::string(p.substr(0, 256)) + "\". route entry not found.");
  }

 private:
  static std::string SecretKey(std::string_view path) { return std::string(kSecretPrefix) + std::string(path); }

  Result<Json> LoadConfig() {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, storage_.Get(kConfigKey));
    if (!o) return Json::object();
    Json j = Json::parse(o->doc.view(), nullptr, false);
    if (!j.is_object()) return DataLossError("the KV mount's config is damaged");
    return j;
  }

  Result<std::optional<Secret>> Load(std::string_view path) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, storage_.Get(SecretKey(path)));
    if (!o) return std::optional<Secret>();
    Json j = Json::parse(o->doc.view(), nullptr, false);
    if (!j.is_object() || !j.contains("meta") || !j["meta"].is_object() || !j.contains("versions") ||
        !j["versions"].is_object()) {
      return DataLossError("a stored KV entry is damaged");
    }
    Secret s;
    s.meta = std::move(j["meta"]);
    s.versions = std::move(j["versions"]);
    s.revision = o->revision;
    return std::optional<Secret>(std::move(s));
  }

  // Stores `s` if nobody changed it since it was loaded: false on a conflict (the caller
  // starts over from a fresh read).
  Result<bool> Store(std::string_view path, const Secret& s) {
    Json doc = {{"meta", s.meta}, {"versions", s.versions}};
    Result<int64_t> r = storage_.Put(SecretKey(path), SecretBytes(doc.dump()),
                                     s.revision ? std::optional<int64_t>(s.revision) : std::nullopt);
    if (r.ok()) return true;
    if (r.error().code() == StatusCode::kAborted || r.error().code() == StatusCode::kAlreadyExists) return false;
    return r.error();
  }

  // Runs `change` on a fresh copy until its write lands (or it answers without writing).
  // `create`: a missing key is made; `create_only`: an existing one is refused (403).
  Result<Response> Modify(std::string_view path, bool create, bool create_only,
                          const std::function<Result<std::optional<Response>>(Secret* s, bool existed)>& change) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<Secret> loaded, Load(path));
      bool existed = loaded.has_value();
      if (!existed && !create) return Response::NoContent();
      Secret s = existed ? std::move(*loaded) : Secret();
      if (!existed) s.meta = Json{{"created_ns", Nanos(clock_->Now())}, {"current_version", 0}, {"oldest_version", 0}};
      if (existed && create_only) return Response::Error(403, "permission denied");
      SIGIL_ASSIGN_OR_RETURN(std::optional<Response> answer, change(&s, existed));
      if (answer && answer->status >= 400) return std::move(*answer);
      s.meta["updated_ns"] = Nanos(clock_->Now());
      SIGIL_ASSIGN_OR_RETURN(bool stored, Store(path, s));
      if (stored) return answer ? std::move(*answer) : Response::NoContent();
    }
    return AbortedError("the entry kept changing; try again");
  }

  Json VersionMetadata(const Secret& s, int64_t n, const Json& v) const {
    int64_t del = v.value("deletion_ns", int64_t{0});
    return Json{{"created_time", TimeText(Clock::TimePoint(std::chrono::nanoseconds(v.value("created_ns", int64_t{0}))))},
                {"custom_metadata", s.meta.contains("custom_metadata") ? s.meta["custom_metadata"] : Json(nullptr)},
                {"deletion_time", del ? TimeText(Clock::TimePoint(std::chrono::nanoseconds(del))) : ""},
                {"destroyed", v.value("destroyed", false)},
                {"version", n}};
  }

  bool Deleted(const Json& v) const {
    int64_t del = v.value("deletion_ns", int64_t{0});
    return del != 0 && del <= Nanos(clock_->Now());
  }

  Result<int64_t> MaxVersions(const Secret& s) {
    int64_t own = s.meta.value("max_versions", int64_t{0});
    if (own > 0) return own;
    SIGIL_ASSIGN_OR_RETURN(Json config, LoadConfig());
    int64_t mount = config.value("max_versions", int64_t{0});
    return mount > 0 ? mount : kDefaultMaxVersions;
  }

  Result<Response> Data(const Request& r, std::string_view path) {
    switch (r.op) {
      case Operation::kRead: {
        SIGIL_ASSIGN_OR_RETURN(std::optional<Secret> s, Load(path));
        if (!s) return Response::NotFound();
        int64_t n = s->current();
        if (auto it = r.query.find("version"); it != r.query.end() && !it->second.empty()) {
          try {
            size_t used = 0;
            int64_t want = std::stoll(it->second, &used);
            if (used != it->second.size() || want < 0) return Response::Error(400, "invalid version");
            if (want > 0) n = want;
          } catch (const std::exception&) {
            return Response::Error(400, "invalid version");
          }
        }
        Json* v = s->Version(n);
        if (v == nullptr) return Response::NotFound();
        if (Deleted(*v) || v->value("destroyed", false)) {
          // As Vault: 404, with the version's metadata (and no data) in the body.
          Response gone = Response::NotFound();
          gone.data = Json{{"data", nullptr}, {"metadata", VersionMetadata(*s, n, *v)}};
          return gone;
        }
        return Response::Ok(Json{{"data", v->value("data", Json(nullptr))}, {"metadata", VersionMetadata(*s, n, *v)}});
      }
      case Operation::kCreate:
      case Operation::kUpdate:
      case Operation::kPatch:
        return Write(r, path);
      case Operation::kDelete:
        return Modify(path, false, false, [&](Secret* s, bool) -> Result<std::optional<Response>> {
          if (Json* v = s->Version(s->current()); v != nullptr && !v->value("destroyed", false) && !Deleted(*v)) {
            (*v)["deletion_ns"] = Nanos(clock_->Now());
          }
          return std::optional<Response>();
        });
      default:
        return Response::Error(405, "unsupported operation");
    }
  }

  Result<Response> Write(const Request& r, std::string_view path) {
    auto data_it = r.data.find("data");
    if (data_it == r.data.end() || !data_it->is_object()) return Response::Error(400, "no data provided");
    Result<std::optional<int64_t>> cas_option = CasOption(r.data);
    if (!cas_option.ok()) return Response::Error(400, cas_option.error().message());
    std::optional<int64_t> cas = *cas_option;
    SIGIL_ASSIGN_OR_RETURN(Json config, LoadConfig());
    bool patch = r.op == Operation::kPatch;
    return Modify(path, true, r.create_only, [&](Secret* s, bool existed) -> Result<std::optional<Response>> {
      bool cas_required = config.value("cas_required", false) || s->meta.value("cas_required", false);
      if (cas_required && !cas) return std::optional<Response>(Response::Error(400, "check-and-set parameter required for this call"));
      if (cas && *cas != s->current()) {
        return std::optional<Response>(Response::Error(400, "check-and-set parameter did not match the current version"));
      }
      Json next = *data_it;
      if (patch) {
        Json* latest = existed ? s->Version(s->current()) : nullptr;
        if (latest == nullptr || Deleted(*latest) || latest->value("destroyed", false)) {
          return std::optional<Response>(Response::NotFound());
        }
        next = latest->value("data", Json::object());
        next.merge_patch(*data_it);
      }
      int64_t n = s->current() + 1;
      int64_t now = Nanos(clock_->Now());
      // As Vault: a key's delete_version_after of 0 means the mount's; with both set, the shorter.
      int64_t key_after = std::clamp<int64_t>(s->meta.value("delete_version_after", int64_t{0}), 0, kMaxDuration);
      int64_t mount_after = std::clamp<int64_t>(config.value("delete_version_after", int64_t{0}), 0, kMaxDuration);
      int64_t after = key_after > 0 && mount_after > 0 ? std::min(key_after, mount_after) : std::max(key_after, mount_after);
      Json v = {{"created_ns", now}, {"deletion_ns", after > 0 ? now + after * 1000000000 : 0}, {"destroyed", false},
                {"data", std::move(next)}};
      s->versions[std::to_string(n)] = std::move(v);
      s->meta["current_version"] = n;
      SIGIL_ASSIGN_OR_RETURN(int64_t max, MaxVersions(*s));
      while (static_cast<int64_t>(s->versions.size()) > max) {
        int64_t oldest = INT64_MAX;
        for (auto& [k, _] : s->versions.items()) oldest = std::min<int64_t>(oldest, std::stoll(k));
        s->versions.erase(std::to_string(oldest));
        s->meta["oldest_version"] = oldest + 1;
      }
      while (s->meta.value("oldest_version", int64_t{0}) > 0 && !s->Version(s->meta["oldest_version"].get<int64_t>())) {
        s->meta["oldest_version"] = s->meta["oldest_version"].get<int64_t>() + 1;
      }
      Json meta = VersionMetadata(*s, n, s->versions[std::to_string(n)]);
      return std::optional<Response>(Response::Ok(std::move(meta)));
    });
  }

  Result<Response> Versions(const Request& r, std::string_view path, std::string_view action) {
    Result<std::vector<int64_t>> listed = VersionsField(r.data);
    if (!listed.ok()) return Response::Error(400, listed.error().message());
    const std::vector<int64_t>& versions = *listed;
    return Modify(path, false, false, [&](Secret* s, bool) -> Result<std::optional<Response>> {
      for (int64_t n : versions) {
        Json* v = s->Version(n);
        if (v == nullptr || v->value("destroyed", false)) continue;
        if (action == "delete/") {
          if (!Deleted(*v)) (*v)["deletion_ns"] = Nanos(clock_->Now());
        } else if (action == "undelete/") {
          (*v)["deletion_ns"] = 0;
        } else {
          (*v)["destroyed"] = true;
          v->erase("data");
        }
      }
      return std::optional<Response>();
    });
  }

  Result<Response> Metadata(const Request& r, std::string_view path) {
    switch (r.op) {
      case Operation::kRead: {
        SIGIL_ASSIGN_OR_RETURN(std::optional<Secret> s, Load(path));
        if (!s) return Response::NotFound();
        Json versions = Json::object();
        for (auto& [k, v] : s->versions.items()) {
          Json m = VersionMetadata(*s, std::stoll(k), v);
          versions[k] = Json{{"created_time", m["created_time"]}, {"deletion_time", m["deletion_time"]},
                             {"destroyed", m["destroyed"]}};
        }
        auto t = [&](const char* f) {
          return TimeText(Clock::TimePoint(std::chrono::nanoseconds(s->meta.value(f, int64_t{0}))));
        };
        return Response::Ok(Json{{"cas_required", s->meta.value("cas_required", false)},
                                 {"created_time", t("created_ns")},
                                 {"current_version", s->current()},
                                 {"custom_metadata", s->meta.contains("custom_metadata") ? s->meta["custom_metadata"] : Json(nullptr)},
                                 {"delete_version_after", GoDuration(s->meta.value("delete_version_after", int64_t{0}))},
                                 {"max_versions", s->meta.value("max_versions", int64_t{0})},
                                 {"oldest_version", s->meta.value("oldest_version", int64_t{0})},
                                 {"updated_time", t("updated_ns")},
                                 {"versions", std::move(versions)}});
      }
      case Operation::kCreate:
      case Operation::kUpdate: {
        Json settings = Json::object();
        if (Status st = Settings(r.data, &settings, true); !st.ok()) return Response::Error(400, st.message());
        return Modify(path, true, r.create_only, [&](Secret* s, bool) -> Result<std::optional<Response>> {
          for (auto& [k, v] : settings.items()) s->meta[k] = v;
          return std::optional<Response>();
        });
      }
      case Operation::kPatch: {
        // A merge patch of the key's settings: custom_metadata entries set to null are removed.
        Json body = r.data;
        Json custom = body.contains("custom_metadata") ? body["custom_metadata"] : Json(nullptr);
        body.erase("custom_metadata");
        Json settings = Json::object();
        if (Status st = Settings(body, &settings, true); !st.ok()) return Response::Error(400, st.message());
        if (!custom.is_null() && !custom.is_object()) return Response::Error(400, "custom_metadata must be a map");
        SIGIL_ASSIGN_OR_RETURN(std::optional<Secret> exists, Load(path));
        if (!exists) return Response::NotFound();
        return Modify(path, false, false, [&](Secret* s, bool) -> Result<std::optional<Response>> {
          for (auto& [k, v] : settings.items()) s->meta[k] = v;
          if (custom.is_object()) {
            Json merged = s->meta.contains("custom_metadata") && s->meta["custom_metadata"].is_object() ? s->meta["custom_metadata"]
                                                                                                      : Json::object();
            merged.merge_patch(custom);
            Json check = Json::object();
            if (Status st = Settings(Json{{"custom_metadata", merged}}, &check, true); !st.ok()) {
              return std::optional<Response>(Response::Error(400, st.message()));
            }
            s->meta["custom_metadata"] = merged;
          }
          return std::optional<Response>();
        });
      }
      case Operation::kDelete:
        SIGIL_RETURN_IF_ERROR(storage_.Delete(SecretKey(path)));
        return Response::NoContent();
      default:
        return Response::Error(405, "unsupported operation");
    }
  }

  // subkeys/<path>?version=N&depth=D: the version's keys with every leaf value as null, down to
  // `depth` levels (0: all), and the version's metadata.
  Result<Response> Subkeys(const Request& r, std::string_view path) {
    if (r.op != Operation::kRead) return Response::Error(405, "unsupported operation");
    int64_t depth = 0;
    if (auto it = r.query.find("depth"); it != r.query.end() && !it->second.empty()) {
      if (it->second.size() > 9 || it->second.find_first_not_of("0123456789") != std::string::npos) {
        return Response::Error(400, "invalid depth");
      }
      depth = std::stoll(it->second);
    }
    Request read = r;
    read.op = Operation::kRead;
    SIGIL_ASSIGN_OR_RETURN(Response version, Data(read, path));
    if (version.status != 200) return version;
    std::function<Json(const Json&, int64_t)> shape = [&](const Json& j, int64_t level) -> Json {
      Json out = Json::object();
      for (auto& [k, v] : j.items()) {
        out[k] = v.is_object() && (depth == 0 || level < depth) ? shape(v, level + 1) : Json(nullptr);
      }
      return out;
    };
    const Json& data = version.data["data"];
    return Response::Ok(Json{{"subkeys", data.is_object() ? shape(data, 1) : Json(nullptr)},
                             {"metadata", version.data["metadata"]}});
  }

  // max_versions, cas_required, delete_version_after (and, per key, custom_metadata) of a
  // config or metadata write, into `out`.
  static Status Settings(const Json& body, Json* out, bool per_key) {
    if (auto it = body.find("max_versions"); it != body.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 0) return InvalidArgumentError("max_versions must be a non-negative integer");
      (*out)["max_versions"] = it->get<int64_t>();
    }
    if (auto it = body.find("cas_required"); it != body.end() && !it->is_null()) {
      if (!it->is_boolean()) return InvalidArgumentError("cas_required must be a boolean");
      (*out)["cas_required"] = it->get<bool>();
    }
    if (auto it = body.find("delete_version_after"); it != body.end() && !it->is_null()) {
      std::optional<std::chrono::seconds> d;
      if (it->is_number_integer() && it->get<int64_t>() >= 0 && it->get<int64_t>() <= kMaxDuration) {
        d = std::chrono::seconds(it->get<int64_t>());
      }
      if (it->is_string()) d = ParseGoDuration(it->get_ref<const std::string&>(), kMaxDuration);
      if (!d) return InvalidArgumentError("delete_version_after must be a duration");
      (*out)["delete_version_after"] = d->count();
    }
    if (auto it = body.find("custom_metadata"); per_key && it != body.end() && !it->is_null()) {
      if (!it->is_object() || it->size() > kMaxCustomMetadata) {
        return InvalidArgumentError("custom_metadata must be a map of at most 64 strings");
      }
      for (auto& [k, v] : it->items()) {
        if (!v.is_string() || k.empty() || k.size() > 128 || v.get_ref<const std::string&>().size() > 512) {
          return InvalidArgumentError("custom_metadata keys are 1-128 bytes and values strings of at most 512 bytes");
        }
      }
      (*out)["custom_metadata"] = *it;
    }
    return OkStatus();
  }

  Result<Response> Config(const Request& r) {
    if (r.op == Operation::kRead) {
      SIGIL_ASSIGN_OR_RETURN(Json c, LoadConfig());
      return Response::Ok(Json{{"cas_required", c.value("cas_required", false)},
                               {"delete_version_after", GoDuration(c.value("delete_version_after", int64_t{0}))},
                               {"max_versions", c.value("max_versions", int64_t{0})}});
    }
    if (r.op != Operation::kCreate && r.op != Operation::kUpdate) return Response::Error(405, "unsupported operation");
    for (int attempt = 0; attempt < 16; ++attempt) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, storage_.Get(kConfigKey));
      Json c = o ? Json::parse(o->doc.view(), nullptr, false) : Json::object();
      if (!c.is_object()) return DataLossError("the KV mount's config is damaged");
      if (Status st = Settings(r.data, &c, false); !st.ok()) return Response::Error(400, st.message());
      Result<int64_t> put = storage_.Put(kConfigKey, SecretBytes(c.dump()), o ? std::optional<int64_t>(o->revision) : std::nullopt);
      if (put.ok()) return Response::NoContent();
      if (put.error().code() != StatusCode::kAborted && put.error().code() != StatusCode::kAlreadyExists) return put.error();
    }
    return AbortedError("the config kept changing; try again");
  }

  Result<Response> List(std::string_view raw) {
    std::string prefix(raw);
    if (!prefix.empty() && !prefix.ends_with("/")) prefix += "/";
    if (!prefix.empty() && !ValidEntryPath(std::string_view(prefix).substr(0, prefix.size() - 1))) {
      return Response::Error(400, "invalid path");
    }
    return ListFolder(storage_, std::string(kSecretPrefix) + prefix);
  }

  Storage storage_;
  Clock* const clock_;
};

}  // namespace

std::unique_ptr<SecretsEngine> NewKvV2(const Mount& mount, Storage storage, Clock* clock) {
  (void)mount;
  return std::make_unique<KvV2>(std::move(storage), clock);
}

}  // namespace sigil::engines
