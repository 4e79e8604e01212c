// base/identity.h: who is calling, as authentication establishes it (Kubernetes user.Info):
// one value type that the HTTP layer carries, authorization and audit read, and the Vault API
// will reuse. Thread safety: a value type.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sigil {

struct Identity {
  std::string user;  // e.g. "alice", "system:serviceaccount:ns:sa"; empty = anonymous
  std::string uid;
  std::vector<std::string> groups;  // includes system:authenticated once authenticated
  std::map<std::string, std::vector<std::string>> extra;
  std::string method;  // how: "token", "token-file", "x509", "serviceaccount", "impersonation" (for audit)
  // Set when this identity is impersonated: who really made the request.
  std::shared_ptr<const Identity> impersonator = nullptr;

  bool authenticated() const { return !user.empty(); }
};

}  // namespace sigil
