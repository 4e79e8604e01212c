#include "sigil/authz/acl_policy.h"

#include "sigil/authz/hcl.h"
#include "sigil/base/encoding.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <optional>
#include <utility>

namespace sigil::authz {
namespace {

using hcl::Entry;
using hcl::Value;

// A token of the input for an error message: at most 40 bytes, quoted, with quotes, control and
// non-ASCII bytes escaped so nothing the author wrote can forge log lines.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 40;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMax) out += "...";
  return out + "\"";
}

Status ErrorAt(int line, const std::string& message) {
  return InvalidArgumentError(line > 0 ? "line " + std::to_string(line) + ": " + message : message);
}

std::string DepthError() { return "nested deeper than " + std::to_string(kMaxAclPolicyDepth) + " levels"; }

// Each value costs ~100 bytes in the tree, so 1 MiB of `1,1,1,...` would cost ~50 MB without
// this bound; real policies have a few thousand.
constexpr int kMaxElements = 100000;
std::string ElementsError() { return "more than " + std::to_string(kMaxElements) + " values"; }

// ---------------------------------------------------------------------------------------------
// HCL front end: a lexer and a recursive-descent parser for the HCL 1 grammar policies use
// (hashicorp/hcl hcl/parser/parser.go): objectList, objectItem (keys, then "=" value or a
// block), lists whose commas HCL 1 checks only between two values.

enum class Tok { kEof, kIdent, kString, kNumber, kBool, kLBrace, kRBrace, kLBrack, kRBrack, kAssign, kComma };

struct Token {
  Tok type = Tok::kEof;
  int line = 1;
  std::string text;
};

std::string Describe(const Token& t) {
  switch (t.type) {
    case Tok::kEof: return "end of input";
    case Tok::kString: return "string " + Quote(t.text);
    case Tok::kIdent:
    case Tok::kNumber:
    case Tok::kBool: return Quote(t.text);
    case Tok::kLBrace: return "\"{\"";
    case Tok::kRBrace: return "\"}\"";
    case Tok::kLBrack: return "\"[\"";
    case Tok::kRBrack: return "\"]\"";
    case Tok::kAssign: return "\"=\"";
    case Tok::kComma: return "\",\"";
  }
  return "token";
}

bool IsIdentStart(unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; }
bool IsIdentChar(unsigned char c) { return IsIdentStart(c) || std::isdigit(c) || c == '-' || c == '.'; }

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  Result<Token> Next() {
    SIGIL_RETURN_IF_ERROR(SkipSpaceAndComments());
    Token t;
    t.line = line_;
    if (pos_ >= src_.size()) return t;
    const auto c = static_cast<unsigned char>(src_[pos_]);
    const auto next = pos_ + 1 < src_.size() ? static_cast<unsigned char>(src_[pos_ + 1]) : 0;
    switch (c) {
      case '{': t.type = Tok::kLBrace; ++pos_; return t;
      case '}': t.type = Tok::kRBrace; ++pos_; return t;
      case '[': t.type = Tok::kLBrack; ++pos_; return t;
      case ']': t.type = Tok::kRBrack; ++pos_; return t;
      case '=': t.type = Tok::kAssign; ++pos_; return t;
      case ',': t.type = Tok::kComma; ++pos_; return t;
      case '"': return String();
      case ':': return ErrorAt(line_, "unexpected \":\" (HCL assigns with \"=\"; \":\" is for the JSON form)");
      default: break;
    }
    if (std::isdigit(c) || (c == '-' && std::isdigit(next))) return Number();
    if (c == '<' && next == '<') return ErrorAt(line_, "heredoc strings are not supported; use a quoted string");
    if (IsIdentStart(c)) {
      size_t start = pos_;
      while (pos_ < src_.size() && IsIdentChar(static_cast<unsigned char>(src_[pos_]))) ++pos_;
      t.text = std::string(src_.substr(start, pos_ - start));
      t.type = (t.text == "true" || t.text == "false") ? Tok::kBool : Tok::kIdent;
      return t;
    }
    return ErrorAt(line_, "unexpected character " + Quote(src_.substr(pos_, 1)));
  }

