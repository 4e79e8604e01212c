#include "sigil/auth/authenticator.h"

#include <algorithm>

namespace sigil::auth {

Result<std::optional<Identity>> Authenticator::AuthenticateToken(std::string_view token, std::string* why, bool use) const {
  if (token.empty()) return std::optional<Identity>();
  if (service_accounts_ && ServiceAccountAuthenticator::LooksLikeJwt(token)) {
    auto id = service_accounts_->Authenticate(token);
    if (id.ok()) return std::optional<Identity>(std::move(id).value());
    if (id.error().code() != StatusCode::kUnauthenticated) return id.error();
    if (why != nullptr) *why = id.error().message();
    return std::optional<Identity>();
  }
  if (tokens_ != nullptr) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<Identity> id, tokens_->Lookup(token, use));
    if (id) return id;
  }
  if (token_file_) {
    if (auto id = token_file_->Lookup(token)) return std::optional<Identity>(std::move(*id));
  }
  if (why != nullptr) *why = "invalid bearer token";
  return std::optional<Identity>();
}

Result<AuthOutcome> Authenticator::Authenticate(std::string_view header, const CertificateSubject* cert) const {
  AuthOutcome out;
  if (cert != nullptr) {
    out.presented = true;
    if (!cert->common_name.empty()) {  // an empty CN is not an identity (kube-apiserver's rule)
      Identity id;
      id.user = cert->common_name;
      id.groups = cert->organizations;
      id.groups.push_back("system:authenticated");
      id.extra["authentication.kubernetes.io/credential-id"] = {"X509SHA256=" + cert->sha256_hex};
      id.method = "x509";
      out.identity = std::move(id);
      return out;
    }
  }
  if (header.empty()) return out;
  // "Bearer <token>", the scheme case-insensitive (kube-apiserver's bearertoken authenticator).
  size_t sp = header.find(' ');
  std::string scheme(header.substr(0, sp));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  if (sp == std::string_view::npos || scheme != "bearer") return out;
  out.presented = true;
  std::string_view token = header.substr(sp + 1);
  if (!token.empty() && token.front() == ' ') {
    out.warning = "the provided Authorization header contains extra space before the bearer token, and is ignored";
    return out;
  }
  token = token.substr(0, token.find(' '));
  SIGIL_ASSIGN_OR_RETURN(out.identity, AuthenticateToken(token, nullptr, /*use=*/true));
  return out;
}

std::chrono::milliseconds FailureThrottle::Fail(const std::string& address) {
  constexpr int kFree = 5;
  constexpr auto kWindow = std::chrono::minutes(1);
  std::lock_guard<std::mutex> l(mu_);
  Clock::TimePoint now = clock_->Now();
  if (entries_.size() >= 10000 && !entries_.count(address)) {
    std::erase_if(entries_, [&](const auto& e) { return now - e.second.window_start > kWindow; });
    if (entries_.size() >= 10000) entries_.erase(entries_.begin());
  }
  Entry& e = entries_[address];
  if (e.failures == 0 || now - e.window_start > kWindow) {
    e.failures = 0;
    e.window_start = now;
  }
  ++e.failures;
  if (e.failures <= kFree) return std::chrono::milliseconds(0);
  int doublings = std::min(e.failures - kFree - 1, 6);
  return std::min(std::chrono::milliseconds(100) * (1 << doublings), std::chrono::milliseconds(5000));
}

}  // namespace sigil::auth
