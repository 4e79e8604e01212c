#include "sigil/engines/engine.h"

#include "sigil/engines/kv_v1.h"

namespace sigil::engines {
namespace {

// "kv" and its aliases. Version 1 is served; version 2 is the next engine to land (issue 12)
// and is refused until then rather than silently mounted as version 1.
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
  if (version.empty()) version = existing ? existing->options.value("version", "1") : "1";
  if (version == "2") return InvalidArgumentError("KV version 2 is not served by sigil yet; mount version 1 (options.version=1)");
  if (version != "1") return InvalidArgumentError("unknown kv version \"" + version.substr(0, 16) + "\"");
  if (existing && existing->options.value("version", "1") != version) {
    return InvalidArgumentError("changing the kv version of a mount is not supported");
  }
  m->options = Json{{"version", version}};
  return OkStatus();
}

const EngineType kTypes[] = {
    {"kv", PrepareKv, [](const Mount& m, Storage s) { return NewKvV1(m, std::move(s)); }},
};

}  // namespace

const EngineType* FindEngineType(std::string_view type) {
  if (type == "kv-v1" || type == "kv-v2" || type == "generic") type = "kv";
  for (const EngineType& t : kTypes) {
    if (t.name == type) return &t;
  }
  return nullptr;
}

std::string EngineTypeNames() { return "kv (version 1)"; }

}  // namespace sigil::engines
