// Fuzzes what sigil-agent takes from outside: a Secret object as a server (or anything that
// reaches the agent's connection) sends it, turned into file paths and contents
// (agent::SelectFiles), and the agent's configuration file (agent::ParseConfig). Whatever the
// input, every file path that comes back must stay inside the target directory.
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sigil/agent/agent.h"
#include "sigil/agent/config.h"
#include "sigil/base/check.h"

namespace {

void CheckPaths(const std::vector<sigil::agent::FileData>& files) {
  for (const auto& f : files) {
    SIGIL_CHECK(sigil::agent::CheckItemPath(f.path).ok());
    SIGIL_CHECK(f.path.find("..") != 0 && f.path.find("/../") == std::string::npos);
    SIGIL_CHECK(f.mode >= 0 && f.mode <= 0777);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (!in.empty() && in.front() == '{') {
    nlohmann::json secret = nlohmann::json::parse(in, nullptr, false);
    if (secret.is_discarded()) return 0;
    sigil::agent::SecretSource all;
    all.namespace_ = "default";
    all.name = "s";
    if (auto files = sigil::agent::SelectFiles(all, secret); files.ok()) CheckPaths(*files);
    sigil::agent::SecretSource some = all;
    some.items = {{"a", "x/a", 0400}, {"b", "b", std::nullopt}};
    if (auto files = sigil::agent::SelectFiles(some, secret); files.ok()) {
      SIGIL_CHECK(files->size() == 2);
      CheckPaths(*files);
    }
    return 0;
  }
  auto c = sigil::agent::ParseConfig(std::string(in), "/etc/agent");
  if (!c.ok()) {
    SIGIL_CHECK(c.error().code() == sigil::StatusCode::kInvalidArgument);
    return 0;
  }
  SIGIL_CHECK(!c->secrets.empty() || !c->env.empty());
  for (const auto& s : c->secrets) {
    SIGIL_CHECK(!s.directory.empty() && s.directory.front() == '/');
    SIGIL_CHECK(s.mode >= 0 && s.mode <= 0777);
    for (const auto& item : s.items) SIGIL_CHECK(sigil::agent::CheckItemPath(item.path).ok());
  }
  for (const auto& e : c->env) SIGIL_CHECK(e.name.empty() || sigil::agent::IsEnvName(e.name));
  return 0;
}
