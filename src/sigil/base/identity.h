// base/identity.h: who is calling, as authentication establishes it (Kubernetes user.Info):
// one value type that the HTTP layer carries, authorization and audit read, and the Vault API
// will reuse. Thread safety: a value type.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace sigil {

struct Identity {
  std::string user;  // e.g. "alice", "system:serviceaccount:ns:sa"; empty = anonymous
  std::string uid;
  std::vector<std::string> groups;  // includes system:authenticated once authenticated
  std::map<std::string, std::vector<std::string>> extra;
  std::string method;  // how: "token", "token-file", "x509", "serviceaccount" (for audit)

  bool authenticated() const { return !user.empty(); }
};

}  // namespace sigil