 private:
  Status SkipSpaceAndComments() {
    while (pos_ < src_.size()) {
      const char c = src_[pos_];
      if (c == '\n') {
        ++line_;
        ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '#' || src_.substr(pos_).starts_with("//")) {
        while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
      } else if (src_.substr(pos_).starts_with("/*")) {
        const int start_line = line_;
        size_t end = src_.find("*/", pos_ + 2);
        if (end == std::string_view::npos) return ErrorAt(start_line, "unterminated /* comment");
        for (size_t i = pos_; i < end; ++i) line_ += src_[i] == '\n';
        pos_ = end + 2;
      } else {
        break;
      }
    }
    return OkStatus();
  }

  // A quoted string (the opening quote at pos_), unescaped. As in HCL 1, a string cannot span
  // lines.
  Result<Token> String() {
    Token t;
    t.type = Tok::kString;
    t.line = line_;
    ++pos_;
    while (true) {
      if (pos_ >= src_.size() || src_[pos_] == '\n') return ErrorAt(t.line, "unterminated string");
      const char c = src_[pos_++];
      if (c == '"') return t;
      if (c != '\\') {
        t.text += c;
        continue;
      }
      if (pos_ >= src_.size()) return ErrorAt(t.line, "unterminated string");
      const char e = src_[pos_++];
      switch (e) {
        case 'n': t.text += '\n'; break;
        case 't': t.text += '\t'; break;
        case 'r': t.text += '\r'; break;
        case 'a': t.text += '\a'; break;
        case 'b': t.text += '\b'; break;
        case 'f': t.text += '\f'; break;
        case 'v': t.text += '\v'; break;
        case '\\': t.text += '\\'; break;
        case '"': t.text += '"'; break;
        case 'x': SIGIL_RETURN_IF_ERROR(HexEscape(t, 2)); break;
        case 'u': SIGIL_RETURN_IF_ERROR(HexEscape(t, 4)); break;
        case 'U': SIGIL_RETURN_IF_ERROR(HexEscape(t, 8)); break;
        default:
          if (e >= '0' && e <= '7' && pos_ + 1 < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7' &&
              src_[pos_ + 1] >= '0' && src_[pos_ + 1] <= '7') {
            int v = (e - '0') * 64 + (src_[pos_] - '0') * 8 + (src_[pos_ + 1] - '0');
            if (v > 255) return ErrorAt(t.line, "invalid octal escape in a string");
            t.text += static_cast<char>(v);
            pos_ += 2;
            break;
          }
          return ErrorAt(t.line, "invalid escape " + Quote(std::string("\\") + e) + " in a string");
      }
    }
  }

  Status HexEscape(Token& t, int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      if (pos_ >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[pos_]))) {
        return ErrorAt(t.line, "invalid hex escape in a string");
      }
      const char h = src_[pos_++];
      v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
    }
    if (digits == 2) {
      t.text += static_cast<char>(v);
    } else {
      if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return ErrorAt(t.line, "invalid unicode escape in a string");
      AppendUtf8(t.text, v);
    }
    return OkStatus();
  }

  // A decimal or hex number, optionally negative, with an optional fraction and exponent.
  Result<Token> Number() {
    Token t;
    t.type = Tok::kNumber;
    t.line = line_;
    const size_t start = pos_;
    auto digits = [&](bool hex) {
      size_t n = 0;
      while (pos_ < src_.size() && (hex ? std::isxdigit(static_cast<unsigned char>(src_[pos_]))
                                        : std::isdigit(static_cast<unsigned char>(src_[pos_])))) {
        ++pos_;
        ++n;
      }
      return n;
    };
    if (src_[pos_] == '-') ++pos_;
    if (src_.substr(pos_).starts_with("0x") || src_.substr(pos_).starts_with("0X")) {
      pos_ += 2;
      if (digits(true) == 0) return ErrorAt(line_, "invalid number");
    } else {
      digits(false);
      if (pos_ < src_.size() && src_[pos_] == '.') {
        ++pos_;
        if (digits(false) == 0) return ErrorAt(line_, "invalid number");
      }
      if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
        ++pos_;
        if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) ++pos_;
        if (digits(false) == 0) return ErrorAt(line_, "invalid number");
      }
    }
    if (pos_ < src_.size() && IsIdentChar(static_cast<unsigned char>(src_[pos_]))) {
      return ErrorAt(line_,
                     "invalid number " + Quote(src_.substr(start, pos_ - start + 1)) + " (quote durations such as \"30s\")");
    }
    t.text = std::string(src_.substr(start, pos_ - start));
    return t;
  }

  std::string_view src_;
  size_t pos_ = 0;
  int line_ = 1;
};

