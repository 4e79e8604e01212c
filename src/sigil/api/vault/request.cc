#include "sigil/api/vault/request.h"

#include "sigil/base/clock.h"
#include "sigil/base/encoding.h"

#include <charconv>
#include <cmath>

namespace sigil::vault {
namespace {

// Percent-decoding; '+' is a space only in a query.
std::string UrlDecode(std::string_view s, bool query) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && p == s.data() + i + 3) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
    }
    out += query && s[i] == '+' ? ' ' : s[i];
  }
  return out;
}


}  // namespace

bool TooDeep(std::string_view text) { return JsonDeeperThan(text, kMaxBodyDepth); }


std::string_view TokenOf(const http::Request& req) {
  if (auto it = req.find("X-Vault-Token"); it != req.end() && !it->value().empty()) {
    return std::string_view(it->value().data(), it->value().size());
  }
  if (auto it = req.find(boost::beast::http::field::authorization); it != req.end()) {
    std::string_view v(it->value().data(), it->value().size());
    if (v.size() > 7 && (v.starts_with("Bearer ") || v.starts_with("bearer "))) return v.substr(7);
  }
  return {};
}

Result<Request> Decode(const http::Request& req) {
  Request r;
  std::string_view target(req.target().data(), req.target().size());
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (!path.starts_with("/v1/")) return NotFoundError("unsupported path");
  r.path = UrlDecode(path.substr(4), false);
  if (r.path.ends_with(".")) return NotFoundError("unsupported path");
  // One spelling per path: the ACL, the audit trail and the handlers must all see the same one
  // (sys/mounts//prod once slipped past a deny on sys/mounts/prod* and reached the handler as
  // sys/mounts/prod). Vault's HTTP router never passes such paths on either. Empty segments
  // (but a trailing slash), "." and ".." segments and control characters are refused.
  for (size_t start = 0; start < r.path.size();) {
    size_t slash = r.path.find('/', start);
    std::string_view seg = std::string_view(r.path).substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if ((seg.empty() && slash != std::string::npos) || seg == "." || seg == "..") {
      return InvalidArgumentError("invalid request path: empty, \".\" or \"..\" segment");
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  for (char c : r.path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return InvalidArgumentError("invalid request path: control character");
  }
  if (q != std::string_view::npos) {
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
      size_t amp = rest.find('&');
      std::string_view kv = rest.substr(0, amp);
      size_t eq = kv.find('=');
      std::string key = UrlDecode(kv.substr(0, eq), true);
      std::string value = eq == std::string_view::npos ? "" : UrlDecode(kv.substr(eq + 1), true);
      if (!key.empty()) r.query[key] = value;
      if (amp == std::string_view::npos) break;
      rest = rest.substr(amp + 1);
    }
  }
  // Vault answers ?help=<anything> with the path's help text instead of running the request;
  // sigil has no help texts, and must not run the request the client meant to ask about.
  if (auto it = r.query.find("help"); it != r.query.end() && !it->second.empty()) {
    return InvalidArgumentError("help is not supported by sigil");
  }
  std::string_view method(req.method_string().data(), req.method_string().size());
  if (method == "GET" || method == "HEAD") {
    r.op = Operation::kRead;
    r.head = method == "HEAD";
    if (auto it = r.query.find("list"); it != r.query.end() && ParseBool(it->second).value_or(false)) r.op = Operation::kList;
  } else if (method == "LIST") {
    r.op = Operation::kList;
  } else if (method == "PUT" || method == "POST") {
    r.op = Operation::kWrite;
  } else if (method == "DELETE") {
    r.op = Operation::kDelete;
  } else if (method == "PATCH") {
    r.op = Operation::kPatch;
  } else {
    return Status(StatusCode::kUnimplemented, "unsupported operation");
  }
  r.token = std::string(TokenOf(req));
  std::string_view body(req.body().data(), req.body().size());
  size_t first = body.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos) {
    if (TooDeep(body)) return InvalidArgumentError("failed to parse JSON input: nested deeper than " + std::to_string(kMaxBodyDepth) + " levels");
    Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return InvalidArgumentError("failed to parse JSON input: the body must be a JSON object");
    r.body = std::move(j);
  }
  return r;
}


}  // namespace sigil::vault
