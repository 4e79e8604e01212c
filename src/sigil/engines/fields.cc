#include "sigil/engines/fields.h"

#include <charconv>
#include <cmath>

#include "sigil/base/clock.h"

namespace sigil::engines {
namespace {

Status WrongType(std::string_view name, std::string_view want) {
  return InvalidArgumentError("error converting input for field \"" + std::string(name) + "\": expected " + std::string(want));
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view s) {
  size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (p < pattern.size() && pattern[p] == s[i]) {
      ++p;
      ++i;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::optional<bool> ParseBool(std::string_view s) {
  if (s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "false" || s == "FALSE" || s == "False") return false;
  return std::nullopt;
}

std::optional<std::chrono::seconds> ParseDuration(std::string_view s) { return ParseGoDuration(s, kMaxDurationSeconds); }

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

Result<std::optional<std::vector<std::string>>> StringSliceField(const Json& body, std::string_view name) {
  auto it = body.find(name);
  using Out = std::optional<std::vector<std::string>>;
  if (it == body.end() || it->is_null()) return Out();
  if (it->is_string()) {
    if (it->get_ref<const std::string&>().empty()) return Out(std::vector<std::string>());
    return Out(std::vector<std::string>{it->get<std::string>()});
  }
  if (it->is_array()) {
    std::vector<std::string> out;
    for (const Json& e : *it) {
      if (!e.is_string()) return WrongType(name, "a list of strings");
      out.push_back(e.get<std::string>());
    }
    return Out(std::move(out));
  }
  return WrongType(name, "a list of strings");
}

}  // namespace sigil::engines