class HclParser {
 public:
  explicit HclParser(std::string_view src) : lex_(src) {}

  Result<std::vector<Entry>> ParseFile() {
    SIGIL_RETURN_IF_ERROR(Advance());
    return ObjectList(false, 0);
  }

 private:
  Status Advance() {
    SIGIL_ASSIGN_OR_RETURN(tok_, lex_.Next());
    return OkStatus();
  }

  // Items up to end of input (top level) or up to the "}" that closes a block, which is left
  // for the caller. Items may be separated by commas.
  Result<std::vector<Entry>> ObjectList(bool braced, int depth) {
    if (depth > kMaxAclPolicyDepth) return ErrorAt(tok_.line, DepthError());
    std::vector<Entry> entries;
    while (true) {
      if (tok_.type == Tok::kEof) {
        if (braced) return ErrorAt(tok_.line, "unexpected end of input: missing \"}\"");
        break;
      }
      if (tok_.type == Tok::kRBrace) {
        if (braced) break;
        return ErrorAt(tok_.line, "unexpected \"}\"");
      }
      SIGIL_RETURN_IF_ERROR(Item(entries, depth));
      if (tok_.type == Tok::kComma) SIGIL_RETURN_IF_ERROR(Advance());
    }
    return entries;
  }

  // `key = value` or `key "label"... { ... }`.
  Status Item(std::vector<Entry>& out, int depth) {
    std::vector<std::pair<std::string, int>> keys;
    while (tok_.type == Tok::kIdent || tok_.type == Tok::kString) {
      keys.emplace_back(std::move(tok_.text), tok_.line);
      SIGIL_RETURN_IF_ERROR(Advance());
    }
    if (keys.empty()) return ErrorAt(tok_.line, "expected a key, got " + Describe(tok_));
    if (++elements_ > kMaxElements) return ErrorAt(tok_.line, ElementsError());
    // Vault would read `path { ... }` as a rule for the path "path"; nobody means that.
    if (depth == 0 && keys.size() == 1 && keys[0].first == "path") {
      return ErrorAt(keys[0].second, "expected a quoted path string after \"path\"");
    }
    const bool path_block = keys.size() == 2 && keys[0].first == "path";
    Value value;
    if (tok_.type == Tok::kAssign && keys.size() == 1) {
      SIGIL_RETURN_IF_ERROR(Advance());
      SIGIL_ASSIGN_OR_RETURN(value, ParseValue(depth + 1));
    } else if (tok_.type == Tok::kLBrace) {
      SIGIL_ASSIGN_OR_RETURN(value, Block(depth + 1));
      // `a "b" "c" { ... }` is a = {b = {c = {...}}}, as HCL 1 reads it.
      for (size_t i = keys.size() - 1; i >= 1; --i) {
        Value outer;
        outer.kind = Value::Kind::kObject;
        outer.line = keys[i].second;
        outer.entries.push_back(Entry{std::move(keys[i].first), keys[i].second, std::move(value)});
        value = std::move(outer);
      }
    } else if (path_block) {
      return ErrorAt(tok_.line, "expected \"{\" after the path string, got " + Describe(tok_));
    } else if (keys.size() > 1) {
      return ErrorAt(tok_.line, "expected \"{\" after " + Quote(keys.back().first) + ", got " + Describe(tok_));
    } else {
      return ErrorAt(tok_.line, "expected \"=\" or \"{\" after " + Quote(keys[0].first) + ", got " + Describe(tok_));
    }
    out.push_back(Entry{std::move(keys[0].first), keys[0].second, std::move(value)});
    return OkStatus();
  }

