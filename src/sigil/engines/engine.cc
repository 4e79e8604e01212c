#include "sigil/engines/engine.h"

#include <set>

#include "sigil/engines/kv_v1.h"
#include "sigil/engines/kv_v2.h"
#include "sigil/engines/transit.h"

namespace sigil::engines {
namespace {

std::string KvVersion(const Mount& m) {
  if (!m.options.is_object()) return "1";
  auto it = m.options.find("version");
  return it != m.options.end() && it->is_string() ? it->get<std::string>() : "1";
}

// "kv" and its aliases: version 1 or 2, fixed for the mount's life.
Status PrepareKv(Mount* m, const Mount* existing) {
  std::string version;
  if (m->type == "kv-v1" || m->type == "generic") version = "1";
  if (m->type == "kv-v2") version = "2";
  m->type = "kv";
  if (m->options.is_object() && m->options.contains("version")) {
    const Json& v = m->options["version"];
    std::string given = v.is_string() ? v.get<std::string>() : v.is_number_integer() ? std::to_string(v.get<int64_t>()) : "?";
    if (!version.empty() && given != version) return InvalidArgumentError("the kv version conflicts with the mount type");
    version = given;
  }
  if (version.empty()) version = existing ? KvVersion(*existing) : "1";
  if (version != "1" && version != "2") return InvalidArgumentError("unknown kv version \"" + version.substr(0, 16) + "\"");
  if (existing && KvVersion(*existing) != version) {
    return InvalidArgumentError("changing the kv version of a mount is not supported");
  }
  m->options = Json{{"version", version}};
  return OkStatus();
}

Status PrepareTransit(Mount* m, const Mount*) {
  if (m->options.is_object() && !m->options.empty()) return InvalidArgumentError("the transit engine takes no options");
  m->options = nullptr;
  return OkStatus();
}

const EngineType kTypes[] = {
    {"kv", PrepareKv,
     [](const Mount& m, Storage s, Clock* clock) {
       return KvVersion(m) == "2" ? NewKvV2(m, std::move(s), clock) : NewKvV1(m, std::move(s));
     }},
    {"transit", PrepareTransit, [](const Mount&, Storage s, Clock* clock) { return NewTransit({}, std::move(s), clock); }},
};

}  // namespace

const EngineType* FindEngineType(std::string_view type) {
  if (type == "kv-v1" || type == "kv-v2" || type == "generic") type = "kv";
  for (const EngineType& t : kTypes) {
    if (t.name == type) return &t;
  }
  return nullptr;
}

std::string EngineTypeNames() { return "kv (versions 1 and 2), transit"; }

Result<Response> ListFolder(Storage& storage, const std::string& prefix) {
  SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> all, storage.List(prefix));
  std::set<std::string> keys;
  for (const std::string& k : all) {
    size_t slash = k.find('/');
    keys.insert(slash == std::string::npos ? k : k.substr(0, slash + 1));
  }
  if (keys.empty()) return Response::NotFound();
  return Response::Ok(Json{{"keys", Json(std::vector<std::string>(keys.begin(), keys.end()))}});
}

namespace {

// A version number as Vault's KV v2 takes it: a non-negative JSON integer or decimal string.
std::optional<int64_t> VersionNumber(const Json& v) {
  if (v.is_number_integer()) return v.get<int64_t>() >= 0 ? std::optional<int64_t>(v.get<int64_t>()) : std::nullopt;
  if (!v.is_string()) return std::nullopt;
  const std::string& s = v.get_ref<const std::string&>();
  if (s.empty() || s.size() >= 18 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoll(s);
}

}  // namespace

Result<std::optional<int64_t>> CasOption(const Json& body) {
  auto o = body.find("options");
  if (o == body.end() || !o->is_object()) return std::optional<int64_t>();
  auto c = o->find("cas");
  if (c == o->end() || c->is_null()) return std::optional<int64_t>();
  std::optional<int64_t> n = VersionNumber(*c);
  if (!n) return InvalidArgumentError("invalid cas parameter");
  return n;
}

Result<std::vector<int64_t>> VersionsField(const Json& body) {
  std::vector<int64_t> out;
  auto it = body.find("versions");
  if (it != body.end() && it->is_array()) {
    for (const Json& v : *it) {
      // Any integer, as Vault's []int: one that names no version is skipped by the caller.
      std::optional<int64_t> n = v.is_number_integer() ? std::optional<int64_t>(v.get<int64_t>()) : VersionNumber(v);
      if (!n) return InvalidArgumentError("versions must be a list of version numbers");
      out.push_back(*n);
    }
  }
  if (out.empty()) return InvalidArgumentError("no version number provided");
  return out;
}

bool ValidEntryPath(std::string_view p) {
  constexpr size_t kMaxPathBytes = 1024;
  if (p.empty() || p.size() > kMaxPathBytes || p.front() == '/' || p.find("//") != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    std::string_view seg = p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg == "." || seg == "..") return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

}  // namespace sigil::engines
