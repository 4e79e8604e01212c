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

Status WrongType(std::string_view name, std::string_view want) {
  return InvalidArgumentError("error converting input for field \"" + std::string(name) + "\": expected " + std::string(want));
}

}  // namespace

bool TooDeep(std::string_view text) { return JsonDeeperThan(text, kMaxBodyDepth); }

std::optional<bool> ParseBool(std::string_view s) {
  if (s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "false" || s == "FALSE" || s == "False") return false;
  return std::nullopt;
}

std::optional<std::chrono::seconds> ParseDuration(std::string_view s) { return ParseGoDuration(s, kMaxDurationSeconds); }

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

Result<std::optional<std::string>> StringField(const Json& body, std::string_view name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (it->is_number_integer()) return std::optional<std::string>(std::to_string(it->get<int64_t>()));
  if (it->is_boolean()) return std::optional<std::string>(it->get<bool>() ? "true" : "false");
  return WrongType(name, "a string");
}

Result<std::optional<bool>> BoolField(const Json& body, std::string_view name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<bool>();
  if (it->is_boolean()) return std::optional<bool>(it->get<bool>());
  if (it->is_number_integer()) return std::optional<bool>(it->get<int64_t>() != 0);
  if (it->is_string()) {
    if (std::optional<bool> b = ParseBool(it->get_ref<const std::string&>())) return std::optional<bool>(*b);
    if (it->get_ref<const std::string&>().empty()) return std::optional<bool>(false);
  }
  return WrongType(name, "a bool");
}

Result<std::optional<int64_t>> IntField(const Json& body, std::string_view name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<int64_t>();
  if (it->is_number_integer()) return std::optional<int64_t>(it->get<int64_t>());
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e18) return std::optional<int64_t>(static_cast<int64_t>(d));
  }
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) return std::optional<int64_t>(v);
  }
  return WrongType(name, "an integer");
}

Result<std::optional<std::chrono::seconds>> DurationField(const Json& body, std::string_view name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<std::chrono::seconds>();
  if (it->is_number_integer() && it->get<int64_t>() >= 0 && it->get<int64_t>() <= kMaxDurationSeconds) {
    return std::optional<std::chrono::seconds>(it->get<int64_t>());
  }
  if (it->is_number_float() && std::isfinite(it->get<double>()) && it->get<double>() >= 0 && it->get<double>() <= kMaxDurationSeconds) {
    return std::optional<std::chrono::seconds>(static_cast<int64_t>(it->get<double>()));
  }
  if (it->is_string()) {
    if (it->get_ref<const std::string&>().empty()) return std::optional<std::chrono::seconds>(std::chrono::seconds(0));
    if (auto d = ParseDuration(it->get_ref<const std::string&>())) return std::optional<std::chrono::seconds>(*d);
  }
  return WrongType(name, "a duration (seconds, or a duration string such as \"1h30m\")");
}

Result<std::optional<std::vector<std::string>>> ListField(const Json& body, std::string_view name) {
  auto it = body.find(name);
  using Out = std::optional<std::vector<std::string>>;
  if (it == body.end() || it->is_null()) return Out();
  std::vector<std::string> out;
  auto add = [&out](std::string_view v) {
    size_t b = v.find_first_not_of(" \t");
    size_t e = v.find_last_not_of(" \t");
    if (b != std::string_view::npos) out.emplace_back(v.substr(b, e - b + 1));
  };
  if (it->is_string()) {
    std::string_view s = it->get_ref<const std::string&>();
    while (true) {
      size_t comma = s.find(',');
      add(s.substr(0, comma));
      if (comma == std::string_view::npos) break;
      s = s.substr(comma + 1);
    }
    return Out(std::move(out));
  }
  if (it->is_array()) {
    for (const Json& e : *it) {
      if (!e.is_string()) return WrongType(name, "a list of strings");
      add(e.get_ref<const std::string&>());
    }
    return Out(std::move(out));
  }
  return WrongType(name, "a list of strings");
}

}  // namespace sigil::vault