  // `{ items }`, the "{" being the current token.
  Result<Value> Block(int depth) {
    Value v;
    v.kind = Value::Kind::kObject;
    v.line = tok_.line;
    SIGIL_RETURN_IF_ERROR(Advance());
    SIGIL_ASSIGN_OR_RETURN(v.entries, ObjectList(true, depth));
    SIGIL_RETURN_IF_ERROR(Advance());  // the "}"
    return v;
  }

  Result<Value> ParseValue(int depth) {
    if (depth > kMaxAclPolicyDepth) return ErrorAt(tok_.line, DepthError());
    if (++elements_ > kMaxElements) return ErrorAt(tok_.line, ElementsError());
    Value v;
    v.line = tok_.line;
    switch (tok_.type) {
      case Tok::kString: v.kind = Value::Kind::kString; break;
      case Tok::kNumber: v.kind = Value::Kind::kNumber; break;
      case Tok::kBool: v.kind = Value::Kind::kBool; break;
      case Tok::kLBrace: return Block(depth);
      case Tok::kLBrack: return List(depth);
      default: return ErrorAt(tok_.line, "expected a value, got " + Describe(tok_));
    }
    v.text = std::move(tok_.text);
    SIGIL_RETURN_IF_ERROR(Advance());
    return v;
  }

  // `[ values ]`, the "[" being the current token. HCL 1 wants a comma between two values and
  // ignores any other comma, so `[,"a",,]` is ["a"].
  Result<Value> List(int depth) {
    Value list;
    list.kind = Value::Kind::kList;
    list.line = tok_.line;
    SIGIL_RETURN_IF_ERROR(Advance());
    bool need_comma = false;
    while (true) {
      if (tok_.type == Tok::kRBrack) {
        SIGIL_RETURN_IF_ERROR(Advance());
        return list;
      }
      if (tok_.type == Tok::kComma) {
        need_comma = false;
        SIGIL_RETURN_IF_ERROR(Advance());
        continue;
      }
      if (tok_.type == Tok::kEof) return ErrorAt(tok_.line, "unexpected end of input: missing \"]\"");
      if (need_comma) return ErrorAt(tok_.line, "expected \",\" or \"]\" in a list, got " + Describe(tok_));
      SIGIL_ASSIGN_OR_RETURN(Value item, ParseValue(depth + 1));
      list.items.push_back(std::move(item));
      need_comma = true;
    }
  }

  Lexer lex_;
  Token tok_;
  int elements_ = 0;  // values parsed so far
};

// ---------------------------------------------------------------------------------------------
// JSON front end.

using OrderedJson = nlohmann::ordered_json;

// nlohmann's parser does not bound nesting, and the conversion below recurses, so the depth is
// checked on the raw text first.
bool JsonTooDeep(std::string_view s) { return JsonDeeperThan(s, kMaxAclPolicyDepth); }

