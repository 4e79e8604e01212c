#include "sigil/api/kubernetes/yaml_json.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <charconv>
#include <map>
#include <regex>
#include <sstream>

namespace sigil::kube {
namespace {

// Thrown from the event handler to stop the parse; caught in YamlToJson.
struct Refused {
  std::string message;
};

// Builds the JSON value from yaml-cpp's parse events, without yaml-cpp's node graph (which
// would hold a self-referencing alias as a reference cycle, and leak it). Anchored values are
// kept as JSON; an alias copies one, paying for every node it copies.
class Builder : public YAML::EventHandler {
 public:
  explicit Builder(size_t budget) : budget_(budget) {}

  void OnDocumentStart(const YAML::Mark&) override { ++documents_; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { Value(mark, Json(nullptr), "", anchor, 1); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) Fail(mark, "an alias refers to a node that contains it");
    Value(mark, it->second.value, it->second.key_text, 0, it->second.nodes);
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor, const std::string& value) override {
    Value(mark, Resolve(tag, value), value, anchor, 1);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    Open(mark, Json::array(), anchor);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    Open(mark, Json::object(), anchor);
  }
  void OnMapEnd() override { Close(); }

  int documents() const { return documents_; }
  Json Take() { return std::move(root_); }

 private:
  struct Frame {
    Json value;
    YAML::anchor_t anchor = 0;
    size_t nodes = 1;
    bool have_key = false;
    std::string key;
    YAML::Mark mark;
  };
  struct Anchored {
    Json value;
    std::string key_text;  // for a scalar used as a mapping key
    size_t nodes = 1;
  };

  [[noreturn]] static void Fail(const YAML::Mark& mark, const std::string& why) {
    throw Refused{"error converting YAML to JSON: line " + std::to_string(mark.line + 1) + ": " + why};
  }

  void Spend(const YAML::Mark& mark, size_t nodes) {
    if (nodes > budget_) Fail(mark, "the document expands to too many nodes (aliases?)");
    budget_ -= nodes;
  }

  static Json Resolve(const std::string& tag, const std::string& s) {
    if (tag == "!" || tag == "tag:yaml.org,2002:str") return s;
    if (tag != "?" && !tag.empty()) return s;  // other explicit tags: keep the text
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    if (s.size() > 64) return s;  // no number is this long; keeps the regexes cheap
    static const std::regex kInt("[-+]?[0-9]+");
    static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
    if (std::regex_match(s, kInt)) {
      int64_t v = 0;
      std::string_view digits = s[0] == '+' ? std::string_view(s).substr(1) : std::string_view(s);
      auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
      if (ec == std::errc() && p == digits.data() + digits.size()) return v;
      return s;  // out of range: keep as text rather than lose precision
    }
    if (std::regex_match(s, kFloat)) {
      double d = 0;
      auto [p, ec] = std::from_chars(s.data() + (s[0] == '+' ? 1 : 0), s.data() + s.size(), d);
      if (ec == std::errc() && p == s.data() + s.size()) return d;
      return s;
    }
    return s;
  }

  // A complete value: becomes the root, a sequence item, a mapping key or a mapping value.
  void Value(const YAML::Mark& mark, Json v, const std::string& key_text, YAML::anchor_t anchor, size_t nodes) {
    Spend(mark, nodes);
    if (anchor != 0) anchors_[anchor] = Anchored{v, key_text, nodes};
    Attach(mark, std::move(v), &key_text, nodes);
  }

  void Attach(const YAML::Mark& mark, Json v, const std::string* key_text, size_t nodes) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return;
    }
    Frame& top = stack_.back();
    top.nodes += nodes;
    if (top.value.is_array()) {
      top.value.push_back(std::move(v));
    } else if (!top.have_key) {
      if (key_text == nullptr) Fail(mark, "a mapping key must be a scalar");
      if (top.value.contains(*key_text)) Fail(mark, "a mapping key is repeated");
      top.key = *key_text;
      top.have_key = true;
    } else {
      top.value[top.key] = std::move(v);
      top.have_key = false;
    }
  }

  void Open(const YAML::Mark& mark, Json v, YAML::anchor_t anchor) {
    if (stack_.size() >= static_cast<size_t>(kMaxYamlDepth)) Fail(mark, "the document is nested too deeply");
    Spend(mark, 1);
    stack_.push_back(Frame{std::move(v), anchor, 1, false, "", mark});
  }

  void Close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.anchor != 0) anchors_[f.anchor] = Anchored{f.value, "", f.nodes};
    Attach(f.mark, std::move(f.value), nullptr, f.nodes);
  }

  size_t budget_;
  int documents_ = 0;
  Json root_;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, Anchored> anchors_;
};

// Flow collections nest by brackets; count them before yaml-cpp's recursive parser does.
bool FlowDepthOk(std::string_view text) {
  int depth = 0;
  for (char c : text) {
    if (c == '[' || c == '{') {
      if (++depth > kMaxYamlDepth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

}  // namespace

Result<Json> YamlToJson(std::string_view text) {
  if (!FlowDepthOk(text)) return InvalidArgumentError("error converting YAML to JSON: the document is nested too deeply");
  std::istringstream in{std::string(text)};
  Builder b(4 * text.size() + 1024);
  try {
    YAML::Parser parser(in);
    if (!parser.HandleNextDocument(b)) return Json(nullptr);
    Json out = b.Take();
    if (parser.HandleNextDocument(b) || b.documents() > 1) {
      return InvalidArgumentError("error converting YAML to JSON: expected one document, found more");
    }
    return out;
  } catch (const Refused& r) {
    return InvalidArgumentError(r.message);
  } catch (const YAML::Exception& e) {
    // e.msg is yaml-cpp's description of the syntax error; it does not quote the input.
    return InvalidArgumentError("error converting YAML to JSON: yaml: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

}  // namespace sigil::kube
