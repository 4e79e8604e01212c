// api/kubernetes/request_info.cc: The request as RBAC sees it (kube-apiserver's RequestInfo), and path and query parsing.
#include <algorithm>

#include "sigil/api/kubernetes/impl.h"
#include "sigil/base/encoding.h"

namespace sigil::kube {

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+' && plus_is_space) {
      out += ' ';
    } else if (c == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(std::string_view target) {
  std::map<std::string, std::string> q;
  size_t qm = target.find('?');
  if (qm == std::string_view::npos) return q;
  std::string_view rest = target.substr(qm + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    size_t eq = kv.find('=');
    std::string k = PercentDecode(kv.substr(0, eq), true);
    std::string v = eq == std::string_view::npos ? "" : PercentDecode(kv.substr(eq + 1), true);
    if (!q.count(k)) q[k] = v;
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return q;
}

std::string Param(const std::map<std::string, std::string>& q, const std::string& k) {
  auto it = q.find(k);
  return it == q.end() ? "" : it->second;
}

bool DepthOk(std::string_view body) { return !JsonDeeperThan(body, kMaxJsonDepth); }

Path SplitPath(std::string_view target) {
  Path p;
  std::string_view path = target.substr(0, target.find('?'));
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    if (i >= path.size()) break;
    size_t j = path.find('/', i);
    std::string s = PercentDecode(path.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i), false);
    if (s.find('/') != std::string::npos || s.find('\0') != std::string::npos) p.bad = true;
    p.seg.push_back(std::move(s));
    i = j == std::string_view::npos ? path.size() : j;
  }
  return p;
}

// The request as RBAC sees it (kube-apiserver's RequestInfoResolver, for the paths sigil
// serves): /api/v1/... and /apis/<group>/<version>/... are resource requests, sigil's history
// paths are the subresources secrets/versions (get) and secrets/rollback (create), anything
// else is a non-resource request on its path.
authz::Attributes KubernetesApi::Impl::RequestAttributes(const http::Request& req) {
  Path p = SplitPath(req.target());
  auto q = ParseQuery(req.target());
  std::vector<std::string> s = p.seg;
  authz::Attributes a;
  std::string method(req.method_string());
  std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return std::tolower(c); });
  size_t start = 0;
  if (s.size() >= 3 && s[0] == "api") {
    start = 2;
  } else if (s.size() >= 4 && s[0] == "apis") {
    a.api_group = s[1];
    start = 3;
  } else if (s.size() >= 7 && s[0] == "sigil" && s[1] == "v1" && s[2] == "namespaces" && s[4] == "secrets") {
    a.namespace_ = s[3];
    a.resource = "secrets";
    a.name = s[5];
    a.subresource = s[6];
    a.verb = s[6] == "rollback" || s[6] == "rotate" ? "create" : (method == "get" ? "get" : method);
    return a;
  } else {
    a.resource_request = false;
    a.verb = method == "head" ? "get" : method;
    a.path = std::string(req.target().substr(0, req.target().find('?')));
    return a;
  }
  std::vector<std::string> rest(s.begin() + static_cast<long>(start), s.end());
  bool watch = ParseBool(Param(q, "watch"));
  if (!rest.empty() && rest[0] == "watch") {
    watch = true;
    rest.erase(rest.begin());
  }
  if (rest.size() >= 3 && rest[0] == "namespaces") {
    a.namespace_ = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  } else if (rest.size() == 2 && rest[0] == "namespaces") {
    a.namespace_ = rest[1];  // a namespace is in itself, as kube-apiserver has it
  }
  if (!rest.empty()) a.resource = rest[0];
  if (rest.size() >= 2) a.name = rest[1];
  if (rest.size() >= 3) a.subresource = rest[2];
  if (method == "get" || method == "head") {
    a.verb = watch ? "watch" : (a.name.empty() ? "list" : "get");
  } else if (method == "post") {
    a.verb = "create";
  } else if (method == "put") {
    a.verb = "update";
  } else if (method == "delete") {
    a.verb = a.name.empty() ? "deletecollection" : "delete";
  } else {
    a.verb = method;
  }
  return a;
}

}  // namespace sigil::kube