Result<Value> FromJson(const OrderedJson& j, int& elements) {
  if (++elements > kMaxElements) return InvalidArgumentError(ElementsError());
  Value v;
  switch (j.type()) {
    case OrderedJson::value_t::string: v.text = j.get<std::string>(); return v;
    case OrderedJson::value_t::boolean:
      v.kind = Value::Kind::kBool;
      v.text = j.get<bool>() ? "true" : "false";
      return v;
    case OrderedJson::value_t::number_integer:
    case OrderedJson::value_t::number_unsigned:
    case OrderedJson::value_t::number_float:
      v.kind = Value::Kind::kNumber;
      v.text = j.dump();
      return v;
    case OrderedJson::value_t::array:
      v.kind = Value::Kind::kList;
      for (const OrderedJson& item : j) {
        SIGIL_ASSIGN_OR_RETURN(Value converted, FromJson(item, elements));
        v.items.push_back(std::move(converted));
      }
      return v;
    case OrderedJson::value_t::object:
      v.kind = Value::Kind::kObject;
      for (const auto& [key, item] : j.items()) {
        SIGIL_ASSIGN_OR_RETURN(Value converted, FromJson(item, elements));
        v.entries.push_back(Entry{key, 0, std::move(converted)});
      }
      return v;
    default: return InvalidArgumentError("null is not a valid value in a policy");
  }
}

Result<std::vector<Entry>> ParseJson(std::string_view text) {
  if (JsonTooDeep(text)) return InvalidArgumentError(DepthError());
  OrderedJson j;
  // Repeated keys: nlohmann keeps the last, while Vault's reader keeps every one and merges
  // them (so a repeated path with deny still denies). Keeping the last could grant more than
  // Vault, so a repeated key is refused.
  std::vector<std::set<std::string>> open_objects;
  std::string repeated;
  auto watch_keys = [&](int, OrderedJson::parse_event_t event, OrderedJson& parsed) {
    if (event == OrderedJson::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == OrderedJson::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == OrderedJson::parse_event_t::key && parsed.is_string() && !open_objects.empty()) {
      if (!open_objects.back().insert(parsed.get<std::string>()).second && repeated.empty()) repeated = parsed.get<std::string>();
    }
    return true;
  };
  try {
    j = OrderedJson::parse(text, watch_keys);
  } catch (const nlohmann::json::parse_error& e) {
    // e.what() quotes the input; report only where. e.byte counts from 1 and is one past the
    // end for a truncated input.
    const size_t end = std::min(e.byte > 0 ? static_cast<size_t>(e.byte - 1) : size_t{0}, text.size());
    int line = 1;
    for (size_t i = 0; i < end; ++i) line += text[i] == '\n';
    return ErrorAt(line, "invalid JSON");
  } catch (const nlohmann::json::exception&) {
    return InvalidArgumentError("invalid JSON");
  }
  if (!repeated.empty()) {
    return InvalidArgumentError("the key \"" + repeated.substr(0, 64) + "\" appears twice in one object: sigil refuses "
                                "repeated keys in a JSON policy (Vault merges them)");
  }
  int elements = 0;
  SIGIL_ASSIGN_OR_RETURN(Value top, FromJson(j, elements));
  if (top.kind != Value::Kind::kObject) return InvalidArgumentError("a JSON policy must be an object");
  return std::move(top.entries);
}

// ---------------------------------------------------------------------------------------------
// Semantics (vault/policy.go parseACLPolicyWithTemplating and parsePaths).

uint32_t GrantBit(std::string_view name) {
  static constexpr std::pair<std::string_view, uint32_t> kNames[] = {
      {"create", kCapCreate}, {"read", kCapRead}, {"update", kCapUpdate},       {"patch", kCapPatch},
      {"delete", kCapDelete}, {"list", kCapList}, {"sudo", kCapSudo},           {"subscribe", kCapSubscribe},
      {"recover", kCapRecover}};
  for (const auto& [n, bit] : kNames) {
    if (n == name) return bit;
  }
  return 0;
}

