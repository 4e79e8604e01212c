// api/kubernetes/impersonation.cc: Impersonation (Impersonate-* headers) and kube-apiserver's 403 wording.
#include <algorithm>

#include "sigil/api/kubernetes/impl.h"

namespace sigil::kube {

// Impersonation (kube-apiserver's Impersonate-User, -Group, -Uid and -Extra-<key> headers, as
// kubectl --as / --as-group send them): each requested attribute needs the `impersonate` verb
// on users (or the service account), groups, uids or userextras/<key>. Sets *impersonating
// and *out when the request impersonates; returns the error to answer, if any.
std::optional<ApiError> KubernetesApi::Impl::Impersonate(const http::Request& req, const Identity& who, Identity* out, bool* impersonating) const {
  std::optional<std::string> user, uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
  for (const auto& f : req) {
    std::string name(f.name_string());
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value(f.value());
    // kube-apiserver reads the first of several Impersonate-User (or -Uid) headers and a proxy
    // in front may have added its own: which one counts is ambiguous, so it is refused.
    if (name == "impersonate-user") {
      if (user) return BadRequest("more than one Impersonate-User header");
      user = value;
    } else if (name == "impersonate-group") {
      groups.push_back(value);
    } else if (name == "impersonate-uid") {
      if (uid) return BadRequest("more than one Impersonate-Uid header");
      uid = value;
    } else if (name.starts_with("impersonate-extra-")) {
      extra[PercentDecode(name.substr(18), false)].push_back(value);
    }
  }
  if (!user && groups.empty() && !uid && extra.empty()) return std::nullopt;
  if (!user) return BadRequest("requested impersonation of groups, uid or extra without impersonating a user");
  if (auto e = MayActAs(who, *user, groups, uid, extra)) return e;
  const std::string sa_prefix = "system:serviceaccount:";
  std::string sa_ns;
  if (user->starts_with(sa_prefix) && user->find(':', sa_prefix.size()) != std::string::npos) {
    sa_ns = user->substr(sa_prefix.size(), user->find(':', sa_prefix.size()) - sa_prefix.size());
  }
  out->user = *user;
  out->uid = uid.value_or("");
  out->groups = groups;
  if (!sa_ns.empty() && groups.empty()) out->groups = {"system:serviceaccounts", "system:serviceaccounts:" + sa_ns};
  if (*user != "system:anonymous" && std::find(out->groups.begin(), out->groups.end(), "system:authenticated") == out->groups.end()) {
    out->groups.push_back("system:authenticated");
  }
  out->extra = extra;
  out->method = "impersonation";
  out->impersonator = std::make_shared<const Identity>(who);
  *impersonating = true;
  return std::nullopt;
}

// Whether `who` may act as `user` with `groups` (and uid, extras): the `impersonate` verb on
// each, as kube-apiserver checks impersonation. Also what issuing a token for them requires.
std::optional<ApiError> KubernetesApi::Impl::MayActAs(const Identity& who, const std::string& user, const std::vector<std::string>& groups,
                                 const std::optional<std::string>& uid,
                                 const std::map<std::string, std::vector<std::string>>& extra) const {
  auto check = [&](authz::Attributes a) -> std::optional<ApiError> {
    a.verb = "impersonate";
    if (authorizer_->Allows(who, a)) return std::nullopt;
    return Forbidden(a, &who);
  };
  const std::string sa_prefix = "system:serviceaccount:";
  if (user.starts_with(sa_prefix) && user.find(':', sa_prefix.size()) != std::string::npos) {
    size_t colon = user.find(':', sa_prefix.size());
    if (auto e = check({"", true, "", "serviceaccounts", "", user.substr(sa_prefix.size(), colon - sa_prefix.size()),
                        user.substr(colon + 1), ""})) {
      return e;
    }
  } else if (auto e = check({"", true, "", "users", "", "", user, ""})) {
    return e;
  }
  for (const std::string& g : groups) {
    if (auto e = check({"", true, "", "groups", "", "", g, ""})) return e;
  }
  if (uid) {
    if (auto e = check({"", true, "authentication.k8s.io", "uids", "", "", *uid, ""})) return e;
  }
  for (const auto& [k, values] : extra) {
    for (const std::string& v : values) {
      if (auto e = check({"", true, "authentication.k8s.io", "userextras", k, "", v, ""})) return e;
    }
  }
  return std::nullopt;
}

// kube-apiserver's 403 wording for an RBAC denial.
ApiError KubernetesApi::Impl::Forbidden(const authz::Attributes& a, const Identity* who) { return ForbiddenError(a, who); }

ApiError ForbiddenError(const authz::Attributes& a, const Identity* who) {
  std::string m = core::Pipeline::DenialMessage(a, who ? who->user : "system:anonymous");
  if (!a.resource_request) return ApiError{403, "Forbidden", m, Json::object()};
  Json details = {{"kind", a.resource}};
  if (!a.name.empty()) details["name"] = a.name;
  if (!a.api_group.empty()) details["group"] = a.api_group;
  return ApiError{403, "Forbidden", m, details};
}

}  // namespace sigil::kube
