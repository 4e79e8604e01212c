// base/identity.h: who is calling, as authentication establishes it: one value type for both
// faces. The Kubernetes face reads it as user.Info (user, uid, groups, extra) for RBAC; the
// Vault face reads the same identity's policies, token accessor, expiry and metadata, so a
// token identifies one caller on both faces. Thread safety: a value type.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
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

  // Vault face: the ACL policies the caller holds ("root" holds every capability), the token's
  // accessor (a public handle to look up or revoke it, never the token), when it expires (none:
  // never), and its metadata (e.g. the service account a Kubernetes login came from).
  std::vector<std::string> policies = {};
  std::string token_accessor = {};
  std::optional<std::chrono::system_clock::time_point> expires = std::nullopt;
  std::map<std::string, std::string> metadata = {};
  // A limited-use Vault token (num_uses): it may not mint other credentials or open streams
  // that would outlive its uses.
  bool limited_use = false;
  // The store key of the token that authenticated the request (a keyed hash, never the token),
  // for what the token makes that must end with it (leases); "" for other credentials.
  std::string token_key = {};

  bool authenticated() const { return !user.empty(); }
};

}  // namespace sigil