// go-secure-stdlib's parseutil.ParseDurationSecond: a number of seconds, "<n>d", an integer
// string of seconds, or a Go duration ("1h30m", "300s", "1.5h"). Seconds, or nullopt.
std::optional<double> ParseDurationSeconds(const Value& v) {
  if (v.kind == Value::Kind::kNumber) {
    char* end = nullptr;
    double d = std::strtod(v.text.c_str(), &end);
    if (end == v.text.c_str() || *end != '\0' || !std::isfinite(d)) return std::nullopt;
    return d;
  }
  if (v.kind != Value::Kind::kString) return std::nullopt;
  std::string_view s = v.text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (s.empty()) return 0.0;
  auto integer = [](std::string_view t) -> std::optional<double> {
    size_t i = (!t.empty() && (t[0] == '-' || t[0] == '+')) ? 1 : 0;
    if (i == t.size() || t.size() > 19) return std::nullopt;
    for (size_t k = i; k < t.size(); ++k) {
      if (!std::isdigit(static_cast<unsigned char>(t[k]))) return std::nullopt;
    }
    return std::strtod(std::string(t).c_str(), nullptr);
  };
  if (s.back() == 'd') {
    auto days = integer(s.substr(0, s.size() - 1));
    if (!days) return std::nullopt;
    return *days * 86400;
  }
  if (auto secs = integer(s)) return secs;
  // time.ParseDuration.
  double sign = 1;
  if (s.front() == '-' || s.front() == '+') {
    sign = s.front() == '-' ? -1 : 1;
    s.remove_prefix(1);
  }
  if (s == "0") return 0.0;
  if (s.empty()) return std::nullopt;
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"\xce\xbcs", 1e-6}, {"ms", 1e-3}, {"s", 1}, {"m", 60}, {"h", 3600}};
  double total = 0;
  while (!s.empty()) {
    size_t n = 0;
    while (n < s.size() && (std::isdigit(static_cast<unsigned char>(s[n])) || s[n] == '.')) ++n;
    if (n == 0 || s.substr(0, n) == ".") return std::nullopt;
    const double number = std::strtod(std::string(s.substr(0, n)).c_str(), nullptr);
    s.remove_prefix(n);
    size_t u = 0;
    while (u < s.size() && !std::isdigit(static_cast<unsigned char>(s[u])) && s[u] != '.') ++u;
    const std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    bool known = false;
    for (const auto& [name, scale] : kUnits) {
      if (name == unit) {
        total += number * scale;
        known = true;
      }
    }
    if (!known) return std::nullopt;
  }
  return sign * total;
}

bool IsStringList(const Value& v) {
  if (v.kind != Value::Kind::kList) return false;
  for (const Value& item : v.items) {
    if (item.kind != Value::Kind::kString) return false;
  }
  return true;
}

class PolicyBuilder {
 public:
  explicit PolicyBuilder(AclPolicy& policy) : policy_(policy) {}

  Status Top(const std::vector<Entry>& top) {
    for (const Entry& e : top) {
      if (e.key == "name") {
        if (e.value.kind == Value::Kind::kList || e.value.kind == Value::Kind::kObject) {
          return ErrorAt(e.line, "\"name\" must be a string");
        }
      } else if (e.key == "path") {
        // HCL's path blocks and JSON's {"path": {...}} are objects; HCL 1's JSON reader also
        // takes {"path": [{...}, {...}]}.
        std::vector<const Value*> groups;
        if (e.value.kind == Value::Kind::kObject) groups.push_back(&e.value);
        if (e.value.kind == Value::Kind::kList) {
          for (const Value& item : e.value.items) groups.push_back(&item);
        }
        if (groups.empty()) return ErrorAt(e.line, "\"path\" must be followed by a quoted path and a block");
        for (const Value* group : groups) {
          if (group->kind != Value::Kind::kObject) {
            return ErrorAt(e.line, "\"path\" must be followed by a quoted path and a block");
          }
          for (const Entry& p : group->entries) SIGIL_RETURN_IF_ERROR(PathBlocks(p));
        }
      } else {
        return ErrorAt(e.line, "invalid key " + Quote(e.key) + " (a policy holds only \"name\" and \"path\" blocks)");
      }
    }
    return OkStatus();
  }

