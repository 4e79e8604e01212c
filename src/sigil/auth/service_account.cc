#include "sigil/auth/service_account.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "sigil/base/encoding.h"

namespace sigil::auth {
namespace {

using Json = nlohmann::json;
constexpr int64_t kLeewaySeconds = 60;

Status Refuse(const std::string& why) { return UnauthenticatedError("service account token: " + why); }

}  // namespace

bool ServiceAccountAuthenticator::LooksLikeJwt(std::string_view token) {
  return std::count(token.begin(), token.end(), '.') == 2 && token.starts_with("eyJ");
}

namespace {

// The kid of a token's header ("" if it has none); the signature was checked before this is
// used, with the key of that kid.
std::string HeaderKeyId(std::string_view token) {
  auto header = Base64UrlDecode(token.substr(0, token.find('.')));
  if (!header.ok()) return "";
  nlohmann::json h = nlohmann::json::parse(*header, nullptr, false);
  return h.is_object() && h.contains("kid") && h["kid"].is_string() ? h["kid"].get<std::string>() : "";
}

}  // namespace

Result<Identity> ServiceAccountAuthenticator::Authenticate(std::string_view token) const {
  auto verified = config_.keys.Verify(token);
  if (!verified.ok()) return Refuse(verified.error().message());
  const Json& c = *verified;
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
  std::string iss = c.contains("iss") && c["iss"].is_string() ? c["iss"].get<std::string>() : "";
  if (!config_.any_issuer && std::find(config_.issuers.begin(), config_.issuers.end(), iss) == config_.issuers.end()) {
    return Refuse("issuer is not accepted");
  }
  // aud: a string or a list; one of them must be accepted.
  const std::vector<std::string>& accepted = config_.audiences.empty() ? config_.issuers : config_.audiences;
  std::vector<std::string> aud;
  if (c.contains("aud") && c["aud"].is_string()) aud.push_back(c["aud"].get<std::string>());
  if (c.contains("aud") && c["aud"].is_array()) {
    for (const Json& a : c["aud"]) {
      if (a.is_string()) aud.push_back(a.get<std::string>());
    }
  }
  bool aud_ok = std::any_of(aud.begin(), aud.end(),
                            [&](const std::string& a) { return std::find(accepted.begin(), accepted.end(), a) != accepted.end(); });
  if (!aud_ok && !config_.any_audience) return Refuse("audience is not accepted");
  if (!c.contains("exp") || !c["exp"].is_number()) return Refuse("no expiry (legacy tokens are not accepted)");
  if (c["exp"].get<double>() + kLeewaySeconds < static_cast<double>(now)) return Refuse("expired");
  if (c.contains("nbf")) {
    if (!c["nbf"].is_number()) return Refuse("malformed nbf");
    if (c["nbf"].get<double>() - kLeewaySeconds > static_cast<double>(now)) return Refuse("not valid yet");
  }
  if (c.contains("iat") && c["iat"].is_number() && c["iat"].get<double>() - kLeewaySeconds > static_cast<double>(now)) {
    return Refuse("issued in the future");
  }
  std::string sub = c.contains("sub") && c["sub"].is_string() ? c["sub"].get<std::string>() : "";
  constexpr std::string_view kSubPrefix = "system:serviceaccount:";
  if (!std::string_view(sub).starts_with(kSubPrefix)) return Refuse("sub is not a service account");
  std::string rest = sub.substr(kSubPrefix.size());
  size_t colon = rest.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size() || rest.find(':', colon + 1) != std::string::npos) {
    return Refuse("sub is not system:serviceaccount:<namespace>:<name>");
  }
  std::string ns = rest.substr(0, colon), name = rest.substr(colon + 1);
  const Json k8s = c.value("kubernetes.io", Json::object());
  if (!k8s.is_object()) return Refuse("malformed kubernetes.io claim");
  Identity id;
  if (k8s.contains("namespace") && k8s["namespace"] != ns) return Refuse("kubernetes.io namespace does not match sub");
  if (k8s.contains("serviceaccount") && k8s["serviceaccount"].is_object()) {
    const Json& sa = k8s["serviceaccount"];
    if (sa.contains("name") && sa["name"] != name) return Refuse("kubernetes.io service account does not match sub");
    id.uid = sa.contains("uid") && sa["uid"].is_string() ? sa["uid"].get<std::string>() : "";
  }
  id.user = sub;
  id.groups = {"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"};
  for (const char* bound : {"pod", "node"}) {
    if (k8s.contains(bound) && k8s[bound].is_object()) {
      for (const char* f : {"name", "uid"}) {
        if (k8s[bound].contains(f) && k8s[bound][f].is_string()) {
          id.extra[std::string("authentication.kubernetes.io/") + bound + "-" + f] = {k8s[bound][f].get<std::string>()};
        }
      }
    }
  }
  if (c.contains("jti") && c["jti"].is_string()) {
    id.extra["authentication.kubernetes.io/credential-id"] = {"JTI=" + c["jti"].get<std::string>()};
  }
  id.method = "serviceaccount";
  // A token sigil signed stands only while its service account does (deleted, or deleted and
  // made again with a new uid: refused), as kube-apiserver checks the tokens it issued.
  if (config_.still_exists && !config_.own_key_id.empty() && HeaderKeyId(token) == config_.own_key_id) {
    if (!config_.still_exists(ns, name, id.uid)) return Refuse("the service account no longer exists");
  }
  return id;
}

}  // namespace sigil::auth
