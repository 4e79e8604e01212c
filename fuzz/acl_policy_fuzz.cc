// Fuzzes the Vault ACL policy parser (HCL and JSON, written by anyone allowed to write
// sys/policies/acl) and evaluation of what it parsed. Oracles, beyond "no crash":
//   - parsing is deterministic;
//   - a deny never comes with grants: every answer holding kCapDeny is exactly kCapDeny;
//   - an exact rule that some block denies answers exactly kCapDeny on its own path, for a plain
//     and a list request, whatever else grants it (exact rules always win);
//   - root grants everything everywhere.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sigil/authz/acl.h"
#include "sigil/authz/acl_policy.h"

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

void Check(const sigil::authz::Acl& acl, std::string_view path) {
  using sigil::authz::kCapDeny;
  for (uint32_t caps : {acl.Capabilities(path), acl.ListCapabilities(path)}) {
    Require(!(caps & kCapDeny) || caps == kCapDeny);
  }
  (void)acl.Allows(path, sigil::authz::kCapRead, false);
  (void)acl.Allows(path, sigil::authz::kCapList, true);
  (void)acl.SysCapabilities(path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sigil::authz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto p = ParseAclPolicy("fuzz", text);
  auto again = ParseAclPolicy("fuzz", text);
  Require(p.ok() == again.ok());
  if (!p.ok()) {
    Require(p.error() == again.error());
    return 0;
  }
  Require(*p == *again);

  const Acl acl = Acl::Compile({&*p});
  std::vector<std::string> paths = {"", "/", "secret", "secret/", "secret/data/app", "a/b/c", "a//c"};
  for (const AclRule& r : p->rules) {
    paths.push_back(r.path);
    paths.push_back(r.path + "/");
    paths.push_back(r.path + "x/y");
    std::string filled = r.path;  // a path a segment-wildcard rule should match
    for (char& c : filled) c = c == '+' ? 'v' : c;
    paths.push_back(filled);
  }
  for (size_t i = 0; i + 8 <= text.size() && i < 64; i += 8) paths.emplace_back(text.substr(i, 8));
  for (const std::string& path : paths) Check(acl, path);

  for (const AclRule& r : p->rules) {
    if ((r.capabilities & kCapDeny) && !r.prefix && !r.has_plus && !r.path.starts_with('/')) {
      Require(acl.Capabilities(r.path) == kCapDeny);
      Require(acl.ListCapabilities(r.path) == kCapDeny);
      Require(!acl.Allows(r.path, kCapRead, false));
    }
  }

  const Acl root = Acl::Compile({&*p}, /*root=*/true);
  Require(root.Capabilities(paths.back()) == kCapAllGrants && root.Allows(paths.back(), kCapSudo, true));
  return 0;
}