 private:
  Status PathBlocks(const Entry& p) {
    if (p.value.kind == Value::Kind::kObject) return PathBlock(p.key, p.line, p.value);
    const auto is_block = [](const Value& v) { return v.kind == Value::Kind::kObject; };
    if (p.value.kind == Value::Kind::kList && !p.value.items.empty() &&
        std::all_of(p.value.items.begin(), p.value.items.end(), is_block)) {
      for (const Value& item : p.value.items) SIGIL_RETURN_IF_ERROR(PathBlock(p.key, p.line, item));
      return OkStatus();
    }
    return ErrorAt(p.line, "path " + Quote(p.key) + " must be followed by a block { ... }");
  }

  Status PathBlock(const std::string& written, int line, const Value& body) {
    const std::string where = "path " + Quote(written) + ": ";
    std::vector<std::pair<std::string_view, int>> names;
    const Value* legacy = nullptr;
    const Value* min_ttl = nullptr;
    const Value* max_ttl = nullptr;
    std::vector<std::string> unenforced;
    auto note = [&](const std::string& key) {
      if (std::find(unenforced.begin(), unenforced.end(), key) == unenforced.end()) unenforced.push_back(key);
    };
    for (const Entry& e : body.entries) {
      const Value& v = e.value;
      const int at = e.line > 0 ? e.line : line;
      if (e.key == "capabilities") {
        // HCL 1 appends a repeated list key's values.
        if (!IsStringList(v)) return ErrorAt(at, where + "\"capabilities\" must be a list of strings");
        for (const Value& item : v.items) names.emplace_back(item.text, item.line);
      } else if (e.key == "policy") {
        if (v.kind != Value::Kind::kString) return ErrorAt(at, where + "\"policy\" must be a string");
        legacy = &v;  // the last one wins, as HCL 1 decodes a repeated string
      } else if (e.key == "comment") {
        continue;  // Vault stores it and never reads it
      } else if (e.key == "allowed_parameters" || e.key == "denied_parameters") {
        if (v.kind != Value::Kind::kObject) return ErrorAt(at, where + Quote(e.key) + " must be a map of lists");
        for (const Entry& param : v.entries) {
          if (param.value.kind != Value::Kind::kList) {
            return ErrorAt(param.line > 0 ? param.line : at, where + Quote(e.key) + " must be a map of lists");
          }
        }
        note(e.key);
      } else if (e.key == "required_parameters" || e.key == "mfa_methods" || e.key == "subscribe_event_types") {
        if (!IsStringList(v)) return ErrorAt(at, where + Quote(e.key) + " must be a list of strings");
        note(e.key);
      } else if (e.key == "min_wrapping_ttl" || e.key == "max_wrapping_ttl") {
        (e.key == "min_wrapping_ttl" ? min_ttl : max_ttl) = &v;
        note(e.key);
      } else if (e.key == "control_group") {
        if (v.kind != Value::Kind::kObject) return ErrorAt(at, where + "\"control_group\" must be a block");
        note(e.key);
      } else {
        return ErrorAt(at, where + "invalid key " + Quote(e.key));
      }
    }

    AclRule rule;
    std::string_view path = written;
    if (path.starts_with('/')) path.remove_prefix(1);
    // Vault substitutes identity templates per token; taken literally they would grant one
    // shared path instead of one per entity.
    if (path.find("{{") != std::string_view::npos) {
      return ErrorAt(line, where + "templated paths (\"{{identity...}}\") are not supported by sigil");
    }
    if (path.find("+*") != std::string_view::npos) {
      return ErrorAt(line, "path " + Quote(path) + ": invalid use of wildcards ('+*' is forbidden)");
    }
    rule.has_plus = path == "+" || path.find("/+") != std::string_view::npos || path.starts_with("+/");
    if (path.ends_with('*')) {
      path.remove_suffix(1);
      rule.prefix = true;
    }
    rule.path = std::string(path);

    if (legacy != nullptr && !legacy->text.empty()) {
      const std::string& p = legacy->text;
      static constexpr std::string_view kWrite[] = {"create", "read", "update", "delete", "list"};
      if (p == "deny") {
        names = {{"deny", legacy->line}};
      } else if (p == "read") {
        names.emplace_back("read", legacy->line);
        names.emplace_back("list", legacy->line);
      } else if (p == "write" || p == "sudo") {
        for (std::string_view n : kWrite) names.emplace_back(n, legacy->line);
        if (p == "sudo") names.emplace_back("sudo", legacy->line);
      } else {
        return ErrorAt(legacy->line > 0 ? legacy->line : line, where + "invalid policy " + Quote(p));
      }
    }

    // Vault stops at the first "deny": the rule is deny alone, and nothing after it (names,
    // TTLs, parameters) is looked at.
    bool deny = false;
    for (const auto& [name, name_line] : names) {
      if (name == "deny") {
        rule.capabilities = kCapDeny;
        deny = true;
        break;
      }
      const uint32_t bit = GrantBit(name);
      if (bit == 0) return ErrorAt(name_line > 0 ? name_line : line, where + "invalid capability " + Quote(name));
      rule.capabilities |= bit;
    }
    if (!deny) {
      std::optional<double> min_s, max_s;
      if (min_ttl != nullptr && !(min_s = ParseDurationSeconds(*min_ttl))) {
        return ErrorAt(min_ttl->line > 0 ? min_ttl->line : line, where + "invalid duration in \"min_wrapping_ttl\"");
      }
      if (max_ttl != nullptr && !(max_s = ParseDurationSeconds(*max_ttl))) {
        return ErrorAt(max_ttl->line > 0 ? max_ttl->line : line, where + "invalid duration in \"max_wrapping_ttl\"");
      }
      if (min_s && max_s && *min_s != 0 && *max_s != 0 && *max_s < *min_s) {
        return ErrorAt(line, where + "max_wrapping_ttl cannot be less than min_wrapping_ttl");
      }
      for (const std::string& key : unenforced) {
        policy_.warnings.push_back(where + key + " is accepted but not enforced by sigil");
      }
    }
    policy_.rules.push_back(std::move(rule));
    return OkStatus();
  }

