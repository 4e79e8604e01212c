#include "sigil/registry/selectors.h"

namespace sigil::registry {
namespace {

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && s[b] == ' ') ++b;
  while (e > b && s[e - 1] == ' ') --e;
  return std::string(s.substr(b, e - b));
}

// Splits on commas that are not inside parentheses.
std::vector<std::string> SplitTop(const std::string& s) {
  std::vector<std::string> out;
  int depth = 0;
  std::string cur;
  for (char c : s) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

bool ValidKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '/';
}

bool ValidKey(const std::string& k) {
  if (k.empty() || k.size() > 317) return false;
  for (char c : k) {
    if (!ValidKeyChar(c)) return false;
  }
  return true;
}

}  // namespace

Result<LabelSelector> LabelSelector::Parse(const std::string& text) {
  LabelSelector sel;
  if (Trim(text).empty()) return sel;
  for (const std::string& raw : SplitTop(text)) {
    std::string part = Trim(raw);
    if (part.empty()) return InvalidArgumentError("unable to parse requirement: found '', expected: identifier");
    Requirement r;
    if (part[0] == '!') {
      r.key = Trim(part.substr(1));
      r.op = Requirement::Op::kNotExists;
    } else if (size_t p = part.find("!="); p != std::string::npos) {
      r.key = Trim(part.substr(0, p));
      r.op = Requirement::Op::kNotEquals;
      r.values.insert(Trim(part.substr(p + 2)));
    } else if (size_t q = part.find("=="); q != std::string::npos) {
      r.key = Trim(part.substr(0, q));
      r.op = Requirement::Op::kEquals;
      r.values.insert(Trim(part.substr(q + 2)));
    } else if (size_t e = part.find('='); e != std::string::npos) {
      r.key = Trim(part.substr(0, e));
      r.op = Requirement::Op::kEquals;
      r.values.insert(Trim(part.substr(e + 1)));
    } else if (size_t open = part.find('('); open != std::string::npos) {
      std::string head = Trim(part.substr(0, open));
      if (part.back() != ')') return InvalidArgumentError("unable to parse requirement: found '" + part + "', expected: ')'");
      size_t sp = head.rfind(' ');
      if (sp == std::string::npos) return InvalidArgumentError("unable to parse requirement: found '" + head + "', expected: in, notin");
      std::string op = head.substr(sp + 1);
      r.key = Trim(head.substr(0, sp));
      if (op == "in") {
        r.op = Requirement::Op::kIn;
      } else if (op == "notin") {
        r.op = Requirement::Op::kNotIn;
      } else {
        return InvalidArgumentError("unable to parse requirement: found '" + op + "', expected: in, notin");
      }
      std::string inner = part.substr(open + 1, part.size() - open - 2);
      for (const std::string& v : SplitTop(inner)) r.values.insert(Trim(v));
    } else {
      r.key = part;
      r.op = Requirement::Op::kExists;
    }
    if (!ValidKey(r.key)) return InvalidArgumentError("unable to parse requirement: invalid label key \"" + r.key + "\"");
    sel.reqs_.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::Matches(const std::map<std::string, std::string>& labels) const {
  for (const Requirement& r : reqs_) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    switch (r.op) {
      case Requirement::Op::kExists:
        if (!has) return false;
        break;
      case Requirement::Op::kNotExists:
        if (has) return false;
        break;
      case Requirement::Op::kEquals:
      case Requirement::Op::kIn:
        if (!has || !r.values.count(it->second)) return false;
        break;
      case Requirement::Op::kNotEquals:
      case Requirement::Op::kNotIn:
        if (has && r.values.count(it->second)) return false;
        break;
    }
  }
  return true;
}

Result<FieldSelector> FieldSelector::Parse(const std::string& text, const std::set<std::string>& supported) {
  FieldSelector sel;
  if (Trim(text).empty()) return sel;
  for (const std::string& raw : SplitTop(text)) {
    std::string part = Trim(raw);
    Term t;
    size_t p;
    if ((p = part.find("!=")) != std::string::npos) {
      t = {Trim(part.substr(0, p)), Trim(part.substr(p + 2)), false};
    } else if ((p = part.find("==")) != std::string::npos) {
      t = {Trim(part.substr(0, p)), Trim(part.substr(p + 2)), true};
    } else if ((p = part.find('=')) != std::string::npos) {
      t = {Trim(part.substr(0, p)), Trim(part.substr(p + 1)), true};
    } else {
      return InvalidArgumentError("invalid selector: '" + part + "'; can't understand '" + part + "'");
    }
    if (!supported.count(t.field)) return InvalidArgumentError("field label not supported: " + t.field);
    sel.terms_.push_back(std::move(t));
  }
  return sel;
}

bool FieldSelector::Matches(const std::function<std::string(const std::string&)>& get) const {
  for (const Term& t : terms_) {
    if ((get(t.field) == t.value) != t.equals) return false;
  }
  return true;
}

}  // namespace sigil::registry