  AclPolicy& policy_;
};

}  // namespace

namespace hcl {

Result<std::vector<Entry>> Parse(std::string_view text) {
  if (text.size() > kMaxAclPolicyBytes) return InvalidArgumentError("policy is larger than 1 MiB");
  size_t first = text.find_first_not_of(" \t\r\n\v\f");
  if (first != std::string_view::npos && text[first] == '{') return ParseJson(text);
  return HclParser(text).ParseFile();
}

}  // namespace hcl

Result<AclPolicy> ParseAclPolicy(std::string_view name, std::string_view text) {
  SIGIL_ASSIGN_OR_RETURN(std::vector<Entry> top, hcl::Parse(text));
  AclPolicy policy;
  policy.name = std::string(name);
  SIGIL_RETURN_IF_ERROR(PolicyBuilder(policy).Top(top));
  return policy;
}

std::vector<std::string> CapabilityList(uint32_t caps) {
  // Vault's ACL.Capabilities order.
  static constexpr std::pair<uint32_t, const char*> kOrder[] = {
      {kCapSudo, "sudo"},     {kCapRead, "read"},   {kCapList, "list"},           {kCapUpdate, "update"},
      {kCapDelete, "delete"}, {kCapCreate, "create"}, {kCapPatch, "patch"},      {kCapSubscribe, "subscribe"},
      {kCapRecover, "recover"}};
  std::vector<std::string> out;
  if (caps & kCapDeny) return {"deny"};
  for (const auto& [bit, n] : kOrder) {
    if (caps & bit) out.emplace_back(n);
  }
  if (out.empty()) out.emplace_back("deny");
  return out;
}

std::string CapabilityNames(uint32_t caps) {
  std::string out;
  for (const std::string& n : CapabilityList(caps)) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace sigil::authz
